package sfu

import "time"

// Probing upward (PROTOCOL.md 1.1 §3 "back to target within 15 s of
// lifting the cap"): the estimate grows only to 10% above what is
// delivered (bwe.go), so a subscriber held on a low layer, or paused,
// would never learn that its link has room again. When the layer
// decision is limited by bandwidth, the adapter probes: for up to
// probeDuration it has one of the subscriber's video down tracks send
// padding-only packets (RTP padding, 255 bytes each, on that track's
// SSRC, between frames: the sequence stays continuous and decoders drop
// them) so that media and padding together reach the rate the next layer
// needs, in steps of 30% above what is known to get through (100% after a
// step that got through). If the link carries it, the estimate rises to
// what was delivered (and the next step, or the layer, follows); at the
// first report of loss or a queue building the probe stops, and the next
// waits, twice as long each time (probeBackoffMin to probeBackoffMax;
// probeBackoffResume while all a probe is for is resuming a paused
// video). The adapter checks the probe at every padding tick (adapt.go),
// so a probe stops within probeTick of the report that ends it; a step
// that got through is followed by the next in the same decision.

const (
	probeDuration   = 2 * time.Second
	probeBackoffMin = 2 * time.Second
	// probeBackoffMax bounds the wait after failed probes: it is most
	// of the time a capped subscriber takes to find that the cap is
	// gone (the contract: back on the top layer within 5 s of a lift,
	// a paused video resumed within 3 s). At 4 s the lab's lifted
	// viewers resumed in 4.4-4.7 s (p50). A failed step costs little
	// now that steps are 30% (a queue of ~50 ms, stopped at its first
	// sign).
	probeBackoffMax = 2500 * time.Millisecond
	// probeBackoffResume bounds it while the video is paused for
	// bandwidth (audio alone flows): the contract's resume within 3 s of
	// a lift is this wait, plus a probe's two or three steps (~250 ms
	// each) and the keyframe. With 2.5 s the lab's paused viewers
	// resumed 2.2-3.4 s (p50) after the lift, up to 4.4 s; with this,
	// 1.6-2.9 s, at most 2.9 s (BENCHMARKS.md). A failed probe costs the
	// audio a short queue, no picture: it stops within a padding tick of
	// the first report of one (the capped viewers' packets were not
	// delayed more on average in the lab).
	probeBackoffResume = 1200 * time.Millisecond
	// probeMinThrough is the least a probe runs before it counts as
	// through: a capped link's token bucket lets its burst through at
	// full speed (the lab's tbf: 10 ms of the rate, at least 3 KB, which
	// at 100 kbit/s is 240 ms), so the first report or two of a probe
	// may show a rate the link cannot keep. Before the probe was checked
	// at every padding tick this was the adapter's round (250 ms).
	probeMinThrough = 250 * time.Millisecond
	// probeTick is how often padding is sent while probing: 50 bursts a
	// second keep each small (at 1.5 Mbit/s, 15 packets of 255 bytes).
	probeTick = 20 * time.Millisecond
	// padSize is one padding packet's payload: the most one RTP padding
	// count byte says.
	padSize = 255
	// probeStepMin is the least a probe step adds: a low layer's rate.
	probeStepMin = 100_000
	// probeOvershoot (%): the last step aims this far above what is
	// wanted. A probe counts as through at 90% of its goal (the rate
	// measured is RTP bytes, below the wire's); aiming at the want
	// itself, an estimate could stop at 90-99% of it, below the step
	// up, and each round's probe would "get through" again without
	// raising it: in the lab a viewer stayed on the middle layer for
	// 10 s after the cap was lifted, at 2.0 of the 2.1 Mbit/s wanted.
	// 0.9 x 1.15 = 1.035: through means the step up fits.
	probeOvershoot = 115
)

