package sfu

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// The adapter is the thin loop around the layer decision (layerchoice.go)
// for one subscriber: every adaptInterval, and at once when its settings
// or its tracks change, it reads the subscriber's settings, its tracks'
// layers as they arrive and its downlink estimate (bwe.go), decides, and
// sets each down track's target; a down track whose target layer is not
// the one it forwards gets one keyframe request for it (the down track
// switches at that keyframe). It owns nothing the packet path touches
// but the down tracks' atomic targets.

// adaptInterval is how often a subscriber's layers are decided. TWCC
// feedback comes every 50-100 ms and the estimate moves at most a few
// percent per interval at this pace; 4 decisions a second keep the
// contract's timings (a down switch within 3 s of a cap, a pause within
// 5 s) with room, for a few µs each.
const adaptInterval = 250 * time.Millisecond

// The adapter has no goroutine of its own (an idle viewer keeps none,
// like its op queue and mailbox): a timer runs a round every
// adaptInterval, and SetTrackSettings or a new down track runs one at
// once; mu makes the rounds one at a time. While probing, a second timer
// sends the padding every probeTick.
type adapter struct {
	p *Participant

	mu      sync.Mutex
	stopped bool // guarded by mu
	timer   *time.Timer
	padT    *time.Timer // while probing
	state   map[*DownTrack]*adaptState
	probe   probeState
	want    int        // the estimate the last round's next step up needs (0: none)
	resume  bool       // that step resumes a video paused for bandwidth
	sending int        // bit/s sent without padding, at the last round
	prober  *DownTrack // the down track padding goes on while probing
	padDebt int        // padding bytes owed to the probe (padPackets)
}

type adaptState struct {
	target     LayerTarget
	set        bool
	rank       int         // the rank targeted; -1 while paused
	choice     TrackChoice // the choice applied
	lowerSince int64       // Now() since a lowering choice is being held (holdLower)
	bwPaused   bool        // counted in the paused gauge
}

func newAdapter(p *Participant) *adapter {
	a := &adapter{p: p, state: map[*DownTrack]*adaptState{}}
	a.timer = time.AfterFunc(adaptInterval, a.tick)
	return a
}

// tick is the timer's round.
func (a *adapter) tick() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	a.roundLocked()
	a.timer.Reset(adaptInterval)
}

// wake has the adapter decide now, in the caller's goroutine.
func (a *adapter) wake() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.stopped {
		a.roundLocked()
	}
}

// stop ends the adapter; a round in progress finishes first.
func (a *adapter) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	a.timer.Stop()
	if a.padT != nil {
		a.padT.Stop()
	}
	a.forget()
}

// roundLocked runs a round and starts or stops the padding timer.
func (a *adapter) roundLocked() {
	a.round()
	switch {
	case a.probe.Active && a.padT == nil:
		a.padT = time.AfterFunc(probeTick, a.padTimer)
	case !a.probe.Active && a.padT != nil:
		a.padT.Stop()
		a.padT = nil
	}
}

// padTimer sends one probe tick's padding and re-arms while probing. A
// probe that has ended since the last round (a report of a queue or loss,
// or the goal reached) has a round at once: padding stops within a tick
// of the report, not at the next round up to 250 ms later, and the next
// step, or the layer it was for, follows without waiting.
func (a *adapter) padTimer() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped || a.padT == nil {
		return
	}
	if a.probeEnded() {
		a.roundLocked()
		if a.padT == nil {
			return // no next step: roundLocked stopped the timer
		}
	}
	a.padTick()
	a.padT.Reset(probeTick)
}

// probeEnded reports whether the active probe is over by the estimator's
// state now (the decision is nextProbe's; the round applies it).
func (a *adapter) probeEnded() bool {
	b := a.p.bwe
	if b == nil || !a.probe.Active {
		return false
	}
	_, est, ok := b.estimate()
	return ok && !nextProbe(a.probe, Now(), est, a.want, a.resume).Active
}

// padTick sends one probe tick's padding.
func (a *adapter) padTick() {
	d := a.prober
	if !a.probe.Active || d == nil {
		return
	}
	if n := padPackets(a.probe.Goal, a.sending, &a.padDebt); n > 0 {
		if w := d.writer(); w != nil {
			w.padFor(d, n)
		}
	}
}

// forget drops the adapter's part in the paused gauge when it ends.
func (a *adapter) forget() {
	for d, st := range a.state {
		a.setBWPaused(st, false)
		delete(a.state, d)
	}
	if b := a.p.bwe; b != nil {
		b.setProbing(false)
	}
}

// setBWPaused keeps the paused gauge.
func (a *adapter) setBWPaused(st *adaptState, on bool) {
	if st.bwPaused == on {
		return
	}
	st.bwPaused = on
	g := a.p.room.sfu.cfg.Metrics.PausedViewers
	if on {
		g.Inc()
	} else {
		g.Dec()
	}
}

