package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/relaysfu/relayd/netlab"
)

// labBrowserTest is labTest for a scenario with Chromium: it skips without
// it, and the cleanup reports a browser of ours left running.
func labBrowserTest(t *testing.T) (relayd, chromium string) {
	t.Helper()
	labTest(t)
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not found in PATH: install it with `apt-get install -y chromium` to run the browser tests (.ci/run does)")
	}
	relayd = buildRelayd(t)
	t.Cleanup(func() {
		leftovers(t, relayd)
		for _, pid := range processesOf(chromium) {
			if cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline"); bytes.Contains(cmdline, []byte("relaybench-chromium-")) {
				t.Errorf("chromium %s still running after the run", pid)
			}
		}
	})
	return relayd, chromium
}

// groupNet is a ViewerNet from its string, or the test fails.
func groupNet(t *testing.T, s string) ViewerNet {
	t.Helper()
	vn, err := ParseViewerNet(s)
	if err != nil {
		t.Fatal(err)
	}
	return vn
}

// checkTransports checks what RunLab's report says of each path: every
// group and the publisher joined over the transport their network and
// knob leave, media flowed, and Chromium decoded more than 30 frames in
// the window over one of wantBrowser (Chromium picks among the paths its
// network leaves open by itself).
func checkTransports(t *testing.T, rep *LabReport, wantPub string, wantGroups map[string]string, wantBrowser []string, wantServer map[string]float64) {
	t.Helper()
	for tr, n := range wantServer {
		if got := rep.Server.ICEConnections[tr]; got < n {
			t.Errorf("relayd_ice_connections_total{transport=%q} = %v, want at least %v (all: %v)", tr, got, n, rep.Server.ICEConnections)
		}
	}
	if rep.Publisher.Transport != wantPub || rep.Publisher.VideoPackets == 0 {
		t.Errorf("publisher (%s): transport %q, %d video packets in the window; want %q and media", rep.Publisher.Net, rep.Publisher.Transport, rep.Publisher.VideoPackets, wantPub)
	}
	if len(rep.Groups) != len(wantGroups) {
		t.Fatalf("%d groups, want %d", len(rep.Groups), len(wantGroups))
	}
	for _, g := range rep.Groups {
		want, ok := wantGroups[g.Name]
		if !ok {
			t.Errorf("unexpected group %q", g.Name)
			continue
		}
		if g.WithFrame != g.Viewers || g.Transports[want] != g.Viewers || g.Received == 0 {
			t.Errorf("group %s: %d/%d with a first frame, transports %v (want %d %s), %d packets received, join errors %q",
				g.Name, g.WithFrame, g.Viewers, g.Transports, g.Viewers, want, g.Received, g.JoinErrors)
		}
	}
	b := rep.Browser
	if b == nil || !b.Joined || b.Stats == nil {
		t.Fatalf("browser: %+v", b)
	}
	if !slices.Contains(wantBrowser, b.Transport) || b.Stats.FramesDecoded <= 30 {
		t.Errorf("browser (%s): transport %q, %.0f frames decoded in the window; want one of %v and more than 30", b.Net, b.Transport, b.Stats.FramesDecoded, wantBrowser)
	}
}

// TestLabICETCP: with UDP blocked, a pion publisher, pion viewers and
// Chromium all connect over ICE-TCP (relayd's passive TCP candidates on
// its media port number) and get media; viewers forced onto TURN over
// TLS, in a namespace that lets only TCP to 443 (and the signaling) out,
// too; a healthy viewer beside them keeps UDP.
func TestLabICETCP(t *testing.T) {
	relayd, chromium := labBrowserTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	rep, err := RunLab(ctx, Config{
		Spawn: relayd, Chromium: chromium,
		Viewers:      1,
		PublisherNet: "udp=blocked,transport=tcp",
		ViewerNets: []ViewerNet{
			groupNet(t, "2:udp=blocked,transport=tcp"),
			groupNet(t, "2:only-tcp=443+8800,transport=turn-tls"),
		},
		BrowserViewer:     "udp=blocked",
		Duration:          3 * time.Second,
		Warmup:            500 * time.Millisecond,
		FirstFrameTimeout: 20 * time.Second,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("RunLab: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("\n%s", stdout.String())
	// Chromium, with UDP blocked, has relayd's ICE-TCP candidates and
	// the TURN server's TCP relay (every join result offers it): it
	// mostly settles on ICE-TCP, but nominated TURN over TCP in 2 CI runs
	// of many; both go through a firewall that blocks UDP.
	checkTransports(t, rep, "tcp", map[string]string{
		"healthy": "udp", "udp=blocked,transport=tcp": "tcp", "only-tcp=443+8800,transport=turn-tls": "turn",
	}, []string{"tcp", "turn_tcp"}, map[string]float64{"udp": 1, "tcp": 3, "turn_tls": 2})
	if ic := rep.Server.ICEConnections; ic["tcp"]+ic["turn_tcp"] < 4 {
		t.Errorf("relayd_ice_connections_total: tcp %v + turn_tcp %v, want at least 4 (the publisher, 2 viewers, Chromium)", ic["tcp"], ic["turn_tcp"])
	}
}

// TestLabTURNTLS: in a namespace that lets only TCP to relayd's TURN TLS
// port (443) and its signaling port out, a pion publisher and Chromium
// connect through the embedded TURN server over TLS and media flows; a
// viewer with UDP blocked beside them takes ICE-TCP.
func TestLabTURNTLS(t *testing.T) {
	relayd, chromium := labBrowserTest(t)
	only443, err := netlab.ParseProfile("only-tcp=443+8800")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	rep, err := RunLab(ctx, Config{
		Spawn: relayd, Chromium: chromium,
		PublisherNet:      "only-tcp=443+8800,transport=turn-tls",
		ViewerNets:        []ViewerNet{groupNet(t, "1:udp=blocked,transport=tcp")},
		BrowserViewer:     only443.String(),
		Duration:          3 * time.Second,
		Warmup:            500 * time.Millisecond,
		FirstFrameTimeout: 20 * time.Second,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("RunLab: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("\n%s", stdout.String())
	checkTransports(t, rep, "turn", map[string]string{"udp=blocked,transport=tcp": "tcp"}, []string{"turn_tls"},
		map[string]float64{"tcp": 1, "turn_tls": 2})
}
