package bench

// The scenario: the server, the rooms with their publishers, the viewers
// joined in batches, and the teardown that leaves nothing behind.

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
)

const (
	frameTimeout  = 20 * time.Second // a joined viewer without a frame by then is counted, not waited for
	joinTimeout   = 30 * time.Second
	settleTime    = time.Second // publishers up -> RSS baseline
	closeParallel = 32
)

// runner is one run's state.
type runner struct {
	cfg   Config
	tgt   *target
	api   *webrtc.API // shared by every viewer
	win   window
	runID string
	rooms []*room
	prog  *progress

	relays      []*relayLink
	relayStates map[*room]string // last relay.state of each source room (buildReport)
	stage       []*stageJoin     // co-hosts going on stage during the window
	churn       *churner

	mu          sync.Mutex
	all         []*viewer // every viewer ever created (stable and churn)
	pubs        []*publisher
	joinErrors  int
	lastJoinErr error
	nextViewer  int
	step        int     // ramp step of the viewers being added
	rssBaseline float64 // server RSS before any viewer, bytes
	cipher      string  // the SRTP profile negotiated with the viewers
	// --light: the full viewers made so far in each room, the network
	// the light viewers' sockets are wrapped around, and their pump
	// (stopped by teardown)
	fullIn    map[*room]int
	lightNet  transport.Net
	lightPump *lightPump
	profiled  bool // --cpuprofile: the first window was profiled
}

