package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaysfu/relayd/netlab"
)

// labTest skips a lab scenario where namespaces cannot be made (not root,
// no iptables), saying why, and with -short.
func labTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds relayd and runs a lab scenario")
	}
	if err := netlab.Available(); err != nil {
		t.Skipf("lab scenario skipped: %v", err)
	}
}

// leftovers fails the test if the run left a namespace, a relayd or a child
// process behind.
func leftovers(t *testing.T, relayd string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	mine := fmt.Sprintf("rlab%dx", os.Getpid())
	if strings.Contains(string(out), mine) {
		t.Errorf("namespaces left after the run:\n%s", out)
	}
	if pids := processesOf(relayd); len(pids) > 0 {
		t.Errorf("relayd still running after the run: pids %v", pids)
	}
	self, _ := os.Executable()
	var children []string
	for _, pid := range processesOf(self) {
		if pid != fmt.Sprint(os.Getpid()) {
			children = append(children, pid)
		}
	}
	if len(children) > 0 {
		t.Errorf("children still running after the run: pids %v", children)
	}
}

// TestLabSmoke is the CI scenario of the lab: two healthy viewers and two
// behind a 600 kbit/s cap, 3 s. It checks that the run makes one report
// split per group, that media flowed to every group, that the capped
// viewers received no more than their cap, and that nothing is left
// behind. It asserts no other figure (what capped viewers see is what the
// lab measures, not a property of the bench).
func TestLabSmoke(t *testing.T) {
	labTest(t)
	bin := buildRelayd(t)
	t.Cleanup(func() { leftovers(t, bin) })
	capped, err := netlab.ParseProfile("cap=600kbit")
	if err != nil {
		t.Fatal(err)
	}
	jsonPath := filepath.Join(t.TempDir(), "lab.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	rep, err := RunLab(ctx, Config{
		Spawn:             bin,
		Viewers:           2,
		ViewerNets:        []ViewerNet{{Viewers: 2, Profile: capped}},
		Duration:          3 * time.Second,
		Warmup:            500 * time.Millisecond,
		Audio:             true,
		FirstFrameTimeout: 5 * time.Second,
		JSON:              jsonPath,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("RunLab: %v\nstderr:\n%s", err, stderr.String())
	}
	if len(rep.Groups) != 2 || rep.Groups[0].Name != "healthy" || rep.Groups[1].Name != "cap=600kbit" {
		t.Fatalf("groups %+v, want healthy and cap=600kbit", rep.Groups)
	}
	if rep.Publisher.VideoPackets == 0 || rep.Publisher.AudioPackets == 0 {
		t.Errorf("the publisher sent %d video and %d audio packets in the window", rep.Publisher.VideoPackets, rep.Publisher.AudioPackets)
	}
	healthy, capG := rep.Groups[0], rep.Groups[1]
	if healthy.Joined != 2 || healthy.WithFrame != 2 || healthy.Received == 0 || healthy.FPS == nil || *healthy.FPS == 0 {
		t.Errorf("healthy group: joined %d, with a frame %d, received %d, fps %v", healthy.Joined, healthy.WithFrame, healthy.Received, healthy.FPS)
	}
	if healthy.LatencyMS.Count == 0 {
		t.Error("healthy group: no latency samples")
	}
	if capG.Joined != 2 || capG.ReceivedBps == nil || *capG.ReceivedBps == 0 {
		t.Errorf("capped group: joined %d, received %v bit/s", capG.Joined, capG.ReceivedBps)
	} else if limit := 1.3 * 600_000; *capG.ReceivedBps > limit {
		// RTP bytes only (no IP, UDP or SRTP overhead): always under the
		// cap a tbf enforces, whatever the machine's load.
		t.Errorf("capped group received %.0f bit/s per viewer, more than its 600 kbit/s cap allows", *capG.ReceivedBps)
	}
	if rep.Server.PacketsOut == nil || *rep.Server.PacketsOut == 0 {
		t.Errorf("server packets out %v", rep.Server.PacketsOut)
	}
	for _, s := range []string{"healthy", "cap=600kbit", "publisher", "feedback", "freeze"} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("no %q in the table:\n%s", s, stdout.String())
		}
	}

	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	for _, k := range []string{"kind", "groups", "publisher", "server", "scenario", "machine", "machine_load", "duration_s"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report has no %q", k)
		}
	}
	g0, _ := m["groups"].([]any)
	if len(g0) != 2 {
		t.Fatalf("report groups %v", m["groups"])
	}
	for _, k := range []string{"name", "net", "viewers", "with_first_frame", "join_failures", "received_bps", "loss_ratio",
		"freeze_ratio", "fps", "plis", "latency_ms", "first_frame_ms", "per_viewer"} {
		if _, ok := g0[0].(map[string]any)[k]; !ok {
			t.Errorf("group has no %q", k)
		}
	}
}

// TestLabBrowser runs one Chromium viewer in the lab: it joins through
// relayd's own viewer page, decodes the clip publisher's VP8 (640x480) and
// its getStats reach the report. Skipped without chromium.
func TestLabBrowser(t *testing.T) {
	labTest(t)
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not found in PATH: install it with `apt-get install -y chromium` to run the browser tests (.ci/run does)")
	}
	bin := buildRelayd(t)
	t.Cleanup(func() {
		leftovers(t, bin)
		if pids := processesOf(chromium); len(pids) > 0 {
			// other tests of the machine may run browsers: only report ours
			for _, pid := range pids {
				if cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline"); bytes.Contains(cmdline, []byte("relaybench-chromium-")) {
					t.Errorf("chromium %s still running after the run", pid)
				}
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	rep, err := RunLab(ctx, Config{
		Spawn:             bin,
		Viewers:           1,
		BrowserViewer:     "none",
		Chromium:          chromium,
		Duration:          3 * time.Second,
		Warmup:            500 * time.Millisecond,
		Audio:             true,
		FirstFrameTimeout: 20 * time.Second,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("RunLab: %v\nstderr:\n%s", err, stderr.String())
	}
	b := rep.Browser
	if b == nil || !b.Joined || b.Stats == nil {
		t.Fatalf("browser: %+v", b)
	}
	if b.Stats.FramesDecoded == 0 || b.Stats.FrameWidth != 640 || b.Stats.FrameHeight != 480 {
		t.Errorf("browser decoded %.0f frames of %.0fx%.0f in the window, want some of 640x480", b.Stats.FramesDecoded, b.Stats.FrameWidth, b.Stats.FrameHeight)
	}
	if !strings.Contains(stdout.String(), "browser") {
		t.Errorf("no browser line in the table:\n%s", stdout.String())
	}
}