// round decides every down track of the subscriber once.
func (a *adapter) round() {
	downs, settings := a.p.adaptSnapshot()
	now := Now()
	budget, audio := a.p.videoBudget(downs)
	var lossAt int64
	if a.p.bwe != nil {
		_, bs, _ := a.p.bwe.estimate()
		lossAt = bs.LossAt
	}
	var inputs []TrackChoiceInput
	var vids []*DownTrack
	var layers [][]ChoiceLayer
	seen := make(map[*DownTrack]bool, len(downs))
	for _, d := range downs {
		seen[d] = true
		st := a.state[d]
		if st == nil {
			st = &adaptState{rank: -1}
			a.state[d] = st
		}
		s := settings[d.up.ID()]
		if !d.video {
			a.apply(d, st, LayerTarget{Paused: s.Paused}, -1)
			continue
		}
		ls := d.up.choiceLayers(now)
		if s.Paused {
			d.SetDemand(-1)
		} else {
			d.SetDemand(RequestedRank(s, ls))
		}
		in := TrackChoiceInput{Settings: s, Layers: ls, Current: st.rank, BWPaused: st.target.PausedBandwidth, CanPause: mayPause(a.p.v11, st.target.PausedBandwidth, lossAt, now)}
		if st.set && !st.target.Paused && !st.target.PausedBandwidth {
			in.Current = rankOf(ls, st.target.Slot)
		}
		inputs = append(inputs, in)
		vids = append(vids, d)
		layers = append(layers, ls)
	}
	for d, st := range a.state {
		if !seen[d] {
			a.setBWPaused(st, false)
			delete(a.state, d)
		}
	}
	choices := ChooseLayers(budget, inputs)
	curVideo := 0                     // bit/s of the video layers forwarded now
	curRank := make([]int, len(vids)) // the rank each forwards now (-1: none)
	for i, d := range vids {
		curRank[i] = rankOf(layers[i], d.CurrentLayer())
		if tg := d.Target(); curRank[i] >= 0 && !tg.Paused && !tg.PausedBandwidth {
			curVideo += layers[i][curRank[i]].Rate
		}
	}
	over := overrun(curVideo, budget, lossAt, now)
	a.sending = audio
	want, resume := 0, false
	a.prober = nil
	for i, c := range choices {
		d := vids[i]
		st := a.state[d]
		if st.set {
			var wait bool
			if wait, st.lowerSince = holdLower(st.choice, c, st.lowerSince, now, over); wait {
				c = st.choice // not yet
			}
		}
		st.choice = c
		t := LayerTarget{Reason: c.Reason, Paused: c.Paused, PausedBandwidth: c.PausedBandwidth}
		if c.Rank >= 0 {
			t.Slot = layers[i][c.Rank].Slot
			a.sending += layers[i][c.Rank].Rate
			// Lowered on an overrun link: stop the layer forwarded now
			// at once, so the queue drains before the new layer's
			// keyframe arrives (downlayer.go). Kept while the target
			// stays (a new target would ask for another keyframe).
			switch {
			case st.set && st.target.Slot == t.Slot && !st.target.Paused && !st.target.PausedBandwidth:
				t.Drain = st.target.Drain
			default:
				t.Drain = over && c.Reason == ReasonBandwidth && curRank[i] > c.Rank
			}
		} else {
			t.Slot = a.state[d].target.Slot // kept: a resume there is no switch
		}
		a.apply(d, a.state[d], t, c.Rank)
		if a.prober == nil && !c.Paused {
			a.prober = d
		}
		if want == 0 && c.Reason == ReasonBandwidth {
			want, resume = stepUp(layers[i], c), c.PausedBandwidth
		}
	}
	b := a.p.bwe
	if b == nil {
		return
	}
	_, est, ok := b.estimate()
	if !ok {
		return
	}
	a.p.room.sfu.cfg.Metrics.BandwidthEstimate.Observe(float64(est.Estimate))
	if want > 0 {
		want += a.sending
	}
	a.want, a.resume = want, resume
	a.probe = nextProbe(a.probe, now, est, want, resume)
	b.setProbing(a.probe.Active)
	if a.p.log.Enabled(context.Background(), slog.LevelDebug) {
		a.p.log.Debug("layers decided", "estimate", est.Estimate, "delivered", est.Delivered, "loss", est.Loss,
			"budget", budget, "want", want, "sending", a.sending, "probing", a.probe.Active, "choices", choices)
	}
}

