package sfu

import (
	"reflect"
	"testing"
	"time"
)

// three is a 3-layer track arriving at 150/500/1500 kbit/s.
func three() []ChoiceLayer {
	return []ChoiceLayer{
		{Slot: 0, Width: 320, Height: 180, Rate: 150_000, Arriving: true},
		{Slot: 1, Width: 640, Height: 360, Rate: 500_000, Arriving: true},
		{Slot: 2, Width: 1280, Height: 720, Rate: 1_500_000, Arriving: true},
	}
}

func arriving(ls []ChoiceLayer, on ...bool) []ChoiceLayer {
	for i := range ls {
		ls[i].Arriving = on[i]
	}
	return ls
}

func TestRequestedRank(t *testing.T) {
	unknown := []ChoiceLayer{{Slot: 0}, {Slot: 1}, {Slot: 2}}
	for _, tc := range []struct {
		name string
		s    LayerSettings
		ls   []ChoiceLayer
		want int
	}{
		{"auto is high", LayerSettings{}, three(), 2},
		{"auto word", LayerSettings{Quality: "auto"}, three(), 2},
		{"low", LayerSettings{Quality: QualityLow}, three(), 0},
		{"medium", LayerSettings{Quality: QualityMedium}, three(), 1},
		{"maxWidth 640", LayerSettings{MaxWidth: 640}, three(), 1},
		{"maxWidth 639", LayerSettings{MaxWidth: 639}, three(), 0},
		{"maxHeight 720", LayerSettings{MaxHeight: 720}, three(), 2},
		{"nothing fits: the lowest", LayerSettings{MaxWidth: 100}, three(), 0},
		{"medium and a size", LayerSettings{Quality: QualityMedium, MaxWidth: 320}, three(), 0},
		{"unknown sizes fit", LayerSettings{MaxWidth: 10}, unknown, 2},
		{"two layers: medium is low", LayerSettings{Quality: QualityMedium}, three()[1:], 0},
		{"one layer", LayerSettings{Quality: QualityLow}, three()[2:], 0},
	} {
		if got := RequestedRank(tc.s, tc.ls); got != tc.want {
			t.Errorf("%s: rank %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestChooseLayers(t *testing.T) {
	req := func(r int) TrackChoice { return TrackChoice{Rank: r} }
	bw := func(r int) TrackChoice { return TrackChoice{Rank: r, Reason: ReasonBandwidth} }
	pub := func(r int) TrackChoice { return TrackChoice{Rank: r, Reason: ReasonPublisher} }
	bwPaused := TrackChoice{Rank: -1, Reason: ReasonBandwidth, PausedBandwidth: true}
	for _, tc := range []struct {
		name   string
		budget int
		tracks []TrackChoiceInput
		want   []TrackChoice
	}{
		{"no estimate: the target", -1, []TrackChoiceInput{{Layers: three(), Current: -1}}, []TrackChoice{req(2)}},
		{"paused by settings", -1, []TrackChoiceInput{{Settings: LayerSettings{Paused: true}, Layers: three()}}, []TrackChoice{{Rank: -1, Paused: true}}},
		{"plenty", 5_000_000, []TrackChoiceInput{{Layers: three(), Current: -1, CanPause: true}}, []TrackChoice{req(2)}},
		{"800k: the middle", 800_000, []TrackChoiceInput{{Layers: three(), Current: 2, CanPause: true}}, []TrackChoice{bw(1)}},
		{"300k: the low", 300_000, []TrackChoiceInput{{Layers: three(), Current: 1, CanPause: true}}, []TrackChoice{bw(0)}},
		{"100k: paused (1.1)", 100_000, []TrackChoiceInput{{Layers: three(), Current: 0, CanPause: true}}, []TrackChoice{bwPaused}},
		{"100k: the low (1.0)", 100_000, []TrackChoiceInput{{Layers: three(), Current: 0}}, []TrackChoice{bw(0)}},
		{"not simulcast, no room: paused", 100_000, []TrackChoiceInput{{Layers: three()[2:], Current: 0, CanPause: true}}, []TrackChoice{bwPaused}},
		{"not simulcast, room", 2_000_000, []TrackChoiceInput{{Layers: three()[2:], Current: 0, CanPause: true}}, []TrackChoice{req(0)}},
		// Hysteresis: going up needs 25% more than the rate, staying
		// needs the rate.
		{"up needs headroom", 1_600_000, []TrackChoiceInput{{Layers: three(), Current: 1, CanPause: true}}, []TrackChoice{bw(1)}},
		{"staying needs none", 1_600_000, []TrackChoiceInput{{Layers: three(), Current: 2, CanPause: true}}, []TrackChoice{req(2)}},
		{"up with headroom", 1_900_000, []TrackChoiceInput{{Layers: three(), Current: 1, CanPause: true}}, []TrackChoice{req(2)}},
		{"resume needs headroom", 160_000, []TrackChoiceInput{{Layers: three(), Current: -1, BWPaused: true, CanPause: true}}, []TrackChoice{bwPaused}},
		{"resume with headroom", 200_000, []TrackChoiceInput{{Layers: three(), Current: -1, BWPaused: true, CanPause: true}}, []TrackChoice{bw(0)}},
		{"requested below the budget", 5_000_000, []TrackChoiceInput{{Settings: LayerSettings{MaxWidth: 640}, Layers: three(), Current: -1, CanPause: true}}, []TrackChoice{req(1)}},
		{"target not arriving: below", -1, []TrackChoiceInput{{Layers: arriving(three(), true, true, false), Current: -1}}, []TrackChoice{pub(1)}},
		{"target not arriving: above", -1, []TrackChoiceInput{{Settings: LayerSettings{Quality: QualityLow}, Layers: arriving(three(), false, true, true), Current: -1}}, []TrackChoice{pub(1)}},
		{"nothing arriving: the target", -1, []TrackChoiceInput{{Layers: arriving(three(), false, false, false), Current: -1}}, []TrackChoice{req(2)}},
		{"bandwidth below publisher", 300_000, []TrackChoiceInput{{Layers: arriving(three(), true, true, false), Current: 1, CanPause: true}}, []TrackChoice{bw(0)}},
		{"two tracks share: both get the low first", 700_000, []TrackChoiceInput{
			{Layers: three(), Current: 1, CanPause: true}, {Layers: three(), Current: 1, CanPause: true},
		}, []TrackChoice{bw(1), bw(0)}},
		{"two tracks, one paused by settings", 700_000, []TrackChoiceInput{
			{Settings: LayerSettings{Paused: true}, Layers: three()}, {Layers: three(), Current: 1, CanPause: true},
		}, []TrackChoice{{Rank: -1, Paused: true}, bw(1)}},
		{"unknown rates fit", 1, []TrackChoiceInput{{Layers: []ChoiceLayer{{Slot: 0, Arriving: true}, {Slot: 1, Arriving: true}}, Current: -1, CanPause: true}}, []TrackChoice{req(1)}},
	} {
		if got := ChooseLayers(tc.budget, tc.tracks); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestHoldLower(t *testing.T) {
	const s = int64(time.Second)
	top := TrackChoice{Rank: 2}
	mid := TrackChoice{Rank: 1, Reason: ReasonBandwidth}
	bwPaused := TrackChoice{Rank: -1, Reason: ReasonBandwidth, PausedBandwidth: true}
	for _, tc := range []struct {
		name       string
		prev, next TrackChoice
		since, now int64
		wait       bool
		newSince   int64
	}{
		{"down: held at first", top, mid, 0, 10 * s, true, 10 * s},
		{"down: still held", top, mid, 10 * s, 10*s + s/2, true, 10 * s},
		{"down: applied after a second", top, mid, 10 * s, 11 * s, false, 10 * s},
		{"pause: held for two seconds", mid, bwPaused, 10 * s, 11 * s, true, 10 * s},
		{"pause: applied", mid, bwPaused, 10 * s, 12 * s, false, 10 * s},
		{"down on request: at once", top, TrackChoice{Rank: 1}, 0, 10 * s, false, 0},
		{"up: at once", mid, top, 5 * s, 10 * s, false, 0},
		{"resume: at once", bwPaused, TrackChoice{Rank: 0, Reason: ReasonBandwidth}, 0, 10 * s, false, 0},
		{"the dip ended: forgotten", top, top, 10 * s, 10*s + s/2, false, 0},
		{"paused by request: nothing held", TrackChoice{Rank: -1, Paused: true}, mid, 0, 10 * s, false, 0},
	} {
		wait, since := holdLower(tc.prev, tc.next, tc.since, tc.now, false)
		if wait != tc.wait || since != tc.newSince {
			t.Errorf("%s: wait %v since %d, want %v %d", tc.name, wait, since, tc.wait, tc.newSince)
		}
	}
	// Overrun: a lower rank at once; a pause still holds.
	if wait, _ := holdLower(top, mid, 0, 10*s, true); wait {
		t.Error("overrun: a lower rank was held")
	}
	if wait, _ := holdLower(mid, bwPaused, 10*s, 11*s, true); !wait {
		t.Error("overrun: a pause was applied before pauseHold")
	}
}

func TestOverrun(t *testing.T) {
	const now = int64(100 * time.Second)
	recent, old := now-int64(time.Second/2), now-int64(3*time.Second)
	for _, tc := range []struct {
		name        string
		cur, budget int
		lossAt      int64
		want        bool
	}{
		{"1.5 Mbit/s into 650 kbit/s, losing", 1_500_000, 650_000, recent, true},
		{"just over 25%, losing", 1_300_000, 1_000_000, recent, true},
		{"20% over, losing: a dip", 1_200_000, 1_000_000, recent, false},
		{"far over, no loss: a queue, not a full one", 1_500_000, 650_000, 0, false},
		{"far over, loss long ago", 1_500_000, 650_000, old, false},
		{"no estimate", 1_500_000, -1, recent, false},
		{"nothing forwarded", 0, 0, recent, false},
	} {
		if got := overrun(tc.cur, tc.budget, tc.lossAt, now); got != tc.want {
			t.Errorf("%s: overrun = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMayPause(t *testing.T) {
	const now = int64(100 * time.Second)
	for _, tc := range []struct {
		name           string
		v11, pausedNow bool
		lossAt         int64
		want           bool
	}{
		{"1.0: never", false, false, now, false},
		{"1.0 even if paused somehow", false, true, now, false},
		{"1.1, loss just now", true, false, now - int64(time.Second), true},
		{"1.1, loss 5 s ago", true, false, now - int64(pauseNeedsLoss), true},
		{"1.1, loss 6 s ago: delay alone does not pause", true, false, now - int64(6*time.Second), false},
		{"1.1, never any loss", true, false, 0, false},
		{"1.1, paused: stays pausable without new loss", true, true, 0, true},
	} {
		if got := mayPause(tc.v11, tc.pausedNow, tc.lossAt, now); got != tc.want {
			t.Errorf("%s: mayPause = %v, want %v", tc.name, got, tc.want)
		}
	}
}
