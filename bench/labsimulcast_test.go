package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLabSimulcast is the end-to-end test with real pion peers in
// the lab: relayd in the server namespace, a publisher sending three
// simulcast layers (320x180, 640x360, 960x540 at 150, 500 and 1,500
// kbit/s), and three Go viewers, each in its own namespace and a 1.1
// session: one on a perfect link, one capped at 800 kbit/s from its join,
// and one on a perfect link in a room the publisher's tracks are relayed
// into. The uncapped viewers must settle on the top layer and the capped
// one on the middle layer, by the server's word (track.layer) and by the
// size of the keyframes they receive; the capped one must keep playing.
// It skips, saying so, when the lab cannot be made or the server does not
// take simulcast (its track objects list no layers).
func TestLabSimulcast(t *testing.T) {
	labTest(t)
	bin := buildRelayd(t)
	t.Cleanup(func() { leftovers(t, bin) })
	capped, err := ParseViewerNet("1:cap=800kbit")
	if err != nil {
		t.Fatal(err)
	}
	dest, err := ParseViewerNet("1:dest")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	rep, err := RunLab(ctx, Config{
		Spawn:      bin,
		Simulcast:  true,
		Viewers:    1,
		ViewerNets: []ViewerNet{capped, dest},
		Relays:     1,
		// The estimate needs a few seconds of feedback to come down to the
		// cap, and the switch waits for the middle layer's keyframe: the
		// protocol allows 3 s for a down switch (§8.10).
		Warmup:            6 * time.Second,
		Duration:          6 * time.Second, // shareOn's window below
		Audio:             true,
		FirstFrameTimeout: 15 * time.Second,
	}, &stdout, &stderr)
	if errors.Is(err, errNoSimulcast) {
		t.Skipf("simulcast lab test skipped: %v", err)
	}
	if err != nil {
		t.Fatalf("RunLab: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("report:\n%s", stdout.String())
	if len(rep.Groups) != 3 {
		t.Fatalf("groups %+v", rep.Groups)
	}
	want := []struct {
		name    string
		quality string
		height  int
	}{
		{"healthy", "high", 540},
		{"cap=800kbit", "medium", 360},
		{"none,dest", "high", 540},
	}
	for i, w := range want {
		g := rep.Groups[i]
		if g.Name != w.name {
			t.Fatalf("group %d is %q, want %q", i, g.Name, w.name)
		}
		if g.WithFrame != 1 || len(g.PerViewer) != 1 {
			t.Errorf("%s: %d of 1 viewers with a frame", g.Name, g.WithFrame)
			continue
		}
		l := g.PerViewer[0].Layers
		if l == nil {
			t.Errorf("%s: no layer figures", g.Name)
			continue
		}
		// Settled: on that layer most of the window, with its keyframes.
		// (Not "at the window's end": on a machine loaded by other tests,
		// scheduling delay reads as a queue and a capped viewer may dip
		// a layer for a second near the end, as seen once at 5.5-6.5 s.)
		on, hs := shareOn(l.Timeline, w.quality, 6000), heightShare(l.Sizes, w.height, 6000)
		if on < 0.5 || hs < 0.5 {
			t.Errorf("%s: on %q %.0f%% of the window, with %dp keyframes %.0f%% of it: want most of it; timeline %+v, sizes %+v",
				g.Name, w.quality, 100*on, w.height, 100*hs, l.Timeline, l.Sizes)
		}
		// Playing: frames were shown through the window, not one
		// keyframe now and then.
		if fps := f1(g.FPS); g.FPS == nil || *g.FPS < 10 {
			t.Errorf("%s: %s frames shown per second", g.Name, fps)
		}
	}
	// The capped viewer received about what its link carries, and the
	// publisher sent every layer (someone needs each: the relay all).
	if c := rep.Groups[1]; c.ReceivedBps == nil || *c.ReceivedBps > 1.3*800_000 {
		t.Errorf("capped viewer received %v bit/s", c.ReceivedBps)
	}
	if len(rep.Publisher.Layers) != 3 {
		t.Fatalf("publisher layers %+v", rep.Publisher.Layers)
	}
	for _, l := range rep.Publisher.Layers {
		if l.Packets == 0 {
			t.Errorf("layer %s: nothing sent in the window", l.RID)
		}
	}
	for _, s := range []string{"simulcast:", "settled on"} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("no %q in the table", s)
		}
	}
}