// stepUp is the extra bit/s a bandwidth-limited track's next step needs:
// resuming at its lowest layer, or its next layer up, with headroom.
func stepUp(ls []ChoiceLayer, c TrackChoice) int {
	if c.PausedBandwidth {
		return int(float64(ls[0].Rate) * resumeHeadroom)
	}
	if c.Rank+1 >= len(ls) {
		return 0
	}
	return int(float64(ls[c.Rank+1].Rate)*upHeadroom) - ls[c.Rank].Rate
}

// apply sets d's target if it changed; a target layer not forwarded yet
// gets one keyframe request.
func (a *adapter) apply(d *DownTrack, st *adaptState, t LayerTarget, rank int) {
	if st.set && st.target == t {
		return
	}
	paused := t.Paused || t.PausedBandwidth
	wasPaused := st.set && (st.target.Paused || st.target.PausedBandwidth)
	st.target, st.set, st.rank = t, true, rank
	a.setBWPaused(st, t.PausedBandwidth)
	d.SetTarget(t)
	if d.video && !paused && (t.Slot != d.CurrentLayer() || wasPaused) {
		d.up.RequestLayerKeyframe(t.Slot)
	}
}

func rankOf(ls []ChoiceLayer, slot int) int {
	for i, l := range ls {
		if l.Slot == slot {
			return i
		}
	}
	return -1
}

// initialTarget is the target a new down track of up starts with, from
// the subscriber's settings alone (the adapter's next round adds the
// downlink).
func (p *Participant) initialTarget(up *UpTrack) LayerTarget {
	p.mu.Lock()
	s := p.settings[up.ID()]
	p.mu.Unlock()
	if up.Kind() != webrtc.RTPCodecTypeVideo {
		return LayerTarget{Paused: s.Paused}
	}
	ls := up.choiceLayers(Now())
	for i := range ls {
		ls[i].Arriving = true // none may have arrived yet: the one asked for is waited for
	}
	c := ChooseLayers(-1, []TrackChoiceInput{{Settings: s, Layers: ls, Current: -1}})[0]
	if c.Rank < 0 {
		return LayerTarget{Slot: up.TopLayer(), Paused: true}
	}
	return LayerTarget{Slot: ls[c.Rank].Slot, Reason: c.Reason}
}

// adaptSnapshot returns the subscriber's down tracks and settings.
func (p *Participant) adaptSnapshot() ([]*DownTrack, map[string]LayerSettings) {
	p.mu.Lock()
	defer p.mu.Unlock()
	downs := make([]*DownTrack, 0, len(p.downs))
	for d := range p.downs {
		downs = append(downs, d)
	}
	settings := make(map[string]LayerSettings, len(p.settings))
	for k, v := range p.settings {
		settings[k] = v
	}
	return downs, settings
}

// SetTrackSettings sets the subscriber's settings of track id (kept for a
// track it gets later, and across switches); the layers are decided again
// at once.
func (p *Participant) SetTrackSettings(id string, s LayerSettings) {
	p.mu.Lock()
	if p.settings == nil {
		p.settings = map[string]LayerSettings{}
	}
	p.settings[id] = s
	a := p.adapt
	p.mu.Unlock()
	if a != nil {
		a.wake()
	}
}

// TrackSettings returns the subscriber's settings of track id (the
// defaults: auto, no limits, not paused).
func (p *Participant) TrackSettings(id string) LayerSettings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settings[id]
}

// addAdapted registers a down track with the adapter.
func (p *Participant) addAdapted(d *DownTrack) {
	p.mu.Lock()
	if p.downs == nil {
		p.downs = map[*DownTrack]bool{}
	}
	p.downs[d] = true
	if p.adapt == nil && !p.closed {
		p.adapt = newAdapter(p)
	}
	a := p.adapt
	p.mu.Unlock()
	if a != nil {
		a.wake()
	}
}

// removeAdapted forgets a down track.
func (p *Participant) removeAdapted(d *DownTrack) {
	p.mu.Lock()
	delete(p.downs, d)
	p.mu.Unlock()
}

// stopAdapter ends the adapter (close).
func (p *Participant) stopAdapter() {
	p.mu.Lock()
	a := p.adapt
	p.adapt = nil
	p.mu.Unlock()
	if a != nil {
		a.stop()
	}
}

// videoBudget is the bit/s the subscriber's downlink carries for video
// (the estimate less the audio it gets: audio is never limited), or -1
// when it is not known (no limit); and the audio's bit/s.
func (p *Participant) videoBudget(downs []*DownTrack) (budget, audio int) {
	for _, d := range downs {
		if !d.video && !d.Target().Paused {
			audio += d.up.rates()[0]
		}
	}
	if p.bwe == nil {
		return -1, audio
	}
	est, _, ok := p.bwe.estimate()
	if !ok {
		return -1, audio
	}
	return max(est-audio, 0), audio
}
