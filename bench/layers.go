package bench

// What a viewer of a simulcast publisher gets, over time: the layer the
// server says it forwards (track.layer), the pauses for bandwidth
// (track.stream) and the size of the keyframes that really arrive. From
// these timelines come the figures of the targets: the layer a
// viewer settled on, how long after the cap it settled, how long after the
// cap was lifted it was back on the top layer or playing again, and the
// share of the window it was paused or frozen. The figures are pure
// functions of the timelines (table-tested in layers_test.go); the
// recorder that builds them from the notifications is thin.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/relaysfu/relayd/client"
)

// layerEvent is one change of what a viewer gets of the video: a layer
// (Quality, RID) or a pause (Paused; Quality kept from before).
type layerEvent struct {
	AtNS    int64  `json:"at_ns"` // UnixNano at the viewer
	Quality string `json:"quality,omitempty"`
	RID     string `json:"rid,omitempty"`
	Paused  bool   `json:"paused"`
	Reason  string `json:"reason,omitempty"`
}

// layerState is what the viewer gets at some moment.
type layerState struct {
	quality string // "" before any track.layer
	paused  bool
}

// stateAt is the state after every event at or before t.
func stateAt(evs []layerEvent, t int64) layerState {
	var s layerState
	for _, e := range evs {
		if e.AtNS > t {
			break
		}
		s = layerState{quality: e.Quality, paused: e.Paused}
	}
	return s
}

// settledAt is when the viewer reached the state it kept from then until
// end: the time of the last change in (ref, end], or ref when nothing
// changed after ref. The first event is no change: it says what the viewer
// got from its first packet on (over a capped link it may arrive well after
// that packet). ok is false when no event came at all before end.
func settledAt(evs []layerEvent, ref, end int64) (at int64, ok bool) {
	at = ref
	var prev layerState
	seen := false
	for _, e := range evs {
		if e.AtNS > end {
			break
		}
		s := layerState{quality: e.Quality, paused: e.Paused}
		if seen && s == prev {
			continue // a repeat (another reason) is no change
		}
		if seen && e.AtNS > ref {
			at = e.AtNS
		}
		seen, prev = true, s
	}
	return at, seen
}

// firstAfter is the first moment at or after t the state satisfies want:
// t itself when it already does.
func firstAfter(evs []layerEvent, t int64, want func(layerState) bool) (int64, bool) {
	if want(stateAt(evs, t)) {
		return t, true
	}
	for _, e := range evs {
		if e.AtNS <= t {
			continue
		}
		if want(layerState{quality: e.Quality, paused: e.Paused}) {
			return e.AtNS, true
		}
	}
	return 0, false
}

// pausedSpans are the intervals the video was paused, clipped to [lo, hi).
func pausedSpans(evs []layerEvent, lo, hi int64) [][2]int64 {
	var out [][2]int64
	var from int64
	paused := false
	for _, e := range evs {
		switch {
		case e.Paused && !paused:
			paused, from = true, e.AtNS
		case !e.Paused && paused:
			paused = false
			out = appendClipped(out, from, e.AtNS, lo, hi)
		}
	}
	if paused {
		out = appendClipped(out, from, hi, lo, hi)
	}
	return out
}

func appendClipped(out [][2]int64, a, b, lo, hi int64) [][2]int64 {
	a, b = max(a, lo), min(b, hi)
	if b > a {
		out = append(out, [2]int64{a, b})
	}
	return out
}

// clipSpans clips spans to [lo, hi).
func clipSpans(spans [][2]int64, lo, hi int64) [][2]int64 {
	var out [][2]int64
	for _, s := range spans {
		out = appendClipped(out, s[0], s[1], lo, hi)
	}
	return out
}

// spanSum is the total length of disjoint spans.
func spanSum(spans [][2]int64) int64 {
	var n int64
	for _, s := range spans {
		n += s[1] - s[0]
	}
	return n
}

// minusSpans is the length of a's spans outside every span of b (each list
// disjoint and in order).
func minusSpans(a, b [][2]int64) int64 {
	var n int64
	for _, s := range a {
		n += s[1] - s[0]
		for _, t := range b {
			lo, hi := max(s[0], t[0]), min(s[1], t[1])
			if hi > lo {
				n -= hi - lo
			}
		}
	}
	return n
}

// switches counts the changes of layer in [lo, hi) (pauses are not
// switches).
func switches(evs []layerEvent, lo, hi int64) int {
	n := 0
	prev := ""
	for _, e := range evs {
		if e.Paused || e.Quality == "" {
			continue
		}
		if prev != "" && e.Quality != prev && e.AtNS >= lo && e.AtNS < hi {
			n++
		}
		prev = e.Quality
	}
	return n
}

