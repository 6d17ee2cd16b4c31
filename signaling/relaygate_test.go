package signaling

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
)

// relayIntoB starts the stage of this file's tests: alice hosts A and
// publishes; host-B invites alice (who accepts in a user session) and
// alice relays A into B, where viewer-B receives it. It returns alice's
// source session, host-B's session, viewer-B and the relayed video there.
func relayIntoB(t *testing.T, ts *testServer) (src, hostB, viewerB *client.Client, tr *client.RemoteTrack) {
	t.Helper()
	viewerB = relayRooms(t, ts, "B")["B"]
	src, _ = ts.join(t, "alice", "A", "host")
	publish(t, src)
	user := userSession(t, ts, "alice")
	hostB, _ = ts.join(t, "host-B", "B", "host") // a second session of B's host
	invite(t, hostB, user, "alice")
	if err := src.Call(testCtx(t), "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B")}, nil); err != nil {
		t.Fatal(err)
	}
	waitNote(t, src, "relay.state", relayState("running"))
	tr = receiving(t, viewerB, "video", 10)
	return src, hostB, viewerB, tr
}

// relayLeft waits until viewer sees identity's relay participant leave
// its room: track.unpublished, then participant.left (role relay).
func relayLeft(t *testing.T, viewer *client.Client, identity string) {
	t.Helper()
	waitNote(t, viewer, "track.unpublished", trackOf(identity))
	waitNote(t, viewer, "participant.left", func(p json.RawMessage) bool {
		var ev client.ParticipantEvent
		return json.Unmarshal(p, &ev) == nil && ev.Participant.Identity == identity && ev.Participant.Role == "relay"
	})
}

// cohost.remove of an identity that relays into the host's room takes the
// relay out of that room at once, as it unpublishes a direct co-host:
// the destination's viewers see the relay leave and its media stop; the
// source hears its only destination dropped (event 0 for B) and the relay
// stop. (Before: the relay went on publishing into a room whose gate it
// no longer passed.)
func TestCohostRemoveTakesRelayOut(t *testing.T) {
	ts := newTestServer(t)
	src, hostB, viewerB, tr := relayIntoB(t, ts)
	if err := hostB.Call(testCtx(t), "cohost.remove", map[string]string{"user": "alice"}, nil); err != nil {
		t.Fatalf("cohost.remove: %v", err)
	}
	relayLeft(t, viewerB, "alice")
	waitNote(t, src, "relay.event", relayEvent(0, "B"))
	waitNote(t, src, "relay.state", relayState("idle"))
	stopsWithin(t, tr, time.Second)
	if n := len(ts.Rooms.Relays().List()); n != 0 {
		t.Fatalf("%d relays still running", n)
	}
}

// userSession joins a user session (no room) of identity.
func userSession(t *testing.T, ts *testServer, identity string) *client.Client {
	t.Helper()
	tok, _ := ts.Tokens.Issue(TokenSpec{Identity: identity, TTL: time.Hour})
	user, err := client.Dial(testCtx(t), ts.URL, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = user.Close() })
	if _, err := user.Join(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return user
}

// participant.kick of an identity present in the room only as a relay
// takes the relay out (before: 4004, not in the room; with ban, the relay
// stayed); with ban its relays are refused there afterwards, invitation
// or not.
func TestKickRelayIdentity(t *testing.T) {
	ts := newTestServer(t)
	src, hostB, viewerB, tr := relayIntoB(t, ts)
	user := userSession(t, ts, "alice")
	for _, ban := range []bool{false, true} {
		if err := hostB.Call(testCtx(t), "participant.kick", map[string]any{"identity": "alice", "ban": ban}, nil); err != nil {
			t.Fatalf("kick of a relay identity (ban %v): %v", ban, err)
		}
		relayLeft(t, viewerB, "alice")
		waitNote(t, src, "relay.event", relayEvent(0, "B"))
		waitNote(t, src, "relay.state", relayState("idle"))
		stopsWithin(t, tr, time.Second)

		// Invited and accepted again, alice relays into B again, unless
		// she is banned there.
		invite(t, hostB, user, "alice")
		if err := src.Call(testCtx(t), "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B")}, nil); err != nil {
			t.Fatal(err)
		}
		if ban {
			waitNote(t, src, "relay.state", relayState("failure"))
			break
		}
		waitNote(t, src, "relay.state", relayState("running"))
		var err error
		if tr, err = viewerB.WaitTrack(testCtx(t), "video", func(r *client.RemoteTrack) bool { return r != tr }); err != nil {
			t.Fatalf("the relay's second video in B: %v", err)
		}
	}
}
