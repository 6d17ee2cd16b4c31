package sfu

import "time"

// A down track's layer: which simulcast layer it forwards, and whether it
// forwards at all (paused). The decision is the adapter's (adapt.go, from
// layerchoice.go's pure functions): it sets the down track's target with
// SetTarget from any goroutine. The writer owns the following of it: it
// keeps forwarding the current layer until a keyframe of the target
// arrives, and switches there (munger.switchLayer keeps the SSRC, the
// sequence numbers and the timestamps continuous). It tells the
// subscriber (Notify) the layer it forwards with the first packet of a
// video track and at each switch (track.layer), and a bandwidth pause
// when it begins and, with the first packet after it, its end.

// LayerReason says why a subscriber gets the layer it gets (track.layer's
// reason).
type LayerReason uint8

// The reasons.
const (
	ReasonRequested LayerReason = iota // the layer asked for (or the default)
	ReasonBandwidth                    // the subscriber's downlink carries no more
	ReasonPublisher                    // the layer asked for is not arriving
)

func (r LayerReason) String() string {
	switch r {
	case ReasonBandwidth:
		return "bandwidth"
	case ReasonPublisher:
		return "publisher"
	}
	return "requested"
}

// LayerTarget is what a down track is to forward: a layer slot, or nothing.
type LayerTarget struct {
	Slot   int // the layer's slot (UpTrack.layers); ignored while paused
	Reason LayerReason
	// Paused: forward nothing. PausedBandwidth: because the downlink
	// does not carry the lowest layer (the subscriber is told:
	// track.stream); otherwise the subscriber asked (told nothing).
	Paused          bool
	PausedBandwidth bool
	// Drain: stop forwarding the current layer now, not at the target's
	// keyframe (the downlink is overrun: adapt.go).
	Drain bool
}

// want encoding: slot in bits 0-7, reason in 8-15, flags above.
const (
	wantPaused   = 1 << 16
	wantBWPaused = 1 << 17
	wantDrain    = 1 << 18
)

func (t LayerTarget) pack() uint32 {
	v := uint32(t.Slot&0xff) | uint32(t.Reason)<<8
	if t.Paused || t.PausedBandwidth {
		v |= wantPaused
	}
	if t.PausedBandwidth {
		v |= wantBWPaused
	}
	if t.Drain {
		v |= wantDrain
	}
	return v
}

func unpackTarget(v uint32) LayerTarget {
	return LayerTarget{
		Slot: int(v & 0xff), Reason: LayerReason(v >> 8 & 0xff),
		Paused: v&wantPaused != 0 && v&wantBWPaused == 0, PausedBandwidth: v&wantBWPaused != 0,
		Drain: v&wantDrain != 0,
	}
}

// The down track's own events, for its subscriber's session.
type (
	// TrackLayer: the layer a subscriber gets of a video track
	// (track.layer): with the first packet, and at each switch.
	TrackLayer struct {
		TrackID, Quality, RID string
		Reason                LayerReason
	}
	// TrackBandwidth: the subscriber's video of the track is paused
	// because its downlink does not carry the lowest layer (Paused), or
	// media is delivered again after such a pause.
	TrackBandwidth struct {
		TrackID string
		Paused  bool
	}
)

func (TrackLayer) event()     {}
func (TrackBandwidth) event() {}

// layerSel is the writer-owned side of the layer selection.
type layerSel struct {
	simulcast bool
	seen      uint32 // the want last acted on
	cur       int    // the slot forwarded; -1: none yet
	reason    LayerReason
	tell      bool  // tell the layer with the next packet written
	bwPaused  bool  // told paused bandwidth, not yet active again
	draining  bool  // cur is not forwarded until the target's keyframe (LayerTarget.Drain)
	waitSince int64 // Now() since the target's keyframe is waited for (wants); 0: not waiting
	sentAny   bool  // something was written: a switch continues from it
	lastOutAt int64 // Now() of the last packet written
}

