package sfu

import (
	"slices"
	"time"
)

// layersNoteInterval is the least time between two track.updated of one
// track (1.1 §0: "layers changed; ≤ 1/2 s per track"): a publisher whose
// encoder adapts its resolution changes its keyframe sizes at most every
// few seconds, but nothing should let it flood the room.
const layersNoteInterval = 2 * time.Second

// layersNote is the track.updated state of one simulcast track in a room.
type layersNote struct {
	last    time.Time   // when one was last posted
	pending bool        // a post is scheduled
	sent    []LayerInfo // the layers last told (or published with)
}

// watchLayers has the room tell track.updated when a simulcast track of p
// changes its layers (UpTrack.OnLayersChanged), at most once per
// layersNoteInterval. Called by publish with r.mu held.
func (r *Room) watchLayersLocked(p *Participant, t *UpTrack, info TrackInfo) {
	if !t.Simulcast() {
		return
	}
	if r.layerNotes == nil {
		r.layerNotes = map[*UpTrack]*layersNote{}
	}
	r.layerNotes[t] = &layersNote{sent: info.Layers}
	t.OnLayersChanged(func() { r.layersChanged(p, t) })
}

// unwatchLayersLocked forgets t; called by unpublish with r.mu held.
func (r *Room) unwatchLayersLocked(t *UpTrack) {
	if r.layerNotes[t] != nil {
		delete(r.layerNotes, t)
		t.OnLayersChanged(nil)
	}
}

// layersChanged schedules a track.updated (from a reader: never waits).
func (r *Room) layersChanged(p *Participant, t *UpTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.layerNotes[t]
	if n == nil || n.pending {
		return
	}
	n.pending = true
	time.AfterFunc(time.Until(n.last.Add(layersNoteInterval)), func() { r.tellLayers(p, t) })
}

// tellLayers posts track.updated to everyone in the room but the
// publisher if t's layers differ from those last told.
func (r *Room) tellLayers(p *Participant, t *UpTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.layerNotes[t]
	if n == nil {
		return
	}
	n.pending = false
	info := p.trackInfo(t)
	if slices.Equal(info.Layers, n.sent) {
		return
	}
	n.sent, n.last = info.Layers, time.Now()
	for _, q := range r.participants {
		if q != p { // everyone but the publisher (docs/protocol.md §6.4)
			q.inbox.post(TrackUpdated{Track: info})
		}
	}
}
