package signaling

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
)

// copyIDs waits for the track.published of the relayed audio and video
// of identity in c's room and returns their ids.
func copyIDs(t *testing.T, c *client.Client, identity string) []string {
	t.Helper()
	var ids []string
	for _, kind := range []string{"audio", "video"} {
		ev, err := client.WaitEvent(testCtx(t), c, client.NotifyTrackPublished, func(ev client.TrackEvent) bool {
			return ev.Track.Participant == identity && ev.Track.Kind == kind
		})
		if err != nil {
			t.Fatalf("relayed %s published: %v", kind, err)
		}
		ids = append(ids, ev.Track.ID)
	}
	return ids
}

// A paused relay seen in its destinations (PROTOCOL.md 1.1 §8): within
// 1 s of relay.pause every 1.1 subscriber there is told track.stream
// paused relay_paused for each relayed track (1.0 ones nothing) and the
// media stops; a 1.1 viewer joining meanwhile is told paused right after
// its join result; a destination added while paused gets paused after
// track.published; after relay.resume, "active" comes with the media,
// within 2 s.
func TestPausedRelayInDestinations(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B", "C"}}))
	ctx := testCtx(t)
	ts.join(t, "host-B", "B", "host")
	ts.join(t, "host-C", "C", "host")
	b11, _ := ts.join11(t, "b11", "B", "viewer")
	b10, _ := ts.join(t, "b10", "B", "viewer")
	c11, _ := ts.join11(t, "c11", "C", "viewer")
	src, _ := ts.join11(t, "alice", "A", "host")
	publish(t, src)
	if err := src.Call(ctx, "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B")}, nil); err != nil {
		t.Fatal(err)
	}
	idsB := copyIDs(t, b11, "alice")
	trB := receiving(t, b11, "video", 20)
	receiving(t, b10, "video", 20)

	start := time.Now()
	if err := src.Call(ctx, "relay.pause", struct{}{}, nil); err != nil {
		t.Fatalf("relay.pause: %v", err)
	}
	for _, id := range idsB {
		waitNote(t, b11, "track.stream", streamNote(id, "paused", "relay_paused"))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("paused told %v after relay.pause, want within 1 s", d)
	}
	packetsStop(t, trB)

	// A 1.1 viewer joining while paused: paused right after its result.
	late, res := ts.join11(t, "late", "B", "viewer")
	if len(res.Tracks) != 2 {
		t.Fatalf("late join: tracks %+v", res.Tracks)
	}
	for _, tr := range res.Tracks {
		n := waitNote(t, late, "track.stream", streamNote(tr.ID, "paused", "relay_paused"))
		if n.Seq > 2 {
			t.Errorf("the late viewer's paused for %s has seq %d: not right after the join result", tr.ID, n.Seq)
		}
	}

	// A destination added while paused: paused after track.published.
	if err := src.Call(ctx, "relay.update", map[string]any{"destinations": ts.dests(t, "alice", "B", "C")}, nil); err != nil {
		t.Fatalf("relay.update: %v", err)
	}
	for _, kind := range []string{"audio", "video"} {
		pub, err := c11.WaitNotification(ctx, "track.published", func(p json.RawMessage) bool {
			var ev client.TrackEvent
			return json.Unmarshal(p, &ev) == nil && ev.Track.Kind == kind && ev.Track.Participant == "alice"
		})
		if err != nil {
			t.Fatal(err)
		}
		var ev client.TrackEvent
		_ = pub.Decode(&ev)
		n := waitNote(t, c11, "track.stream", streamNote(ev.Track.ID, "paused", "relay_paused"))
		if n.Seq <= pub.Seq {
			t.Errorf("C: paused (seq %d) before track.published (seq %d)", n.Seq, pub.Seq)
		}
	}

	// Resume: active with the media, within 2 s, for everyone paused.
	k, p := trB.Keyframes(), trB.Packets()
	start = time.Now()
	if err := src.Call(ctx, "relay.resume", struct{}{}, nil); err != nil {
		t.Fatalf("relay.resume: %v", err)
	}
	for _, id := range idsB {
		waitNote(t, b11, "track.stream", streamNote(id, "active", "relay_paused"))
	}
	for _, tr := range res.Tracks {
		waitNote(t, late, "track.stream", streamNote(tr.ID, "active", "relay_paused"))
	}
	waitNote(t, c11, "track.stream", func(p json.RawMessage) bool {
		var ev client.TrackStreamEvent
		return json.Unmarshal(p, &ev) == nil && ev.State == "active" && ev.Reason == "relay_paused"
	})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("active told %v after relay.resume, want within 2 s", d)
	}
	flowsAgain(t, trB, k, p, 2*time.Second)

	// 1.0 sessions: as in v1.
	noNote(t, b10, "track.stream", nil, 200*time.Millisecond)
	// Transitions only: nothing more for b11.
	noNote(t, b11, "track.stream", nil, 10*time.Millisecond)
}
