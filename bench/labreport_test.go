package bench

import (
	"math"
	"strings"
	"testing"
	"time"
)

func f64(v float64) *float64 { return &v }

func near(p *float64, want float64) bool {
	return p != nil && math.Abs(*p-want) < 1e-9*math.Max(1, math.Abs(want))
}

// TestAggregateGroup checks each figure of a group against its definition,
// for a 10 s window in which the publisher sent 1000 video and 500 audio
// packets.
func TestAggregateGroup(t *testing.T) {
	const secs, sentV, sentA = 10.0, 1000, 500
	good := viewerFigures{ID: "a", Joined: true, ICEState: "connected", ConnectMS: f64(10), JoinedMS: f64(20),
		FirstFrameMS: f64(100), VideoReceived: 1000, AudioReceived: 500, Bytes: 2_000_000, FramesShown: 300,
		FreezeMS: 0, Late: 3}
	lossy := viewerFigures{ID: "b", Joined: true, ICEState: "connected", ConnectMS: f64(12), JoinedMS: f64(22),
		FirstFrameMS: f64(900), VideoReceived: 800, AudioReceived: 400, Bytes: 1_000_000, FramesShown: 150,
		FreezeMS: 4000, PLIs: 4, Late: 50, Duplicates: 2}
	dark := viewerFigures{ID: "c", Joined: true, ICEState: "checking", ConnectMS: f64(11), JoinedMS: f64(21),
		FreezeMS: 10000} // joined, no media at all
	refused := viewerFigures{ID: "d", ICEState: "none", JoinError: "join: 4003 forbidden"}

	tests := []struct {
		name  string
		vs    []viewerFigures
		check func(t *testing.T, g GroupReport)
	}{
		{"one perfect viewer", []viewerFigures{good}, func(t *testing.T, g GroupReport) {
			if g.Joined != 1 || g.WithFrame != 1 || g.Expected != 1500 || g.Received != 1500 {
				t.Errorf("joined %d, with frame %d, expected %d, received %d", g.Joined, g.WithFrame, g.Expected, g.Received)
			}
			if !near(g.LossRatio, 0) || !near(g.VideoLossRatio, 0) || !near(g.FreezeRatio, 0) || !near(g.FPS, 30) ||
				!near(g.ReceivedBps, 1_600_000) {
				t.Errorf("loss %v video loss %v freeze %v fps %v bps %v", *g.LossRatio, *g.VideoLossRatio, *g.FreezeRatio, *g.FPS, *g.ReceivedBps)
			}
		}},
		{"means over the joined viewers; loss over all their packets", []viewerFigures{good, lossy}, func(t *testing.T, g GroupReport) {
			// received 1500 + 1200 of 3000
			if !near(g.LossRatio, 0.1) || !near(g.VideoLossRatio, 0.1) {
				t.Errorf("loss %v, video loss %v, want 0.1 both", *g.LossRatio, *g.VideoLossRatio)
			}
			// (0 + 4 s) / (2 x 10 s); worst 4 s / 10 s
			if !near(g.FreezeRatio, 0.2) || !near(g.FreezeRatioMax, 0.4) {
				t.Errorf("freeze %v max %v, want 0.2 and 0.4", *g.FreezeRatio, *g.FreezeRatioMax)
			}
			if !near(g.FPS, 22.5) || !near(g.ReceivedBps, 1_200_000) || !near(g.PLIsPerViewerS, 0.2) {
				t.Errorf("fps %v bps %v plis/viewer/s %v", *g.FPS, *g.ReceivedBps, *g.PLIsPerViewerS)
			}
			if g.PLIs != 4 || g.Late != 53 || g.Duplicates != 2 {
				t.Errorf("plis %d late %d dups %d", g.PLIs, g.Late, g.Duplicates)
			}
			if g.FirstFrameMS.Count != 2 || g.ConnectMS.Count != 2 || g.JoinedMS.Count != 2 {
				t.Errorf("join samples %d/%d/%d", g.ConnectMS.Count, g.JoinedMS.Count, g.FirstFrameMS.Count)
			}
		}},
		{"a viewer that joined and got nothing is all lost and frozen", []viewerFigures{good, dark}, func(t *testing.T, g GroupReport) {
			if g.Joined != 2 || g.WithFrame != 1 || !near(g.LossRatio, 0.5) || !near(g.FreezeRatio, 0.5) || !near(g.FreezeRatioMax, 1) {
				t.Errorf("joined %d with frame %d loss %v freeze %v max %v", g.Joined, g.WithFrame, *g.LossRatio, *g.FreezeRatio, *g.FreezeRatioMax)
			}
			if g.ICEStates["checking"] != 1 || g.ICEStates["connected"] != 1 {
				t.Errorf("ICE states %v", g.ICEStates)
			}
		}},
		{"a viewer whose join failed counts only as a failure", []viewerFigures{good, refused}, func(t *testing.T, g GroupReport) {
			if g.Joined != 1 || g.WithFrame != 1 || g.Expected != 1500 || !near(g.LossRatio, 0) || !near(g.FPS, 30) {
				t.Errorf("joined %d with frame %d expected %d loss %v fps %v", g.Joined, g.WithFrame, g.Expected, *g.LossRatio, *g.FPS)
			}
			if len(g.JoinErrors) != 1 || !strings.Contains(g.JoinErrors[0], "4003") {
				t.Errorf("join errors %q", g.JoinErrors)
			}
		}},
		{"nobody joined: no figure is made up", []viewerFigures{refused}, func(t *testing.T, g GroupReport) {
			if g.LossRatio != nil || g.FreezeRatio != nil || g.FPS != nil || g.ReceivedBps != nil || g.WithFrame != 0 {
				t.Errorf("figures without viewers: %+v", g)
			}
		}},
		{"more packets than sent (never expected) do not make negative loss", []viewerFigures{{Joined: true, VideoReceived: 1200, AudioReceived: 600}}, func(t *testing.T, g GroupReport) {
			if !near(g.LossRatio, 0) {
				t.Errorf("loss %v", *g.LossRatio)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lat HistSnap
			tt.check(t, aggregateGroup(tt.vs, &lat, sentV, sentA, secs))
		})
	}
}

func TestHistJSONRoundTrip(t *testing.T) {
	var h Hist
	for _, d := range []time.Duration{time.Millisecond, 3 * time.Millisecond, 250 * time.Millisecond, 2 * time.Second} {
		h.Record(d)
	}
	var s HistSnap
	h.Snapshot(&s)
	var back HistSnap
	if err := histToJSON(&s).addTo(&back); err != nil {
		t.Fatal(err)
	}
	if back != s {
		t.Error("histogram changed on the wire")
	}
	if err := (&histJSON{Buckets: [][2]uint64{{1 << 40, 1}}}).addTo(&back); err == nil {
		t.Error("a bucket out of range was accepted")
	}
}

func TestParseViewerNet(t *testing.T) {
	for _, tt := range []struct {
		in, want, err, transport string
		n                        int
	}{
		{in: "20:cap=600kbit,loss=2%", n: 20, want: "cap=600kbit,loss=2%"},
		{in: "10:udp=blocked", n: 10, want: "udp=blocked"},
		{in: "3:none", n: 3, want: "none"},
		{in: "cap=600kbit", err: "want N:PROFILE"},
		{in: "0:cap=1mbit", err: "not a number of viewers"},
		{in: "x:cap=1mbit", err: "not a number of viewers"},
		{in: "5:cap=600", err: "needs a unit"},
		{in: "4:udp=blocked,transport=tcp", n: 4, want: "udp=blocked", transport: "tcp"},
		{in: "4:transport=turn-tls,only-tcp=443+8800", n: 4, want: "only-tcp=443+8800", transport: "turn-tls"},
		{in: "2:transport=turn-udp", n: 2, want: "none", transport: "turn-udp"},
		{in: "2:transport=quic", err: "want one of udp, tcp"},
		{in: "2:transport=tcp,transport=udp", err: "transport="},
	} {
		vn, err := ParseViewerNet(tt.in)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseViewerNet(%q): %v, want an error with %q", tt.in, err, tt.err)
			}
		case err != nil:
			t.Errorf("ParseViewerNet(%q): %v", tt.in, err)
		case vn.Viewers != tt.n || vn.Profile.String() != tt.want || vn.Transport != tt.transport:
			t.Errorf("ParseViewerNet(%q) = %d:%s %q, want %d:%s %q", tt.in, vn.Viewers, vn.Profile, vn.Transport, tt.n, tt.want, tt.transport)
		}
	}
}