// TestLabDynacast: two viewers of a three-layer publisher both ask for the
// low layer (track.settings); both get it (180p keyframes), and the server
// tells the publisher, whose client stops the two upper layers
// (publisher.layers, honoured by client.LayerTrack): in the window only q
// is sent. Skips as TestLabSimulcast does.
func TestLabDynacast(t *testing.T) {
	labTest(t)
	bin := buildRelayd(t)
	t.Cleanup(func() { leftovers(t, bin) })
	low, err := ParseViewerNet("2:quality=low")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	rep, err := RunLab(ctx, Config{
		Spawn: bin, Simulcast: true, ViewerNets: []ViewerNet{low},
		// Layers unneeded for 5 s are switched off (§8.10): the window
		// opens after that.
		Warmup: 7 * time.Second, Duration: 3 * time.Second, Audio: true, FirstFrameTimeout: 15 * time.Second,
	}, &stdout, &stderr)
	if errors.Is(err, errNoSimulcast) {
		t.Skipf("dynacast lab test skipped: %v", err)
	}
	if err != nil {
		t.Fatalf("RunLab: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("report:\n%s", stdout.String())
	g := rep.Groups[0]
	for _, v := range g.PerViewer {
		if v.Layers == nil || v.Layers.AtEnd != "low" || v.Layers.EndHeight != 180 {
			t.Errorf("%s: %+v, want low with 180p keyframes", v.ID, v.Layers)
		}
	}
	if fps := f1(g.FPS); g.FPS == nil || *g.FPS < 10 {
		t.Errorf("%s frames shown per second", fps)
	}
	for _, l := range rep.Publisher.Layers {
		switch {
		case l.RID == "q" && (l.Packets == 0 || l.ActiveShare < 0.9):
			t.Errorf("layer q: %d packets, sent %.0f%% of the window", l.Packets, l.ActiveShare*100)
		case l.RID != "q" && (l.Packets > 0 || l.ActiveShare > 0):
			t.Errorf("layer %s no one needs: %d packets, sent %.0f%% of the window", l.RID, l.Packets, l.ActiveShare*100)
		}
	}
	if got := rep.Publisher.ActiveLayers; len(got) != 1 || got[0] != "q" {
		t.Errorf("the publisher's last publisher.layers %v, want [q]", got)
	}
}

// shareOn is the share of the window [0, windowMS) a viewer spent
// playing quality (not paused), from its layer timeline.
func shareOn(tl []timelineEntry, quality string, windowMS float64) float64 {
	var on []float64 // the moments the state changes, and whether it is quality then
	var is []bool
	for _, e := range tl {
		on, is = append(on, e.TMS), append(is, e.Quality == quality && !e.Paused)
	}
	return share(on, is, windowMS)
}

// heightShare is the share of the window [0, windowMS) the keyframes a
// viewer received were of that height (a height holds until the next).
func heightShare(sizes []sizeEntry, height int, windowMS float64) float64 {
	var on []float64
	var is []bool
	for _, sz := range sizes {
		on, is = append(on, sz.TMS), append(is, sz.Height == height)
	}
	return share(on, is, windowMS)
}

// share is the share of [0, windowMS) in which the state that changes at
// the moments at (in order) to the values is is true.
func share(at []float64, is []bool, windowMS float64) float64 {
	total, cur, from := 0.0, false, 0.0
	for i, t := range at {
		t = min(max(t, 0), windowMS)
		if cur {
			total += t - from
		}
		cur, from = is[i], t
	}
	if cur {
		total += windowMS - from
	}
	return total / windowMS
}

// The shares TestLabSimulcast judges a viewer by: a state holds from its
// change to the next, clipped to the window.
func TestShareOn(t *testing.T) {
	tl := []timelineEntry{{TMS: -500, Quality: "high"}, {TMS: 1000, Quality: "medium"}, {TMS: 5500, Quality: "low"}, {TMS: 5800, Quality: "medium", Paused: true}}
	for _, c := range []struct {
		quality string
		want    float64
	}{{"high", 1000.0 / 6000}, {"medium", 4500.0 / 6000}, {"low", 300.0 / 6000}, {"none", 0}} {
		if got := shareOn(tl, c.quality, 6000); got != c.want {
			t.Errorf("shareOn %s: %v, want %v", c.quality, got, c.want)
		}
	}
	sizes := []sizeEntry{{TMS: -7000, Height: 540}, {TMS: 2000, Height: 360}, {TMS: 9000, Height: 180}}
	if got := heightShare(sizes, 360, 6000); got != 4000.0/6000 {
		t.Errorf("heightShare 360: %v", got)
	}
	if got := heightShare(sizes, 180, 6000); got != 0 {
		t.Errorf("heightShare 180 (after the window): %v", got)
	}
	if got := shareOn(nil, "high", 6000); got != 0 {
		t.Errorf("no timeline: %v", got)
	}
}
