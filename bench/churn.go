package bench

// --churn R: R viewer arrivals per second over all rooms (round robin),
// from the warm-up to the end of the window; each stays 2 to 6 s, then
// leaves. Churning viewers load the server's join path while it forwards;
// their join times are reported apart, and they are left out of the loss
// figures (they are not there for the whole window).

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

const (
	churnStayMin = 2 * time.Second
	churnStayMax = 6 * time.Second
)

type churner struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	joins, leaves, failures atomic.Int64
	mu                      sync.Mutex
	joined                  []*viewer
}

// startChurn starts arrivals at rate per second.
func (sc *runner) startChurn(ctx context.Context, rate float64) *churner {
	ctx, cancel := context.WithCancel(ctx)
	ch := &churner{cancel: cancel}
	interval := time.Duration(float64(time.Second) / rate)
	ch.wg.Add(1)
	go func() {
		defer ch.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r := sc.rooms[n%len(sc.rooms)]
			v := sc.newViewerIn(r, false, "churn")
			ch.wg.Add(1)
			go func() {
				defer ch.wg.Done()
				ch.visit(ctx, sc, v)
			}()
		}
	}()
	return ch
}

// visit joins, stays, leaves.
func (ch *churner) visit(ctx context.Context, sc *runner, v *viewer) {
	defer v.close()
	if err := sc.joinViewer(ctx, v); err != nil {
		if ctx.Err() == nil {
			ch.failures.Add(1)
		}
		return
	}
	ch.joins.Add(1)
	ch.mu.Lock()
	ch.joined = append(ch.joined, v)
	ch.mu.Unlock()
	stay := churnStayMin + rand.N(churnStayMax-churnStayMin)
	select {
	case <-time.After(stay):
		ch.leaves.Add(1)
	case <-ctx.Done():
	}
}

// stop ends arrivals, makes everyone leave and waits.
func (ch *churner) stop() {
	ch.cancel()
	ch.wg.Wait()
}

// joinedViewers returns the churning viewers that joined.
func (ch *churner) joinedViewers() []*viewer {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return append([]*viewer(nil), ch.joined...)
}