// sizeEvent is a change of the size of the keyframes a viewer received.
type sizeEvent struct {
	AtNS   int64 `json:"at_ns"`
	Width  int   `json:"width"`
	Height int   `json:"height"`
}

// vp8KeyframeSize reads the width and height of a VP8 keyframe from the
// start of its payload (after the payload descriptor): the 3-byte frame
// tag, the start code 9d 01 2a, then 14-bit width and height (RFC 6386
// 9.1).
func vp8KeyframeSize(frame []byte) (w, h int, ok bool) {
	if len(frame) < 10 || frame[0]&1 != 0 || frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return 0, 0, false
	}
	w = int(frame[6]) | int(frame[7]&0x3f)<<8
	h = int(frame[8]) | int(frame[9]&0x3f)<<8
	return w, h, true
}

// layerRecorder follows one 1.1 viewer's notifications: the ids of the
// room's video tracks, and for them track.layer and track.stream, with
// the moment each arrived. Its goroutine runs from start until the client
// closes or stop.
type layerRecorder struct {
	mu     sync.Mutex
	video  map[string]bool // video track ids
	events []layerEvent    // of every video track, in arrival order
	done   chan struct{}
	wg     sync.WaitGroup
}

func newLayerRecorder(tracks []client.Track) *layerRecorder {
	r := &layerRecorder{video: map[string]bool{}, done: make(chan struct{})}
	for _, t := range tracks {
		if t.Kind == "video" {
			r.video[t.ID] = true
		}
	}
	return r
}

// start reads c's notifications until c closes or stop is called.
func (r *layerRecorder) start(c *client.Client) {
	r.wg.Go(func() {
		for {
			select {
			case n := <-c.Notifications():
				r.observe(n, time.Now().UnixNano())
			case <-c.Closed():
				return
			case <-r.done:
				return
			}
		}
	})
}

func (r *layerRecorder) stop() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	r.wg.Wait()
}

// observe records one notification received at now.
func (r *layerRecorder) observe(n client.Notification, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	last := layerState{}
	if k := len(r.events); k > 0 {
		last = layerState{quality: r.events[k-1].Quality, paused: r.events[k-1].Paused}
	}
	switch n.Method {
	case client.NotifyTrackPublished:
		var ev client.TrackEvent
		if n.Decode(&ev) == nil && ev.Track.Kind == "video" {
			r.video[ev.Track.ID] = true
		}
	case client.NotifyTrackLayer:
		var ev client.TrackLayerEvent
		if n.Decode(&ev) == nil {
			r.video[ev.TrackID] = true // only video tracks have layers
			r.events = append(r.events, layerEvent{AtNS: now, Quality: ev.Quality, RID: ev.RID, Paused: last.paused, Reason: ev.Reason})
		}
	case client.NotifyTrackStream:
		var ev client.TrackStreamEvent
		if n.Decode(&ev) == nil && r.video[ev.TrackID] {
			r.events = append(r.events, layerEvent{AtNS: now, Quality: last.quality, Paused: ev.State == "paused", Reason: ev.Reason})
		}
	}
}