func (d *DownTrack) initLayers() {
	d.sel = layerSel{simulcast: len(d.up.layers) > 1 || d.up.Simulcast(), cur: -1, tell: d.video}
	top := d.up.TopLayer()
	d.want.Store(LayerTarget{Slot: top}.pack())
	d.demand.Store(int32(len(d.up.layers) - 1))
	d.sel.seen = d.want.Load()
	d.curLayer.Store(-1)
	if !d.sel.simulcast {
		d.sel.cur = 0
	}
}

// SetTarget sets what the down track forwards (any goroutine); the
// writer follows at the next packet.
func (d *DownTrack) SetTarget(t LayerTarget) {
	if t.Slot < 0 || t.Slot >= len(d.up.layers) {
		t.Slot = 0
	}
	d.want.Store(t.pack())
}

// SetDemand records the rank the subscriber's settings ask for (-1:
// paused), for dynacast (what bandwidth allows is not a demand).
func (d *DownTrack) SetDemand(rank int) { d.demand.Store(int32(rank)) }

// Target returns the target last set.
func (d *DownTrack) Target() LayerTarget { return unpackTarget(d.want.Load()) }

// CurrentLayer returns the slot of the layer forwarded (-1: none yet).
func (d *DownTrack) CurrentLayer() int { return int(d.curLayer.Load()) }

// sync acts on a new want: a pause stops the munger (the outgoing
// sequence continues at the restart), a bandwidth pause is told. Writer
// goroutine only.
func (d *DownTrack) sync() LayerTarget {
	v := d.want.Load()
	t := unpackTarget(v)
	if v == d.sel.seen {
		return t
	}
	old := unpackTarget(d.sel.seen)
	d.sel.seen = v
	paused := t.Paused || t.PausedBandwidth
	if paused && !(old.Paused || old.PausedBandwidth) {
		d.m.stop()
	}
	if t.PausedBandwidth && !d.sel.bwPaused {
		d.sel.bwPaused = true
		d.tellEvent(TrackBandwidth{TrackID: d.up.ID(), Paused: true})
	}
	// Draining: the current layer stops here, mid-frame maybe, so the
	// munger waits for a keyframe: the target's (a switch), or, if the
	// target comes back to the current layer first, the current one's
	// (forward asks for it).
	drain := t.Drain && !paused && d.sel.simulcast && d.sel.cur >= 0 && t.Slot != d.sel.cur
	if drain && !d.sel.draining {
		d.m.stop()
	}
	d.sel.draining = drain
	d.sel.waitSince = 0 // a new target: its wait starts now (wants)
	return t
}

// keyframeWait is how long a down track waits for its target layer's
// keyframe before it asks again. The adapter asks once when it sets the
// target; that request is lost when the layer has not arrived yet (a
// layer the publisher turned on again after dynacast, whose source is
// attached later), and a browser publisher sends no keyframe unasked: the
// subscriber would wait forever (a Chromium viewer once got no frame in
// 30 s). A normal switch takes 100-500 ms, so this adds no request to it.
const keyframeWait = time.Second

// wants implements groupMember: whether it would be sent (before it is
// read).
func (d *DownTrack) wants(it queueItem) bool {
	if d.closed.Load() || !d.ready.Load() {
		return false
	}
	t := d.sync()
	if t.Paused || t.PausedBandwidth {
		return false
	}
	l := int(it.layer)
	if l == t.Slot && l != d.sel.cur && it.flags&flagKeyframe == 0 {
		// Waiting for the target's keyframe: ask again after
		// keyframeWait (RequestLayerKeyframe throttles).
		now := Now()
		if d.sel.waitSince == 0 {
			d.sel.waitSince = now
		} else if now-d.sel.waitSince >= int64(keyframeWait) {
			d.up.RequestLayerKeyframe(l)
		}
	}
	return (l == d.sel.cur && !d.sel.draining) || (l == t.Slot && it.flags&flagKeyframe != 0)
}

