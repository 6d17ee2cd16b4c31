package bench

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/relaysfu/relayd/client"
)

const ms = int64(1e6)

func ev(at int64, q string, paused bool) layerEvent {
	return layerEvent{AtNS: at * ms, Quality: q, Paused: paused}
}

func TestSettledAt(t *testing.T) {
	for _, tc := range []struct {
		name     string
		evs      []layerEvent
		ref, end int64 // ms
		want     int64 // ms
		ok       bool
	}{
		{name: "no events", ref: 0, end: 10000, want: 0, ok: false},
		{name: "one layer before the cap: kept", evs: []layerEvent{ev(100, "high", false)}, ref: 1000, end: 10000, want: 1000, ok: true},
		{name: "the first layer told after the first packet: no change", evs: []layerEvent{ev(1400, "medium", false)}, ref: 1000, end: 10000, want: 1000, ok: true},
		{name: "switch down after the cap", evs: []layerEvent{ev(100, "high", false), ev(2500, "medium", false)}, ref: 1000, end: 10000, want: 2500, ok: true},
		{name: "down then back: the last change", evs: []layerEvent{ev(100, "high", false), ev(2000, "low", false), ev(3000, "medium", false)}, ref: 1000, end: 10000, want: 3000, ok: true},
		{name: "a repeat with another reason is no change", evs: []layerEvent{ev(100, "high", false), ev(2000, "medium", false), ev(4000, "medium", false)}, ref: 1000, end: 10000, want: 2000, ok: true},
		{name: "changes after the end do not count", evs: []layerEvent{ev(100, "high", false), ev(2000, "medium", false), ev(12000, "high", false)}, ref: 1000, end: 10000, want: 2000, ok: true},
		{name: "paused is a state", evs: []layerEvent{ev(100, "low", false), ev(3000, "low", true)}, ref: 1000, end: 10000, want: 3000, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, ok := settledAt(tc.evs, tc.ref*ms, tc.end*ms)
			if ok != tc.ok || (ok && at != tc.want*ms) {
				t.Fatalf("settledAt = %d ms, %v; want %d ms, %v", at/ms, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestFirstAfterAndPaused(t *testing.T) {
	evs := []layerEvent{ev(0, "high", false), ev(1000, "low", false), ev(2000, "low", true), ev(6000, "low", false), ev(7000, "medium", false), ev(8000, "high", false)}
	top := func(s layerState) bool { return s.quality == "high" && !s.paused }
	playing := func(s layerState) bool { return !s.paused }
	for _, tc := range []struct {
		name string
		t    int64
		want func(layerState) bool
		at   int64
		ok   bool
	}{
		{"already on top", 500, top, 500, true},
		{"top after the lift", 5000, top, 8000, true},
		{"resumed after the lift", 5000, playing, 6000, true},
		{"playing already", 6500, playing, 6500, true},
		{"never", 5000, func(s layerState) bool { return s.quality == "none" }, 0, false},
	} {
		at, ok := firstAfter(evs, tc.t*ms, tc.want)
		if ok != tc.ok || at != tc.at*ms {
			t.Errorf("%s: firstAfter = %d ms %v, want %d ms %v", tc.name, at/ms, ok, tc.at, tc.ok)
		}
	}
	if got := pausedSpans(evs, 0, 10000*ms); !slices.Equal(got, [][2]int64{{2000 * ms, 6000 * ms}}) {
		t.Errorf("pausedSpans %v", got)
	}
	if got := pausedSpans(evs, 3000*ms, 5000*ms); !slices.Equal(got, [][2]int64{{3000 * ms, 5000 * ms}}) {
		t.Errorf("pausedSpans clipped %v", got)
	}
	still := []layerEvent{ev(0, "low", false), ev(2000, "low", true)}
	if got := pausedSpans(still, 0, 5000*ms); !slices.Equal(got, [][2]int64{{2000 * ms, 5000 * ms}}) {
		t.Errorf("pausedSpans to the end %v", got)
	}
	if n := switches(evs, 0, 10000*ms); n != 3 { // high->low, low->medium, medium->high
		t.Errorf("switches %d, want 3", n)
	}
	if got := minusSpans([][2]int64{{0, 10}, {20, 30}}, [][2]int64{{5, 25}}); got != 10 {
		t.Errorf("minusSpans %d, want 10", got)
	}
}

func TestComputeLayers(t *testing.T) {
	ws, we := int64(10_000)*ms, int64(40_000)*ms
	// Capped at 15 s (5 s in), switched down to medium at 16.5 s, the cap
	// lifted at 30 s, back on high at 33 s; a 1 s freeze at 20 s.
	evs := []layerEvent{ev(9000, "high", false), ev(16500, "medium", false), ev(33000, "high", false)}
	sizes := []sizeEvent{{AtNS: 9000 * ms, Width: 960, Height: 540}, {AtNS: 16600 * ms, Width: 640, Height: 360}, {AtNS: 33100 * ms, Width: 960, Height: 540}}
	freezes := [][2]int64{{20_000 * ms, 21_000 * ms}}
	vl := computeLayers(evs, sizes, freezes, ws, we, 15_000*ms, 30_000*ms)
	if vl.Settled != "medium" || vl.SettledHeight != 360 || vl.AtEnd != "high" || vl.EndHeight != 540 {
		t.Fatalf("settled %q %d, at end %q %d", vl.Settled, vl.SettledHeight, vl.AtEnd, vl.EndHeight)
	}
	if vl.SettleMS == nil || *vl.SettleMS != 1500 {
		t.Fatalf("settle %v ms, want 1500", vl.SettleMS)
	}
	if vl.LiftToTopMS == nil || *vl.LiftToTopMS != 3000 || vl.LiftToResumeMS != nil {
		t.Fatalf("lift to top %v, to resume %v", vl.LiftToTopMS, vl.LiftToResumeMS)
	}
	// 1 s frozen of the 13.5 s from 16.5 s to the lift
	if vl.FreezeAfterSettle == nil || *vl.FreezeAfterSettle < 0.074 || *vl.FreezeAfterSettle > 0.075 {
		t.Fatalf("freeze after settle %v", vl.FreezeAfterSettle)
	}
	if vl.PausedMS != 0 || vl.FreezeOutPause != 1000 || vl.Switches != 2 || len(vl.Timeline) != 3 || vl.Timeline[1].TMS != 6500 {
		t.Fatalf("%+v", vl)
	}

	// Paused for bandwidth from 17 s, resumed 2 s after the lift at 30 s;
	// the freeze covering the pause does not count as frozen.
	evs = []layerEvent{ev(9000, "high", false), ev(16000, "low", false), ev(17000, "low", true), ev(32000, "low", false), ev(35000, "high", false)}
	freezes = [][2]int64{{16_500 * ms, 32_200 * ms}}
	vl = computeLayers(evs, nil, freezes, ws, we, 15_000*ms, 30_000*ms)
	if vl.Settled != "paused" || vl.LiftToResumeMS == nil || *vl.LiftToResumeMS != 2000 || vl.LiftToTopMS == nil || *vl.LiftToTopMS != 5000 {
		t.Fatalf("settled %q, resume %v, top %v", vl.Settled, vl.LiftToResumeMS, vl.LiftToTopMS)
	}
	if vl.PausedMS != 15000 || vl.FreezeOutPause != 700 {
		t.Fatalf("paused %v ms, frozen outside pauses %v ms; want 15000, 700", vl.PausedMS, vl.FreezeOutPause)
	}
}

func TestAggregateLayers(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	vs := []viewerFigures{
		{Joined: true, PLIs: 2, Layers: &viewerLayers{Settled: "medium", SettledHeight: 360, SettleMS: f(1200), LiftToTopMS: f(3000), PausedMS: 0, FreezeOutPause: 100, Switches: 2, FreezeAfterSettle: f(0.01)}},
		{Joined: true, PLIs: 0, Layers: &viewerLayers{Settled: "paused", SettledHeight: 180, SettleMS: f(4000), LiftToResumeMS: f(2000), PausedMS: 5000, FreezeOutPause: 0, Switches: 1, FreezeAfterSettle: f(0)}},
		{Joined: false, Layers: &viewerLayers{Settled: "high"}},
		{Joined: true}, // no layer figures: not simulcast
	}
	g := aggregateLayers(vs, 10, true)
	if g == nil {
		t.Fatal("nil")
	}
	if g.Settled["medium"] != 1 || g.Settled["paused"] != 1 || g.Settled["high"] != 0 || g.SettledHeights["360"] != 1 {
		t.Fatalf("settled %v %v", g.Settled, g.SettledHeights)
	}
	if g.SettleMS.Count != 2 || g.LiftToTopMS.Count != 1 || g.NotOnTop != 1 || g.LiftToResumeMS.Count != 1 || g.NotResumed != 0 {
		t.Fatalf("%+v", g)
	}
	if g.Switches != 3 || *g.PausedRatio != 0.25 || *g.FreezeOutPause != 0.005 || *g.FreezeOutPauseMax != 0.01 || *g.SwitchesPerViewer != 1.5 || *g.PLIsPerLayerSwitch != 0.666667 { // num keeps 6 digits
		t.Fatalf("ratios paused %v frozen %v/%v switches %v plis %v", *g.PausedRatio, *g.FreezeOutPause, *g.FreezeOutPauseMax, *g.SwitchesPerViewer, *g.PLIsPerLayerSwitch)
	}
	if *g.FreezeAfterSettle != 0.005 || *g.FreezeAfterSettleMax != 0.01 {
		t.Fatalf("after settle %v %v", *g.FreezeAfterSettle, *g.FreezeAfterSettleMax)
	}
	if aggregateLayers([]viewerFigures{{Joined: true}}, 10, false) != nil {
		t.Fatal("layer figures for a group without simulcast")
	}
}

func TestLayerRecorder(t *testing.T) {
	r := newLayerRecorder([]client.Track{{ID: "TR_a", Kind: "audio"}, {ID: "TR_v", Kind: "video"}})
	n := func(method string, params any) client.Notification {
		b, _ := json.Marshal(params)
		return client.Notification{Method: method, Params: b}
	}
	r.observe(n(client.NotifyTrackLayer, client.TrackLayerEvent{TrackID: "TR_v", Quality: "high", RID: "f", Reason: "requested"}), 1)
	r.observe(n(client.NotifyTrackStream, client.TrackStreamEvent{TrackID: "TR_a", State: "paused", Reason: "relay_paused"}), 2) // audio: ignored
	r.observe(n(client.NotifyTrackStream, client.TrackStreamEvent{TrackID: "TR_v", State: "paused", Reason: "bandwidth"}), 3)
	r.observe(n(client.NotifyTrackStream, client.TrackStreamEvent{TrackID: "TR_v", State: "active", Reason: "bandwidth"}), 4)
	r.observe(n(client.NotifyTrackPublished, client.TrackEvent{Track: client.Track{ID: "TR_w", Kind: "video"}}), 5)
	r.observe(n(client.NotifyTrackStream, client.TrackStreamEvent{TrackID: "TR_w", State: "paused", Reason: "relay_paused"}), 6)
	want := []layerEvent{
		{AtNS: 1, Quality: "high", RID: "f", Reason: "requested"},
		{AtNS: 3, Quality: "high", Paused: true, Reason: "bandwidth"},
		{AtNS: 4, Quality: "high", Reason: "bandwidth"},
		{AtNS: 6, Quality: "high", Paused: true, Reason: "relay_paused"},
	}
	if got := r.timeline(); !slices.Equal(got, want) {
		t.Fatalf("timeline %+v", got)
	}
}

func TestVP8KeyframeSize(t *testing.T) {
	for _, clip := range []struct {
		b    []byte
		w, h int
	}{{clipQ, 320, 180}, {clipH, 640, 360}, {clipF, 960, 540}, {clipIVF, 640, 480}} {
		c, err := parseIVF(clip.b)
		if err != nil {
			t.Fatal(err)
		}
		w, h, ok := vp8KeyframeSize(c.frames[0])
		if !ok || w != clip.w || h != clip.h || c.width != clip.w {
			t.Errorf("keyframe %dx%d %v, want %dx%d", w, h, ok, clip.w, clip.h)
		}
		if _, _, ok := vp8KeyframeSize(c.frames[1]); ok {
			t.Error("a delta frame read as a keyframe")
		}
	}
}

func TestParseTiming(t *testing.T) {
	for _, tc := range []struct {
		in, rest string
		tm       Timing
		err      bool
	}{
		{in: "cap=800kbit", rest: "cap=800kbit"},
		{in: "cap=800kbit,at=2s,lift=20s", rest: "cap=800kbit", tm: Timing{At: 2e9, Lift: 20e9}},
		{in: "loss=2%,dest", rest: "loss=2%", tm: Timing{Dest: true}},
		{in: "dest", rest: "", tm: Timing{Dest: true}},
		{in: "cap=1mbit,quality=low", rest: "cap=1mbit", tm: Timing{Quality: "low"}},
		{in: "quality=auto", err: true},
		{in: "cap=1mbit,lift=5s,at=6s", err: true},
		{in: "lift=0s", err: true},
		{in: "lift=x", err: true},
		{in: "dest=1", err: true},
		{in: "at=1s,at=2s", err: true},
	} {
		rest, tm, err := parseTiming(tc.in)
		if (err != nil) != tc.err || (err == nil && (rest != tc.rest || tm != tc.tm)) {
			t.Errorf("parseTiming(%q) = %q %+v %v", tc.in, rest, tm, err)
		}
	}
	vn, err := ParseViewerNet("5:cap=800kbit,at=2s,lift=20s")
	if err != nil || vn.Viewers != 5 || vn.Profile.String() != "cap=800kbit" || vn.Timing.String() != "at=2s,lift=20s" {
		t.Fatalf("%+v %v", vn, err)
	}
	if _, err := ParseLayerBitrates("150k,500k,1.5M"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"500k,150k", "1k,2k,3k,4k", "x"} {
		if _, err := ParseLayerBitrates(bad); err == nil {
			t.Errorf("ParseLayerBitrates(%q) took it", bad)
		}
	}
}
