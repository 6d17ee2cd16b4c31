package bench

// --cohosts M: in every room, M participants who joined as viewers go on
// stage during the measurement window: the host invites, they accept and
// publish. Measured: invitation.create -> their first packet at a viewer of
// the room. Their media adds to the load from then on; it is not in the
// loss figures, which count sources present for the whole window.

import (
	"context"
	"sync"
	"time"
)

type stageJoin struct {
	pub     *publisher
	startAt time.Time
	err     error
}

// stageDelay is how long after the window opens the co-hosts go on stage.
func stageDelay(window time.Duration) time.Duration {
	return min(time.Second, window/3)
}

// goOnStage puts every waiting co-host on stage at once and returns when
// all calls have answered.
func (sc *runner) goOnStage(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range sc.stage {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.startAt = time.Now()
			if s.err = sc.putOnStage(ctx, s.pub); s.err == nil {
				s.pub.room.addSource(s.pub.identity, &source{pub: s.pub})
			}
		}()
	}
	wg.Wait()
}

// onStage returns invitation.create -> first packet at a viewer.
func (s *stageJoin) onStage() (time.Duration, bool) {
	if s.err != nil || s.startAt.IsZero() {
		return 0, false
	}
	f := s.pub.room.firstPacketFrom(s.pub.identity)
	if f.IsZero() {
		return 0, false
	}
	return f.Sub(s.startAt), true
}