// layerGate reports whether packet it (read into p) is forwarded, and
// switches to the target layer at its keyframe. Writer goroutine only.
func (d *DownTrack) layerGate(it queueItem, p *cachedPacket) bool {
	t := d.sync()
	if t.Paused || t.PausedBandwidth {
		return false
	}
	if !d.sel.simulcast {
		return true
	}
	l := int(it.layer)
	if l == t.Slot && l != d.sel.cur && it.flags&flagKeyframe != 0 && p.ok {
		d.switchTo(l, t.Reason, p.hdr.Timestamp)
		return true
	}
	return l == d.sel.cur && !d.sel.draining
}

// switchTo makes layer l, at its keyframe with timestamp ts, the one
// forwarded.
func (d *DownTrack) switchTo(l int, reason LayerReason, ts uint32) {
	if d.sel.sentAny {
		elapsed := (Now() - d.sel.lastOutAt) * d.clock / 1e9
		d.m.switchLayer(uint8(l), ts, uint32(min(max(elapsed, 1), 1<<30)))
	} else {
		d.m.layer = uint8(l)
	}
	if d.sel.cur >= 0 {
		d.switches.WithLabelValues(reason.String()).Inc()
	}
	d.sel.cur, d.sel.reason, d.sel.tell, d.sel.draining, d.sel.waitSince = l, reason, true, false, 0
	d.curLayer.Store(int32(l))
}

// startLayer is the layer a starting subscriber replays the cache of.
func (d *DownTrack) startLayer() (int, bool) {
	t := d.sync()
	if t.Paused || t.PausedBandwidth {
		return 0, false
	}
	if !d.sel.simulcast {
		return 0, true
	}
	return t.Slot, true
}

// sent runs after each packet written: the first tells the layer, the
// first after a bandwidth pause tells its end.
func (d *DownTrack) sent() {
	d.sel.sentAny = true
	d.sel.lastOutAt = d.wroteAt
	if d.sel.bwPaused {
		d.sel.bwPaused = false
		d.tellEvent(TrackBandwidth{TrackID: d.up.ID()})
	}
	if d.sel.tell {
		d.sel.tell = false
		if !d.sel.simulcast {
			d.curLayer.Store(0)
		}
		d.tellLayer()
	}
}

// tellLayer tells the layer forwarded (track.layer).
func (d *DownTrack) tellLayer() {
	if d.notify == nil {
		return
	}
	ev := TrackLayer{TrackID: d.up.ID(), Quality: QualityHigh, Reason: d.sel.reason}
	if d.sel.simulcast {
		for _, li := range d.up.layerInfos() {
			if li.slot == d.sel.cur {
				ev.Quality, ev.RID = li.Quality, li.RID
			}
		}
	}
	d.notify(ev)
}

func (d *DownTrack) tellEvent(ev Event) {
	if d.notify != nil {
		d.notify(ev)
	}
}

// rankedLayer is a LayerInfo with its slot.
type rankedLayer struct {
	LayerInfo
	slot int
}

// layerInfos returns the track's layers lowest first, with their slots.
func (t *UpTrack) layerInfos() []rankedLayer {
	order := t.ranked()
	q := layerQualities(len(order))
	out := make([]rankedLayer, len(order))
	for i, slot := range order {
		l := t.layers[slot]
		w, h := l.dims()
		out[i] = rankedLayer{LayerInfo{RID: l.rid, Quality: q[i], Width: w, Height: h, MaxBitrate: l.maxBitrate}, slot}
	}
	return out
}

// keyframeLayer is the layer a subscriber's keyframe request is for: the
// one it gets, or before any, its target. Only that layer's publisher
// encoder is asked (a viewer on the low layer never costs the publisher
// a keyframe of the others).
func (d *DownTrack) keyframeLayer() int {
	if l := d.CurrentLayer(); l >= 0 {
		return l
	}
	return d.Target().Slot
}