func TestLabConfigChecks(t *testing.T) {
	base := func() Config { return Config{Spawn: "/bin/true", Lab: true, Viewers: 3} }
	for _, tt := range []struct {
		name string
		mod  func(*Config)
		err  string
	}{
		{"fine", func(*Config) {}, ""},
		{"--url", func(c *Config) { c.Spawn, c.URL, c.Secret = "", "http://x", "s" }, "needs --spawn"},
		{"two rooms", func(c *Config) { c.Rooms = 2 }, "one room"},
		{"ramp", func(c *Config) { c.Ramp = true }, "--ramp"},
		{"no viewers", func(c *Config) { c.Viewers = 0 }, "needs viewers"},
		{"bad publisher net", func(c *Config) { c.PublisherNet = "cap=2" }, "--publisher-net"},
		{"bad browser net", func(c *Config) { c.BrowserViewer = "loss=200%" }, "--browser-viewer"},
		{"publisher on a transport", func(c *Config) { c.PublisherNet = "udp=blocked,transport=tcp" }, ""},
		{"publisher on a bad transport", func(c *Config) { c.PublisherNet = "transport=sctp" }, "--publisher-net"},
		{"browser on a transport", func(c *Config) { c.BrowserViewer = "transport=tcp" }, "--browser-viewer"},
		{"too many viewers in a group", func(c *Config) { c.ViewerNets = []ViewerNet{{Viewers: 251}} }, "at most 250"},
		{"a relay destination", func(c *Config) { c.Relays = 1 }, ""},
		{"two relays", func(c *Config) { c.Relays = 2 }, "above 1"},
		{"two nodes", func(c *Config) { c.Relays, c.Nodes = 1, 2 }, ""},
		{"two nodes without a relay", func(c *Config) { c.Nodes = 2 }, "needs --relays 1"},
		{"dest without a relay", func(c *Config) { c.ViewerNets = []ViewerNet{{Viewers: 1, Timing: Timing{Dest: true}}} }, "needs --relays 1"},
		{"lift after the window", func(c *Config) {
			vn, _ := ParseViewerNet("1:cap=800kbit,lift=20s")
			c.ViewerNets, c.Duration = []ViewerNet{vn}, 10e9
		}, "must fall in"},
		{"lift without a profile", func(c *Config) {
			c.ViewerNets = []ViewerNet{{Viewers: 1, Timing: Timing{Lift: 1e9}}}
		}, "need a profile"},
		{"simulcast", func(c *Config) { c.Simulcast = true }, ""},
		{"layer rates without simulcast", func(c *Config) { c.LayerBitrates = []int{1e5, 2e5} }, "needs --simulcast"},
	} {
		c := base()
		tt.mod(&c)
		err := c.normalize()
		if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.err)
		}
	}
	// Only the lab's flags make a lab run.
	if c := (Config{Spawn: "/bin/true"}); c.LabMode() {
		t.Error("a plain run is a lab run")
	}
	for _, c := range []Config{{Lab: true}, {PublisherNet: "cap=2mbit"}, {BrowserViewer: "none"}, {ViewerNets: []ViewerNet{{Viewers: 1}}}, {Simulcast: true}} {
		if !c.LabMode() {
			t.Errorf("%+v is not a lab run", c)
		}
	}
}

func TestVideoStatsDelta(t *testing.T) {
	s := videoStats{FramesDecoded: 100, FreezeCount: 1, TotalFreezesDuration: 0.7, FrameWidth: 320, FrameHeight: 240, FramesPerSecond: 30}
	e := videoStats{FramesDecoded: 400, FreezeCount: 3, TotalFreezesDuration: 2.2, FrameWidth: 640, FrameHeight: 480, FramesPerSecond: 25}
	d := e.delta(s)
	if d.FramesDecoded != 300 || d.FreezeCount != 2 || math.Abs(d.TotalFreezesDuration-1.5) > 1e-9 ||
		d.FrameWidth != 640 || d.FrameHeight != 480 || d.FramesPerSecond != 25 {
		t.Errorf("delta %+v", d)
	}
}
