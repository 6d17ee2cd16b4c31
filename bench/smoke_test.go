package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSmoke is the CI scenario: build relayd, run the bench against it
// (--spawn) for a few seconds with three viewers, and check that packets
// flowed and that the JSON report has the documented fields. It asserts no
// timing: CI machines are too noisy for that.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs relayd")
	}
	bin := buildRelayd(t)
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	t.Cleanup(func() {
		if pids := processesOf(bin); len(pids) > 0 {
			t.Errorf("relayd still running after the bench: pids %v", pids)
		}
	})

	var stdout, stderr bytes.Buffer
	rep, err := Run(ctx, Config{
		Spawn:    bin,
		Viewers:  3,
		Duration: 3 * time.Second,
		Warmup:   500 * time.Millisecond,
		Audio:    true,
		JSON:     jsonPath,

		floorPackets: 2000, // the race detector makes the floor 10x slower
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, stderr.String())
	}
	if rep.Viewers != 3 || rep.Publishers != 1 || rep.Rooms != 1 {
		t.Errorf("viewers/publishers/rooms = %d/%d/%d, want 3/1/1", rep.Viewers, rep.Publishers, rep.Rooms)
	}
	if rep.PacketsSent == 0 || rep.PacketsReceived == 0 {
		t.Errorf("no packets flowed: sent %d, received %d", rep.PacketsSent, rep.PacketsReceived)
	}
	if rep.LatencyMS.Count == 0 {
		t.Error("no latency samples")
	}
	if !strings.Contains(stdout.String(), "latency") {
		t.Errorf("no table on stdout:\n%s", stdout.String())
	}

	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	// The fields docs/bench.md documents as always present (null allowed
	// where a figure can be unknown).
	for _, k := range []string{
		"viewers", "publishers", "rooms", "duration_s", "packets_sent", "packets_received",
		"loss_ratio", "latency_ms", "join_to_first_frame_ms", "server_cpu_us_per_packet",
		"floor_us_per_packet", "server_rss_bytes", "bench_cpu_us_per_packet",
		"server", "machine", "machine_load", "scenario", "targets",
	} {
		if _, ok := m[k]; !ok {
			t.Errorf("report has no %q", k)
		}
	}
	for _, k := range []string{"p50", "p95", "p99"} {
		if _, ok := m["latency_ms"].(map[string]any)[k]; !ok {
			t.Errorf("latency_ms has no %q", k)
		}
	}
	for _, k := range []string{"p50", "p99"} {
		if _, ok := m["join_to_first_frame_ms"].(map[string]any)[k]; !ok {
			t.Errorf("join_to_first_frame_ms has no %q", k)
		}
	}
	if v, _ := m["packets_received"].(float64); v <= 0 {
		t.Errorf("packets_received = %v in the JSON", m["packets_received"])
	}
	if _, ok := m["relay_start_ms"]; ok {
		t.Error("relay_start_ms present without relays")
	}
}

// buildRelayd builds cmd/relayd into the test's temp dir.
func buildRelayd(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build relayd")
	}
	bin := filepath.Join(t.TempDir(), "relayd")
	cmd := exec.Command(gobin, "build", "-o", bin, "./cmd/relayd")
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/relayd: %v\n%s", err, out)
	}
	return bin
}

// processesOf returns the pids of running processes whose executable is
// bin.
func processesOf(bin string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue // self, thread-self, ...
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == bin {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