// probeState is the prober's state.
type probeState struct {
	Active  bool
	Start   int64 // Now() when the active probe began
	Goal    int   // bit/s the probe tries to reach
	Backoff int64 // ns to wait after a failed probe
	Until   int64 // no probe before this Now()
	Streak  int   // probes in a row that got through (the next steps are bigger)
	// Ceiling is the goal of the last probe the link did not carry (0:
	// none): later probes go no higher until one at it gets through (the
	// cap is gone). Without it, each step that got through was followed
	// by a doubled one into the same cap: in the lab, a viewer capped at
	// 300 kbit/s probed 260 kbit/s (through), then 520 (a queue of ~200
	// ms: its 180p layer lost packets and froze 7-10% of the time).
	Ceiling int
}

// nextProbe decides whether to probe: want is the estimate the layer
// decision needs for its next step up (0: none is limited by bandwidth),
// resume whether that step is resuming a video paused for bandwidth, est
// the estimator's state now.
func nextProbe(s probeState, now int64, est bweState, want int, resume bool) probeState {
	if s.Backoff == 0 {
		s.Backoff = int64(probeBackoffMin)
	}
	wait := s.Backoff
	if resume {
		wait = min(wait, int64(probeBackoffResume))
	}
	if s.Active {
		switch {
		case est.LastDecrease > s.Start || est.Congested > s.Start: // the link did not carry it: stop at its first sign
			s.Active = false
			s.Until = now + wait
			s.Backoff = min(s.Backoff*2, int64(probeBackoffMax))
			s.Streak = 0
			s.Ceiling = s.Goal
			return s
		case want == 0 || (est.Estimate >= s.Goal*9/10 && now-s.Start >= int64(probeMinThrough)): // it did (or nothing is wanted any more): the next step follows at once, below
			s.Active = false
			s.Backoff = int64(probeBackoffMin)
			s.Until = now
			s.Streak++
			if s.Goal >= s.Ceiling {
				s.Ceiling = 0 // through at the ceiling: the cap is gone
			}
		case now-s.Start >= int64(probeDuration):
			s.Active = false
			s.Until = now + wait
			return s
		default:
			return s
		}
	}
	if want > est.Estimate && est.Estimate > 0 && now >= s.Until && now-est.LastDecrease >= int64(holdAfterDecrease) {
		// A step of 30% above what is known to get through (twice it
		// after a step that got through; at least probeStepMin: from
		// audio alone, a paused video's lowest layer is two steps
		// away): a probe straight to the top layer's rate would flood
		// a link that carries only a little more than it has.
		known := max(est.Estimate, est.Delivered)
		step := known * 13 / 10
		if s.Streak > 0 {
			step = known * 2 // the last step got through: the link has room, climb faster
		}
		goal := min(want*probeOvershoot/100, max(step, known+probeStepMin))
		if s.Ceiling > known {
			goal = min(goal, s.Ceiling)
		} else {
			s.Ceiling = 0 // the estimate grew past it by itself
		}
		s.Active, s.Start, s.Goal = true, now, goal
	}
	return s
}

// padPackets is how many padding packets make up the gap between the
// goal and what is sent without padding, over one probeTick; debt carries
// the bytes a tick could not send in whole packets to the next.
func padPackets(goal, sending int, debt *int) int {
	gap := goal - sending
	if gap <= 0 {
		*debt = 0
		return 0
	}
	*debt += gap / 8 * int(probeTick/time.Millisecond) / 1000
	n := *debt / (padSize + 12)
	*debt -= n * (padSize + 12)
	return n
}

// pad sends n padding-only packets to the subscriber, between frames: at
// once when its video is paused, else after a packet that ends a frame
// (a marker). Writer goroutine only (writer.go's pad requests).
func (d *DownTrack) pad(n int, buf *cachedPacket) {
	b := d.binding.Load()
	if b == nil || d.closed.Load() || !d.ready.Load() || !d.sel.sentAny {
		return
	}
	t := unpackTarget(d.sel.seen)
	if d.m.started && !(t.Paused || t.PausedBandwidth) && !d.lastMarker {
		return // mid-frame: the next probe tick tries again
	}
	p := buf.buf[:padSize]
	clear(p)
	p[padSize-1] = padSize
	for range n {
		seq, ts := d.m.pad()
		if _, ok := d.writePayload(b, seq, ts, false, true, p); !ok {
			return
		}
		d.probeBytes.Add(padSize)
	}
}
