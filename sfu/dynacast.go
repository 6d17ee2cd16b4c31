package sfu

// Dynacast (PROTOCOL.md 1.1 §3 "dynacast"): a simulcast publisher is told
// which of its layers anyone needs (publisher.layers {trackId, active}),
// and may switch the rest off at its encoder. Needed are the layers up to
// the highest *target* among the track's subscribers (what their
// settings ask for, not what their bandwidth allows: a capped viewer may
// be raised again at any moment); a running, unpaused relay or a
// recording needs every layer; with no need at all, none. An addition is
// told at once (within dynacastInterval); a removal once the layer has
// been unneeded for dynacastRemoveAfter, so a viewer flicking a tile does
// not make the publisher restart an encoder.
//
// The decisions are pure functions (dynacastWant, nextDynacast); the
// publisher's loop (runDynacast) reads the demand and tells.

import (
	"time"

	"github.com/pion/webrtc/v4"
)

const (
	// dynacastInterval is how often a publisher's needs are read: well
	// within the contract's 1 s for an addition.
	dynacastInterval = 250 * time.Millisecond
	// dynacastRemoveAfter is how long a layer must be unneeded before
	// the publisher is told (the contract's 5 s).
	dynacastRemoveAfter = 5 * time.Second
)

// AllLayersSink is a Sink that may need every layer of a simulcast track
// (the relay's egress, the recorder): NeedsAllLayers says whether it does
// now. A Sink that does not implement it needs every layer.
type AllLayersSink interface {
	NeedsAllLayers() bool
}

// dynacastWant is how many layers (lowest first) are needed of a track
// with n layers: demands are its subscribers' target ranks (-1: paused),
// needAll says a relay or a recording takes it.
func dynacastWant(n int, demands []int, needAll bool) int {
	if needAll {
		return n
	}
	k := 0
	for _, d := range demands {
		k = max(k, min(d+1, n))
	}
	return k
}

// dynacastState is what a publisher was told of one track.
type dynacastState struct {
	Sent  int // layers told active; -1: nothing told yet
	Since [MaxLayers]int64
}

// nextDynacast decides what to tell: want layers are needed now. A layer
// told active and no longer wanted stays until it has been unneeded for
// dynacastRemoveAfter. send reports a change to tell.
func nextDynacast(s dynacastState, want int, now int64) (dynacastState, bool) {
	for i := range s.Since {
		if i < want {
			s.Since[i] = 0
		} else if s.Since[i] == 0 {
			s.Since[i] = now
		}
	}
	if s.Sent < 0 {
		s.Sent = want
		return s, true
	}
	k := want
	for i := s.Sent - 1; i >= want; i-- {
		if now-s.Since[i] < int64(dynacastRemoveAfter) {
			k = i + 1
			break
		}
	}
	if k == s.Sent {
		return s, false
	}
	s.Sent = k
	return s, true
}

// demand returns the track's subscribers' target ranks and whether a
// sink other than a subscriber needs every layer.
func (t *UpTrack) demand() (ranks []int, needAll bool) {
	for _, s := range *t.sinks.Load() {
		w, ok := s.(*writer)
		if !ok {
			if a, ok := s.(AllLayersSink); !ok || a.NeedsAllLayers() {
				needAll = true
			}
			continue
		}
		for _, m := range *w.members.Load() {
			if d, ok := m.(*DownTrack); ok {
				ranks = append(ranks, int(d.demand.Load()))
			}
		}
	}
	return ranks, needAll
}

// runDynacast is a publisher's dynacast loop: it tells the publisher the
// active layers of each of its simulcast tracks. It ends with done.
func (p *Participant) runDynacast(done <-chan struct{}) {
	t := time.NewTicker(dynacastInterval)
	defer t.Stop()
	states := map[*UpTrack]*dynacastState{}
	for {
		now := Now()
		seen := map[*UpTrack]bool{}
		for _, up := range p.PublishedTracks() {
			if !up.Simulcast() || up.Kind() != webrtc.RTPCodecTypeVideo {
				continue
			}
			seen[up] = true
			st := states[up]
			if st == nil {
				st = &dynacastState{Sent: -1}
				states[up] = st
			}
			ranks, needAll := up.demand()
			ranked := up.layerInfos()
			next, send := nextDynacast(*st, dynacastWant(len(ranked), ranks, needAll), now)
			*st = next
			if send {
				active := make([]string, 0, next.Sent)
				for _, l := range ranked[:next.Sent] {
					active = append(active, l.RID)
				}
				p.inbox.post(PublisherLayers{TrackID: up.ID(), Active: active})
			}
		}
		for up := range states {
			if !seen[up] {
				delete(states, up)
			}
		}
		select {
		case <-t.C:
		case <-done:
			return
		}
	}
}

// startDynacast starts the publisher's dynacast loop, once; close ends it.
func (p *Participant) startDynacast() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.dynaDone != nil || !p.v11 {
		return
	}
	p.dynaDone = make(chan struct{})
	p.dynaWG.Add(1)
	go func() {
		defer p.dynaWG.Done()
		p.runDynacast(p.dynaDone)
	}()
}

// stopDynacast ends the loop (close).
func (p *Participant) stopDynacast() {
	p.mu.Lock()
	done := p.dynaDone
	p.dynaDone = nil
	p.mu.Unlock()
	if done != nil {
		close(done)
		p.dynaWG.Wait()
	}
}
