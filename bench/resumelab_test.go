package bench

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestLabResume: in the network lab, real pion peers in their own
// namespaces. A host publishing in room A and relaying into room B has its
// link cut completely for 5 s, then restored, and resumes (twice): the viewers of
// both rooms get video again (restore to first frame logged), see no
// participant.left or joined, and the relay is running at every poll
// during the cut. Then the host moves to a new address (a handover: a
// second veth, the first removed) and resumes with ICE restarts: video
// again. The host's token lives 3 s: the broadcast goes on past it, and
// the later resumes, past its expiry (and the 5 s leeway), use refreshed
// tokens. Then
// the host goes for good: its room ends host_timeout after the grace, as
// it did before resume.
func TestLabResume(t *testing.T) {
	labTest(t)
	bin := buildRelayd(t)
	t.Cleanup(func() { leftovers(t, bin) })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var log bytes.Buffer
	const grace = 8 * time.Second
	rep, err := RunResumeLab(ctx, ResumeLabConfig{
		Spawn: bin, Cycles: 2, Cut: 5 * time.Second, Grace: grace, Handover: true, Expire: true, Log: &log,
		TokenTTL: 3 * time.Second,
	})
	t.Log(log.String())
	if err != nil {
		t.Fatalf("RunResumeLab: %v", err)
	}
	t.Logf("report: %+v", rep)
	if rep.Resumed != 3 {
		t.Errorf("the host resumed %d times of 3", rep.Resumed)
	}
	// The second cut and the handover come past the first token's expiry
	// (and its 5 s leeway): their resumes need refreshed tokens.
	if rep.Refreshed < 2 {
		t.Errorf("%d resumes with a refreshed token, want at least the last 2", rep.Refreshed)
	}
	// Within 5 s of the restore on a machine shared by several builds;
	// the contract's 1 s (p50) is for BENCHMARKS.md's figures.
	for name, ms := range map[string]float64{
		"room": rep.RoomMS[0], "destination": rep.DestMS[0],
		"room, past the first token's expiry": rep.RoomMS[1], "destination, past the first token's expiry": rep.DestMS[1],
		"room after the handover": rep.HandoverRoomMS, "destination after the handover": rep.HandoverDestMS,
	} {
		if ms < 0 || ms > 5000 {
			t.Errorf("%s: restore to first frame %.0f ms", name, ms)
		}
	}
	if rep.RelayPolls == 0 || rep.RelayNotRunning != 0 {
		t.Errorf("the relay was not running at %d of %d polls during the cuts", rep.RelayNotRunning, rep.RelayPolls)
	}
	if rep.LeftJoined != 0 {
		t.Errorf("the viewers saw the host leave or join %d times", rep.LeftJoined)
	}
	if rep.Paused == 0 || rep.Active == 0 {
		t.Errorf("track.stream publisher_reconnecting: %d paused, %d active", rep.Paused, rep.Active)
	}
	if rep.PublisherICERestarts < 3 {
		t.Errorf("publisher ICE restarts connected: %v, want 3", rep.PublisherICERestarts)
	}
	if rep.EndReason != "host_timeout" || rep.EndAfterMS < float64((grace-time.Second)/time.Millisecond) || rep.EndAfterMS > float64((grace+15*time.Second)/time.Millisecond) {
		t.Errorf("after the host went: ended %q after %.0f ms (grace %v)", rep.EndReason, rep.EndAfterMS, grace)
	}
}

// TestLabResumeAcrossNodes: the same cut and restore with two nodes
// sharing a redis-server, room B's viewer on the second node: the viewers
// get video again, see no leave or join, are told the tracks paused then
// active (across the link too), and the relay keeps running.
// Skipped without redis-server.
func TestLabResumeAcrossNodes(t *testing.T) {
	labTest(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not found in PATH: apt-get install redis-server (.ci/run does)")
	}
	bin := buildRelayd(t)
	t.Cleanup(func() { leftovers(t, bin) })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var log bytes.Buffer
	rep, err := RunResumeLab(ctx, ResumeLabConfig{Spawn: bin, Cycles: 1, Cut: 5 * time.Second, Nodes: 2, Log: &log})
	t.Log(log.String())
	if err != nil {
		t.Fatalf("RunResumeLab: %v", err)
	}
	t.Logf("report: %+v", rep)
	if !rep.CrossNode {
		t.Log("both rooms were placed on one node (placement weighs CPU first): the relay did not cross nodes this time")
	}
	if rep.Resumed != 1 || rep.LeftJoined != 0 || rep.RelayNotRunning != 0 {
		t.Errorf("resumed %d, left or joined %d, relay not running at %d polls", rep.Resumed, rep.LeftJoined, rep.RelayNotRunning)
	}
	// Both viewers are told each of the host's two tracks paused, then
	// active: the destination's too when it is on the other node.
	if rep.Paused < 4 || rep.Active < 4 {
		t.Errorf("track.stream publisher_reconnecting: %d paused, %d active, want 4 each", rep.Paused, rep.Active)
	}
	for name, ms := range map[string]float64{"room": rep.RoomMS[0], "destination": rep.DestMS[0]} {
		if ms < 0 || ms > 5000 {
			t.Errorf("%s: restore to first frame %.0f ms", name, ms)
		}
	}
}

// Percentile is the nearest rank.
func TestPercentile(t *testing.T) {
	xs := []float64{70, 10, 50, 30, 20, 60, 40}
	for _, tc := range []struct{ p, want float64 }{{50, 40}, {30, 30}, {99, 70}, {100, 70}, {1, 10}} {
		if got := Percentile(xs, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 50) != -1 {
		t.Error("no samples: want -1")
	}
}