func (r *layerRecorder) timeline() []layerEvent {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// askQuality asks for at most v.quality of every video track of the
// room (track.settings), when the viewer has one to ask for.
func (v *viewer) askQuality(ctx context.Context, c *client.Client, tracks []client.Track) error {
	if v.quality == "" {
		return nil
	}
	for _, t := range tracks {
		if t.Kind != "video" {
			continue
		}
		if _, err := c.TrackSettings(ctx, client.TrackSettingsParams{TrackID: t.ID, Quality: v.quality}); err != nil {
			return fmt.Errorf("track.settings %s quality %s: %w", t.ID, v.quality, err)
		}
	}
	return nil
}

// joinVersion joins as a 1.1 session when the viewer follows layers.
func (v *viewer) joinVersion(ctx context.Context, c *client.Client, v11 bool) (*client.JoinResult, error) {
	if !v11 {
		return c.Join(ctx)
	}
	return c.JoinWith(ctx, client.JoinParams{Version: "1.1"})
}

// viewerLayers is one viewer's layer figures (--simulcast). Moments are in
// ms from the window's start.
type viewerLayers struct {
	// Settled is what the viewer got at the end of the capped phase (the
	// lift, or the window's end): low, medium, high, or paused; "" when no
	// track.layer came. SettledHeight is the height of the keyframes it
	// received then.
	Settled       string `json:"settled"`
	SettledHeight int    `json:"settled_height"`
	// SettleMS: from the cap (at=, or the viewer's first video packet) to
	// the last change before the end of the capped phase; 0 when it kept
	// what it had.
	SettleMS *float64 `json:"settle_ms"`
	// After lift=: to the top layer playing, and (when paused at the
	// lift) to playing again.
	LiftToTopMS    *float64 `json:"lift_to_top_ms"`
	LiftToResumeMS *float64 `json:"lift_to_resume_ms"`
	AtEnd          string   `json:"at_end"` // at the window's end
	EndHeight      int      `json:"end_height"`
	PausedMS       float64  `json:"paused_ms"`                // of the window
	FreezeOutPause float64  `json:"freeze_outside_pauses_ms"` // frozen but not paused, of the window
	Switches       int      `json:"switches"`                 // layer changes in the window
	// FreezeAfterSettle: the share of [settled, end of the capped phase)
	// frozen while not paused (nil when that span is empty)
	FreezeAfterSettle *float64        `json:"freeze_after_settle_ratio"`
	Timeline          []timelineEntry `json:"timeline"`
	Sizes             []sizeEntry     `json:"sizes"`
	Freezes           [][2]float64    `json:"freezes"` // the window's freezes, [from, to) ms
}

type timelineEntry struct {
	TMS     float64 `json:"t_ms"`
	Quality string  `json:"quality,omitempty"`
	RID     string  `json:"rid,omitempty"`
	Paused  bool    `json:"paused"`
	Reason  string  `json:"reason,omitempty"`
}

type sizeEntry struct {
	TMS    float64 `json:"t_ms"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
}

func (s layerState) String() string {
	if s.paused {
		return "paused"
	}
	return s.quality
}

// heightAt is the height of the last keyframe size at or before t (0:
// none).
func heightAt(sizes []sizeEvent, t int64) int {
	h := 0
	for _, s := range sizes {
		if s.AtNS > t {
			break
		}
		h = s.Height
	}
	return h
}

// computeLayers is viewerLayers from the timelines of one viewer: evs
// (notifications), sizes (keyframes received) and freezes (spans in the
// window), for the window [ws, we), the cap at ref and the lift at lift
// (0: none).
func computeLayers(evs []layerEvent, sizes []sizeEvent, freezes [][2]int64, ws, we, ref, lift int64) *viewerLayers {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	end := we
	if lift > 0 {
		end = lift
	}
	vl := &viewerLayers{Settled: stateAt(evs, end).String(), SettledHeight: heightAt(sizes, end),
		AtEnd: stateAt(evs, we).String(), EndHeight: heightAt(sizes, we)}
	if at, ok := settledAt(evs, ref, end); ok {
		vl.SettleMS = num(ms(at - ref))
		if from := max(at, ws); end > from {
			frozen := minusSpans(clipSpans(freezes, from, end), pausedSpans(evs, from, end))
			vl.FreezeAfterSettle = num(float64(frozen) / float64(end-from))
		}
	}
	if lift > 0 {
		if t, ok := firstAfter(evs, lift, func(s layerState) bool { return s.quality == "high" && !s.paused }); ok && t < we {
			vl.LiftToTopMS = num(ms(t - lift))
		}
		if stateAt(evs, lift).paused {
			if t, ok := firstAfter(evs, lift, func(s layerState) bool { return !s.paused }); ok && t < we {
				vl.LiftToResumeMS = num(ms(t - lift))
			}
		}
	}
	paused := pausedSpans(evs, ws, we)
	vl.PausedMS = ms(spanSum(paused))
	vl.FreezeOutPause = ms(minusSpans(freezes, paused))
	vl.Switches = switches(evs, ws, we)
	for _, e := range evs {
		vl.Timeline = append(vl.Timeline, timelineEntry{TMS: ms(e.AtNS - ws), Quality: e.Quality, RID: e.RID, Paused: e.Paused, Reason: e.Reason})
	}
	for _, s := range sizes {
		vl.Sizes = append(vl.Sizes, sizeEntry{TMS: ms(s.AtNS - ws), Width: s.Width, Height: s.Height})
	}
	for _, f := range freezes {
		vl.Freezes = append(vl.Freezes, [2]float64{ms(f[0] - ws), ms(f[1] - ws)})
	}
	return vl
}

// layerFigures are the viewer's layer figures for the window [ws, we),
// the group's profile applying atNS and lifted liftNS into it (0: from the
// start, never), seen at now. Call it once the readers have stopped.
func (v *viewer) layerFigures(now, ws, we, atNS, liftNS int64) *viewerLayers {
	v.mu.Lock()
	r := v.layers
	v.mu.Unlock()
	var video *trackStats
	for _, t := range v.trackList() {
		if t.video {
			video = t
			break
		}
	}
	ref := ws + atNS
	var sizes []sizeEvent
	var freezes [][2]int64
	if video != nil {
		sizes = video.sizes
		freezes = video.freezeSpansIn(now, ws, we)
		if atNS == 0 {
			ref = video.firstAt.Load()
		}
	}
	lift := int64(0)
	if liftNS > 0 {
		lift = ws + liftNS
	}
	return computeLayers(r.timeline(), sizes, freezes, ws, we, ref, lift)
}
