package sfu

import (
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

type adapter struct {
	p    *Participant
	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup

	// Owned by run.
	state map[*DownTrack]*adaptState
}

type adaptState struct {
	target LayerTarget
	set    bool
	rank   int // the rank targeted; -1 while paused
	slots  []int
}

func newAdapter(p *Participant) *adapter {
	a := &adapter{p: p, kick: make(chan struct{}, 1), done: make(chan struct{}), state: map[*DownTrack]*adaptState{}}
	a.wg.Add(1)
	go a.run()
	return a
}

// wake has the adapter decide now.
func (a *adapter) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// stop ends the adapter and waits for it.
func (a *adapter) stop() {
	close(a.done)
	a.wg.Wait()
}

func (a *adapter) run() {
	defer a.wg.Done()
	t := time.NewTicker(adaptInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-a.kick:
		case <-a.done:
			return
		}
		a.round()
	}
}

// round decides every down track of the subscriber once.
func (a *adapter) round() {
	downs, settings := a.p.adaptSnapshot()
	now := Now()
	budget := a.p.videoBudget(downs)
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
		in := TrackChoiceInput{Settings: s, Layers: ls, Current: st.rank, BWPaused: st.target.PausedBandwidth, CanPause: a.p.v11}
		if st.set && !st.target.Paused && !st.target.PausedBandwidth {
			in.Current = rankOf(ls, st.target.Slot)
		}
		inputs = append(inputs, in)
		vids = append(vids, d)
		layers = append(layers, ls)
	}
	for d := range a.state {
		if !seen[d] {
			delete(a.state, d)
		}
	}
	for i, c := range ChooseLayers(budget, inputs) {
		d := vids[i]
		t := LayerTarget{Reason: c.Reason, Paused: c.Paused, PausedBandwidth: c.PausedBandwidth}
		if c.Rank >= 0 {
			t.Slot = layers[i][c.Rank].Slot
		} else {
			t.Slot = a.state[d].target.Slot // kept: a resume there is no switch
		}
		a.apply(d, a.state[d], t, c.Rank)
	}
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

// videoBudget is the bit/s the subscriber's downlink carries for video,
// or -1 when it is not known (no limit).
func (p *Participant) videoBudget([]*DownTrack) int { return -1 }
