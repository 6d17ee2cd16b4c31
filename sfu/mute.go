package sfu

import "slices"

// Muting (PROTOCOL.md 1.1 §7): a muted track forwards nothing, to any
// sink (subscribers, relays, the recorder). The rules (who may mute, who
// is told) are the rooms layer's; here is the gate in the packet path and
// the room's notice, ordered with its other changes.

// An up track's mute states. Unmuting passes through muteResuming: the
// next packet forwarded is flagged Discontinuity (sinks continue their
// outgoing sequence without a gap) and, for video, is a keyframe start.
const (
	muteOff uint32 = iota
	muteOn
	muteResuming
)

// SetMuted mutes or unmutes the track and reports whether that changed
// anything. While muted the reader stores and forwards nothing (a
// subscriber joining meanwhile gets nothing of it from the cache either).
// Unmuting asks the source for a keyframe, which the forwarding resumes
// from. A relayed copy follows its origin: mute the origin.
func (t *UpTrack) SetMuted(muted bool) bool {
	if muted {
		for {
			st := t.mute.Load()
			if st == muteOn {
				return false
			}
			if t.mute.CompareAndSwap(st, muteOn) {
				return true
			}
		}
	}
	t.resumeMask.Store(1<<len(t.layers) - 1)
	if !t.mute.CompareAndSwap(muteOn, muteResuming) {
		return false
	}
	t.RequestKeyframe()
	return true
}

// Muted reports whether the track is muted (a relayed copy: its origin).
func (t *UpTrack) Muted() bool {
	if t.origin != nil {
		return t.origin.Muted()
	}
	return t.mute.Load() == muteOn
}

// Origin returns the track a relayed copy carries (nil for any other).
func (t *UpTrack) Origin() *UpTrack { return t.origin }

// muteGate is layer l's reader's check of a packet (keyframe: it starts
// one): forward false drops it, unstored, while muted, and while resuming
// video until a keyframe of that layer; discontinuity marks the layer's
// first packet forwarded after (the reader then calls resumed once it
// has stored it). Only l's reader goroutine calls it.
func (t *UpTrack) muteGate(l *upLayer, keyframe bool) (forward, discontinuity bool) {
	switch t.mute.Load() {
	case muteOff:
		return true, false
	case muteResuming:
		if t.resumeMask.Load()&(1<<l.slot) == 0 {
			return true, false // this layer has resumed already
		}
		return !t.video || keyframe, true
	}
	return false, false
}

// resumed ends layer l's resuming: its first packet after the mute is
// stored. The track's resuming ends with its last layer's.
func (t *UpTrack) resumed(l *upLayer) {
	for {
		m := t.resumeMask.Load()
		if t.resumeMask.CompareAndSwap(m, m&^(1<<l.slot)) {
			if m&^(1<<l.slot) == 0 {
				t.mute.CompareAndSwap(muteResuming, muteOff) // a new mute wins
			}
			return
		}
	}
}

// OnNextPacket has f called once, right after the track's next packet
// has been handed to its sinks, in the goroutine that handed it (the
// reader, or for a relayed copy the origin's reader): f must return at
// once. A later call replaces an f not yet called. The rooms layer uses
// it to say when media flows again (track.stream "active").
func (t *UpTrack) OnNextPacket(f func()) { t.onPacket.Store(&f) }

// packetForwarded calls the OnNextPacket function, if one waits.
func (t *UpTrack) packetForwarded() {
	if f := t.onPacket.Load(); f != nil && t.onPacket.CompareAndSwap(f, nil) {
		(*f)()
	}
}

// TellMuted tells every participant of the room TrackMuted for t, a track
// published here, as it is now (its Muted), by who ("publisher" or
// "admin"), in the room's order with its other changes (a participant
// that got t in a join result or a TrackPublished before has it by then).
// It reports false when t is not published in the room.
func (r *Room) TellMuted(t *UpTrack, by string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.participants {
		if !slices.Contains(p.published, t) {
			continue
		}
		ev := TrackMuted{Track: p.trackInfo(t), By: by}
		for _, q := range r.participants {
			q.inbox.post(ev)
		}
		return true
	}
	return false
}

// TrackInfo returns the track object of t, one of p's tracks.
func (p *Participant) TrackInfo(t *UpTrack) TrackInfo { return p.trackInfo(t) }
