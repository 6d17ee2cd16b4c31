package bench

// One measurement window. Its figures count packets by their send time
// (embedded in the payload): a packet sent in [start, end) belongs to the
// window wherever it arrives, so in-flight packets at either edge are
// neither lost nor counted twice. After the window closes the bench keeps
// reading for a grace period; a packet later than that counts as lost.
//
// Loss compares, for every viewer present for the whole window and every
// source present for the whole window (the room's publishers and the
// relays into it), what the source sent with what that viewer received
// (duplicates removed). A viewer that received nothing counts 100% lost.

import (
	"context"
	"math"
	"os"
	"runtime/pprof"
	"time"
)

// graceAfterWindow is how long packets sent in the window may still arrive.
const graceAfterWindow = time.Second

type pubCounters struct {
	sent, nacks, plis, firs, keyframes int
}

func countersOf(p *publisher) pubCounters {
	sp := p.sp.Load()
	if sp == nil {
		return pubCounters{}
	}
	return pubCounters{
		sent: sp.PacketsSent(), nacks: sp.NACKsReceived(), plis: sp.PLIsReceived(),
		firs: sp.FIRsReceived(), keyframes: sp.KeyframesSent(),
	}
}

// windowResult is everything one window measured.
type windowResult struct {
	start, end    time.Time
	stableViewers int
	publishing    int // publishers publishing when the window opened
	sources       int // (room, source) pairs in the loss figures

	pub                pubCounters // summed over publishers, in the window
	expected, received uint64
	dups, noStamp      uint64
	latency            HistSnap // direct sources
	relayLatency       HistSnap // relayed sources
	rxPackets          uint64   // every packet the bench's viewers read (arrival time in the window)
	benchCPU           time.Duration
	srv0, srv1         serverSample
	mach0, mach1       machineCPU

	relayDelivered map[*relayLink][2]uint64 // received, expected

	// --light: the loss figures of each kind of viewer (lightreport.go)
	full, light groupFigures
}

func (w *windowResult) lossRatio() float64 {
	if w.expected == 0 {
		return math.NaN()
	}
	return math.Max(0, 1-float64(w.received)/float64(w.expected))
}

// allTracks returns every track of every viewer.
func (sc *runner) allTracks() []*trackStats {
	var out []*trackStats
	for _, v := range sc.viewers() {
		out = append(out, v.trackList()...)
	}
	return out
}

func (sc *runner) rxTotal() uint64 {
	var n uint64
	for _, v := range sc.viewers() {
		if v.light != nil {
			n += v.light.total.Load()
		}
		for _, t := range v.trackList() {
			n += t.packets.Load()
		}
	}
	return n
}

// measureWindow opens the window for d, closes it, waits the grace period
// and aggregates. during, when not nil, runs in its own goroutine while
// the window is open.
func (sc *runner) measureWindow(ctx context.Context, d time.Duration, during func(context.Context)) (*windowResult, error) {
	// The window is closed: reset the window figures of every track.
	for _, t := range sc.allTracks() {
		t.winPackets.Store(0)
		t.win.Reset()
	}
	type roomState struct {
		viewers []*viewer
		sources map[string]*source
	}
	rooms := make(map[*room]roomState, len(sc.rooms))
	for _, r := range sc.rooms {
		r.mu.Lock()
		rs := roomState{viewers: append([]*viewer(nil), r.viewers...), sources: make(map[string]*source, len(r.sources))}
		for k, s := range r.sources {
			rs.sources[k] = s
		}
		r.mu.Unlock()
		rooms[r] = rs
	}
	pubs := sc.publishers()

	res := &windowResult{relayDelivered: map[*relayLink][2]uint64{}}
	res.start = time.Now()
	sc.win.end.Store(math.MaxInt64)
	sc.win.start.Store(res.start.UnixNano())
	before := make(map[*publisher]pubCounters, len(pubs))
	for _, p := range pubs {
		before[p] = countersOf(p)
		if p.sp.Load() != nil {
			res.publishing++
		}
	}
	stopProfile := sc.startProfile()
	cpu0, rx0 := selfCPU(), sc.rxTotal()
	res.mach0 = readMachineCPU()
	res.srv0 = sc.tgt.sample(ctx)

	dctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	if during != nil {
		go func() { defer close(done); during(dctx) }()
	} else {
		close(done)
	}
	sc.prog.window(res.start, d)
	select {
	case <-time.After(time.Until(res.start.Add(d))):
	case <-ctx.Done():
	}
	res.end = time.Now()
	sc.win.end.Store(res.end.UnixNano())
	after := make(map[*publisher]pubCounters, len(pubs))
	for _, p := range sc.publishers() {
		after[p] = countersOf(p)
	}
	res.benchCPU, res.rxPackets = selfCPU()-cpu0, sc.rxTotal()-rx0
	stopProfile()
	res.mach1 = readMachineCPU()
	res.srv1 = sc.tgt.sample(ctx)
	cancel()
	<-done
	sc.prog.window(time.Time{}, 0)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sc.prog.setPhase("closing the window")
	select {
	case <-time.After(graceAfterWindow):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	sentBy := func(p *publisher) uint64 {
		return uint64(max(0, after[p].sent-before[p].sent))
	}
	for p, a := range after {
		b := before[p]
		res.pub.sent += a.sent - b.sent
		res.pub.nacks += a.nacks - b.nacks
		res.pub.plis += a.plis - b.plis
		res.pub.firs += a.firs - b.firs
		res.pub.keyframes += a.keyframes - b.keyframes
	}
	links := map[[2]*room]*relayLink{}
	for _, l := range sc.relays {
		links[[2]*room{l.src, l.dst}] = l
	}
	for r, rs := range rooms {
		res.stableViewers += len(rs.viewers)
		res.sources += len(rs.sources)
		for _, v := range rs.viewers {
			if v.light != nil {
				res.addLight(v, rs.sources, sentBy)
				continue
			}
			got := map[string]uint64{}
			for _, t := range v.trackList() {
				got[t.streamID] += t.winPackets.Load()
			}
			res.full.viewers++
			for id, s := range rs.sources {
				exp := sentBy(s.pub)
				res.expected += exp
				res.received += min(got[id], exp)
				res.full.expected += exp
				res.full.received += min(got[id], exp)
				if s.relayed {
					if l := links[[2]*room{s.pub.room, r}]; l != nil {
						dv := res.relayDelivered[l]
						dv[0] += min(got[id], exp)
						dv[1] += exp
						res.relayDelivered[l] = dv
					}
				}
			}
		}
	}
	// Latency: every viewer's packets sent in the window (churning
	// viewers' too), split by whether the source is relayed.
	for _, v := range sc.viewers() {
		if v.light != nil {
			res.dups += v.light.dups()
		}
		for _, t := range v.trackList() {
			var s HistSnap
			t.win.Snapshot(&s)
			res.dups += t.dups.Load()
			res.noStamp += t.noStamp.Load()
			if src := v.room.sourceOf(t.streamID); src != nil && src.relayed {
				res.relayLatency.Add(&s)
			} else {
				res.latency.Add(&s)
			}
		}
	}
	return res, sc.tgt.alive()
}

// startProfile starts the bench's CPU profile (--cpuprofile) for the
// first window and returns what stops it.
func (sc *runner) startProfile() func() {
	if sc.cfg.CPUProfile == "" || sc.profiled {
		return func() {}
	}
	sc.profiled = true
	f, err := os.Create(sc.cfg.CPUProfile)
	if err != nil {
		sc.prog.logf("cpuprofile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		sc.prog.logf("cpuprofile: %v", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