// newScenario starts (or reaches) the server and builds the shared API.
func newScenario(ctx context.Context, cfg Config, prog *progress) (*runner, error) {
	api, err := newViewerAPI(client.LoopbackSettingEngine())
	if err != nil {
		return nil, err
	}
	prog.setPhase("starting the server")
	tgt, err := newTarget(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	sc := &runner{
		cfg:         cfg,
		tgt:         tgt,
		api:         api,
		runID:       "rb" + strconv.FormatInt(time.Now().UnixMilli()%1e9, 36),
		prog:        prog,
		rssBaseline: math.NaN(),
		relayStates: map[*room]string{},
		fullIn:      map[*room]int{},
	}
	for i := 0; i < cfg.Rooms; i++ {
		sc.rooms = append(sc.rooms, &room{idx: i, name: fmt.Sprintf("%s-r%d", sc.runID, i), sources: map[string]*source{}})
	}
	prog.attach(sc)
	return sc, nil
}

// setup creates the rooms and their publishers and takes the RSS baseline.
func (sc *runner) setup(ctx context.Context) error {
	sc.prog.setPhase("publishers")
	err := parallel(ctx, len(sc.rooms), sc.cfg.JoinConcurrency, func(ctx context.Context, i int) error {
		return sc.startHost(ctx, sc.rooms[i])
	})
	for _, r := range sc.rooms {
		if r.host != nil {
			sc.addPubs(r.host)
		}
	}
	if err != nil {
		return err
	}
	if err := sc.probe(ctx); err != nil {
		return err
	}
	for _, r := range sc.rooms {
		for k := 1; k < sc.cfg.Publishers; k++ {
			p, err := sc.joinCohost(ctx, r, fmt.Sprintf("%s-pub%d", r.name, k))
			if err != nil {
				return err
			}
			sc.addPubs(p)
			if err := sc.putOnStage(ctx, p); err != nil {
				return err
			}
			r.addSource(p.identity, &source{pub: p})
		}
		for k := 0; k < sc.cfg.Cohosts; k++ {
			p, err := sc.joinCohost(ctx, r, fmt.Sprintf("%s-cohost%d", r.name, k))
			if err != nil {
				return err
			}
			sc.addPubs(p)
			sc.stage = append(sc.stage, &stageJoin{pub: p})
		}
	}
	select {
	case <-time.After(settleTime):
	case <-ctx.Done():
		return ctx.Err()
	}
	sc.rssBaseline = sc.tgt.sample(ctx).rssBytes
	return sc.tgt.alive()
}

func (sc *runner) addPubs(ps ...*publisher) {
	sc.mu.Lock()
	sc.pubs = append(sc.pubs, ps...)
	sc.mu.Unlock()
}

func (sc *runner) publishers() []*publisher {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return append([]*publisher(nil), sc.pubs...)
}

func (sc *runner) viewers() []*viewer {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return append([]*viewer(nil), sc.all...)
}

// newViewerIn creates a viewer of r with a fresh identity.
func (sc *runner) newViewerIn(r *room, stable bool, kind string) *viewer {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.nextViewer++
	v := newViewer(fmt.Sprintf("%s-%s%d", r.name, kind, sc.nextViewer), r, stable, &sc.win)
	v.step = sc.step
	// --light: a room's first FullViewers stable viewers are full, the
	// rest light; churning viewers stay full (their first frames count)
	if sc.cfg.Light && stable && sc.fullIn[r] >= sc.cfg.FullViewers {
		v.light = newLightCounter(v, &sc.win)
		v.light.drop = sc.cfg.lightDrop
	} else if stable {
		sc.fullIn[r]++
	}
	sc.all = append(sc.all, v)
	return v
}

// joinViewer mints a token and joins v. On failure v is closed.
func (sc *runner) joinViewer(ctx context.Context, v *viewer) error {
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	tok, err := sc.tgt.mint.token(ctx, v.id, v.room.name, "viewer")
	switch {
	case err != nil:
	case v.light != nil:
		err = sc.lightJoin(ctx, v, tok)
	default:
		err = v.join(ctx, sc.tgt.baseURL, sc.api, tok)
	}
	if err != nil {
		v.close()
		sc.mu.Lock()
		sc.lastJoinErr = err
		sc.mu.Unlock()
	}
	return err
}

// addViewers adds perRoom stable viewers to every room and waits for their
// first frames. Joins that fail are counted; it fails only when none
// succeeds or the server died.
func (sc *runner) addViewers(ctx context.Context, perRoom int) error {
	var vs []*viewer
	for i := 0; i < perRoom; i++ {
		for _, r := range sc.rooms {
			vs = append(vs, sc.newViewerIn(r, true, "v"))
		}
	}
	if len(vs) == 0 {
		return nil
	}
	var mu sync.Mutex
	joined, failed := 0, 0
	_ = parallel(ctx, len(vs), sc.cfg.JoinConcurrency, func(ctx context.Context, i int) error {
		v := vs[i]
		err := sc.joinViewer(ctx, v)
		mu.Lock()
		if err != nil {
			failed++
			sc.mu.Lock()
			sc.joinErrors++
			sc.mu.Unlock()
		} else {
			joined++
		}
		sc.prog.setPhase(fmt.Sprintf("joining %d/%d (%d failed)", joined+failed, len(vs), failed))
		mu.Unlock()
		if err == nil {
			v.room.mu.Lock()
			v.room.viewers = append(v.room.viewers, v)
			v.room.mu.Unlock()
		}
		return nil
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := sc.tgt.alive(); err != nil {
		return err
	}
	if joined == 0 {
		sc.mu.Lock()
		last := sc.lastJoinErr
		sc.mu.Unlock()
		return fmt.Errorf("no viewer could join: %w", last)
	}

	// Wait for the first frames (bounded).
	fctx, cancel := context.WithTimeout(ctx, frameTimeout)
	defer cancel()
	got := 0
	for _, v := range vs {
		if v.client() == nil || v.joined.IsZero() {
			continue
		}
		if v.waitFrame(fctx) {
			got++
		}
		sc.prog.setPhase(fmt.Sprintf("first frames %d/%d", got, joined))
	}
	if sc.cipher == "" {
		for _, v := range vs {
			if c := srtpCipherOf(v); c != "" {
				sc.cipher = c
				break
			}
		}
	}
	return ctx.Err()
}

// teardown closes every participant and stops a spawned server.
func (sc *runner) teardown() {
	sc.prog.setPhase("teardown")
	if sc.churn != nil {
		sc.churn.stop()
	}
	vs := sc.viewers()
	_ = parallel(context.Background(), len(vs), closeParallel, func(_ context.Context, i int) error {
		vs[i].close()
		return nil
	})
	ps := sc.publishers()
	_ = parallel(context.Background(), len(ps), closeParallel, func(_ context.Context, i int) error {
		ps[i].close()
		return nil
	})
	sc.mu.Lock()
	pump := sc.lightPump
	sc.mu.Unlock()
	if pump != nil {
		pump.stop()
	}
	sc.tgt.close()
}

// parallel runs f(0..n-1) on at most limit goroutines and returns the
// first error; after an error or ctx's end no new call starts.
func parallel(ctx context.Context, n, limit int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, max(limit, 1))
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return first
}
