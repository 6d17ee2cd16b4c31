package signaling

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
)

// relayEvent matches a relay.event notification by code (and room).
func relayEvent(code int, room string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev client.RelayEvent
		return json.Unmarshal(p, &ev) == nil && ev.Code == code && (room == "" || ev.Room == room)
	}
}

func relayState(state string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev client.RelayStateEvent
		return json.Unmarshal(p, &ev) == nil && ev.State == state
	}
}

type destination struct {
	Room  string `json:"room"`
	Token string `json:"token"`
}

// relayRooms makes rooms with a host and a viewer each; it returns the
// viewers by room.
func relayRooms(t *testing.T, ts *testServer, rooms ...string) map[string]*client.Client {
	t.Helper()
	viewers := map[string]*client.Client{}
	for _, r := range rooms {
		ts.join(t, "host-"+r, r, "host")
		viewers[r], _ = ts.join(t, "viewer-"+r, r, "viewer")
	}
	return viewers
}

func (ts *testServer) dests(t *testing.T, identity string, rooms ...string) []destination {
	var ds []destination
	for _, r := range rooms {
		ds = append(ds, destination{Room: r, Token: ts.token(t, identity, r, "viewer")})
	}
	return ds
}

// packetsStop checks that tr receives nothing for a while.
func packetsStop(t *testing.T, tr *client.RemoteTrack) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // what was in flight arrives
	before := tr.Packets()
	time.Sleep(500 * time.Millisecond)
	if after := tr.Packets(); after != before {
		t.Fatalf("%s: %d packets while paused", tr.Kind, after-before)
	}
}

// A source in room A relays into B, C, D and E: every viewer there gets the
// source's audio and video; states and events are the contract's; a fifth
// destination is refused; update to {B, C} drops D and E; pause stops the
// packets and resume restarts them with a keyframe; stop leaves everywhere.
func TestRelayFourRooms(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B", "C", "D", "E", "F"}}))
	viewers := relayRooms(t, ts, "B", "C", "D", "E", "F")
	src, _ := ts.join(t, "alice", "A", "host")
	pub := publish(t, src)
	ctx := testCtx(t)

	var rl client.Relay
	if err := src.Call(ctx, "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B", "C", "D", "E")}, &rl); err != nil {
		t.Fatalf("relay.start: %v", err)
	}
	if rl.ID == "" || rl.Source.Room != "A" || rl.Source.Identity != "alice" || len(rl.Destinations) != 4 {
		t.Fatalf("relay object %+v", rl)
	}
	waitNote(t, src, "relay.state", relayState("connecting"))
	waitNote(t, src, "relay.state", relayState("running"))
	waitNote(t, src, "relay.event", relayEvent(2, ""))
	for _, r := range []string{"B", "C", "D", "E"} {
		waitNote(t, src, "relay.event", relayEvent(3, r))
		waitNote(t, src, "relay.event", relayEvent(4, r))
		v := viewers[r]
		n := waitNote(t, v, "participant.joined", func(p json.RawMessage) bool {
			var ev client.ParticipantEvent
			return json.Unmarshal(p, &ev) == nil && ev.Participant.Role == "relay"
		})
		var ev client.ParticipantEvent
		_ = json.Unmarshal(n.Params, &ev)
		if ev.Participant.Identity != "alice" || ev.Participant.RelayFrom == nil || ev.Participant.RelayFrom.Room != "A" {
			t.Errorf("%s: relay participant %+v", r, ev.Participant)
		}
		vt := receiving(t, v, "video", 20)
		receiving(t, v, "audio", 10)
		if vt.StreamID != "alice" || !vt.FirstFrameKeyframe() {
			t.Errorf("%s: video stream %q, first frame keyframe %v", r, vt.StreamID, vt.FirstFrameKeyframe())
		}
	}

	// A fifth destination: 4013 and event 8, nothing changes.
	err := src.Call(ctx, "relay.update", map[string]any{"destinations": ts.dests(t, "alice", "B", "C", "D", "E", "F")}, nil)
	if client.ErrorCode(err) != CodeTooMany {
		t.Fatalf("five destinations: %v", err)
	}
	waitNote(t, src, "relay.event", relayEvent(8, ""))
	if _, err := viewers["F"].WaitTrack(shortCtx(t, 300*time.Millisecond), "video", nil); err == nil {
		t.Fatal("F got the relay after a refused update")
	}

	// Update to {B, C}: D and E see the relay leave; B and C go on.
	if err := src.Call(ctx, "relay.update", map[string]any{"destinations": ts.dests(t, "alice", "B", "C")}, &rl); err != nil {
		t.Fatalf("update: %v", err)
	}
	waitNote(t, src, "relay.event", relayEvent(7, ""))
	for _, r := range []string{"D", "E"} {
		waitNote(t, viewers[r], "track.unpublished", nil)
		waitNote(t, viewers[r], "participant.left", nil)
	}
	b := receiving(t, viewers["B"], "video", 1)
	receiving(t, viewers["B"], "video", b.Packets()+20)
	receiving(t, viewers["C"], "video", 1)

	// The same set: unchanged, event 9. Empty: -32602, event 10.
	if err := src.Call(ctx, "relay.update", map[string]any{"destinations": ts.dests(t, "alice", "B", "C")}, nil); err != nil {
		t.Fatalf("same set: %v", err)
	}
	waitNote(t, src, "relay.event", relayEvent(9, ""))
	if err := src.Call(ctx, "relay.update", map[string]any{"destinations": []destination{}}, nil); client.ErrorCode(err) != CodeInvalidParams {
		t.Fatalf("empty set: %v", err)
	}
	waitNote(t, src, "relay.event", relayEvent(10, ""))

	// Pause stops the packets; resume restarts them after a keyframe.
	if err := src.Call(ctx, "relay.pause", map[string]any{}, &rl); err != nil || !rl.Paused {
		t.Fatalf("pause: %v %+v", err, rl)
	}
	waitNote(t, src, "relay.event", relayEvent(12, ""))
	packetsStop(t, b)
	keyframes := pub.KeyframesSent()
	if err := src.Call(ctx, "relay.resume", map[string]any{}, &rl); err != nil || rl.Paused {
		t.Fatalf("resume: %v %+v", err, rl)
	}
	waitNote(t, src, "relay.event", relayEvent(14, ""))
	receiving(t, viewers["B"], "video", b.Packets()+20)
	if pub.KeyframesSent() <= keyframes {
		t.Error("resume did not ask the source for a keyframe")
	}

	// Stop: idle, and the relay leaves B and C.
	if err := src.Call(ctx, "relay.stop", map[string]any{}, &rl); err != nil || rl.State != "idle" || rl.Code != 0 {
		t.Fatalf("stop: %v %+v", err, rl)
	}
	waitNote(t, src, "relay.state", relayState("idle"))
	for _, r := range []string{"B", "C"} {
		waitNote(t, viewers[r], "participant.left", nil)
	}
	if err := src.Call(ctx, "relay.stop", map[string]any{}, nil); client.ErrorCode(err) != CodeNotFound {
		t.Fatalf("stop twice: %v", err)
	}
}

func shortCtx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// A destination without an invitation (and one with an expired token, and
// one that does not exist) fails alone; the others run.
func TestRelayDestinationFailsAlone(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B"}}))
	viewers := relayRooms(t, ts, "B", "C")
	src, _ := ts.join(t, "alice", "A", "host")
	publish(t, src)
	ds := append(ts.dests(t, "alice", "B", "C", "nowhere"), destination{Room: "D", Token: "not-a-token"})
	var rl client.Relay
	if err := src.Call(testCtx(t), "relay.start", map[string]any{"destinations": ds}, &rl); err != nil {
		t.Fatal(err)
	}
	waitNote(t, src, "relay.state", relayState("running"))
	receiving(t, viewers["B"], "video", 10)
	if err := src.Call(testCtx(t), "relay.update", map[string]any{"destinations": ds}, &rl); err != nil {
		t.Fatal(err) // same set: just the object
	}
	want := map[string]string{"B": "none", "C": "failed_join_dest", "nowhere": "failed_join_dest", "D": "failed_join_dest"}
	for _, d := range rl.Destinations {
		if d.Error != want[d.Room] {
			t.Errorf("destination %s: state %s error %s, want error %s", d.Room, d.State, d.Error, want[d.Room])
		}
		if d.Room != "B" && (d.State != "failure" || d.Code != 3 || d.ErrorCode != 5) {
			t.Errorf("destination %s: %+v", d.Room, d)
		}
	}
	if rl.State != "running" {
		t.Errorf("relay state %s, want running", rl.State)
	}
	if _, err := viewers["C"].WaitTrack(shortCtx(t, 300*time.Millisecond), "video", nil); err == nil {
		t.Error("C got the relay without an invitation")
	}
}

// A destination token with role host is valid only for that room's host,
// as at join: alice, a co-host of B, cannot relay there with one; bob,
// B's host, can.
func TestRelayHostTokenOfAnotherIdentity(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B"}}))
	ts.join(t, "bob", "B", "host")
	src, _ := ts.join(t, "alice", "A", "host")
	ds := []destination{{"B", ts.token(t, "alice", "B", "host")}}
	var rl client.Relay
	if err := src.Call(testCtx(t), "relay.start", map[string]any{"destinations": ds}, &rl); err != nil {
		t.Fatal(err)
	}
	n := waitNote(t, src, "relay.state", relayState("failure"))
	var ev client.RelayStateEvent
	_ = json.Unmarshal(n.Params, &ev)
	if ev.Error != "failed_join_dest" || ev.ErrorCode != 5 {
		t.Fatalf("failure state %+v", ev)
	}
	if err := src.Call(testCtx(t), "relay.stop", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	// The room's host may relay into it with a host token.
	src2, _ := ts.join(t, "bob", "C", "host")
	ds = []destination{{"B", ts.token(t, "bob", "B", "host")}}
	if err := src2.Call(testCtx(t), "relay.start", map[string]any{"destinations": ds}, &rl); err != nil {
		t.Fatal(err)
	}
	waitNote(t, src2, "relay.state", relayState("running"))
}

func TestRelayExpiredDestinationToken(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B"}}))
	relayRooms(t, ts, "B")
	src, _ := ts.join(t, "alice", "A", "host")
	past := NewTokens([]byte("test-secret-0123456789")) // the server's secret, an hour-old clock
	past.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	old, err := past.Issue(TokenSpec{Identity: "alice", Room: "B", Role: "viewer", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var rl client.Relay
	if err := src.Call(testCtx(t), "relay.start", map[string]any{"destinations": []destination{{"B", old}}}, &rl); err != nil {
		t.Fatal(err)
	}
	n := waitNote(t, src, "relay.state", relayState("failure"))
	var ev client.RelayStateEvent
	_ = json.Unmarshal(n.Params, &ev)
	if ev.Error != "dest_token_expired" || ev.ErrorCode != 11 || ev.Code != 3 {
		t.Fatalf("failure state %+v", ev)
	}
}

// A viewer's PLI in a destination reaches the source publisher.
func TestRelayPLIReachesSource(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B"}}))
	viewers := relayRooms(t, ts, "B")
	src, _ := ts.join(t, "alice", "A", "host")
	pub := publish(t, src)
	if err := src.Call(testCtx(t), "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B")}, nil); err != nil {
		t.Fatal(err)
	}
	vt := receiving(t, viewers["B"], "video", 20)
	time.Sleep(600 * time.Millisecond) // past the keyframe throttle
	plis, keyframes := pub.PLIsReceived(), pub.KeyframesSent()
	if err := vt.SendPLI(); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for pub.PLIsReceived() <= plis || pub.KeyframesSent() <= keyframes {
		if ctx.Err() != nil {
			t.Fatal("the destination viewer's PLI never reached the source")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two hosts relay into each other's rooms at once: each room's viewer gets
// both hosts, and nothing loops (a relayed track is never relayed again).
func TestRelayPKBattle(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B"}, "bob": {"A"}}))
	alice, _ := ts.join(t, "alice", "A", "host")
	bob, _ := ts.join(t, "bob", "B", "host")
	publish(t, alice)
	publish(t, bob)
	va, _ := ts.join(t, "va", "A", "viewer")
	vb, _ := ts.join(t, "vb", "B", "viewer")
	for _, c := range []struct {
		src  *client.Client
		id   string
		dest string
	}{{alice, "alice", "B"}, {bob, "bob", "A"}} {
		if err := c.src.Call(testCtx(t), "relay.start", map[string]any{"destinations": ts.dests(t, c.id, c.dest)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []*client.Client{va, vb} {
		for _, who := range []string{"alice", "bob"} {
			who := who
			tr, err := v.WaitTrack(testCtx(t), "video", func(r *client.RemoteTrack) bool { return r.StreamID == who })
			if err != nil {
				t.Fatalf("no video of %s: %v", who, err)
			}
			for tr.Packets() < 20 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	for room, want := range map[string]int{"A": 4, "B": 4} {
		n := 0
		for _, p := range ts.SFU.Room(room).Participants() {
			n += len(p.Tracks)
		}
		if n != want {
			t.Errorf("room %s has %d tracks, want %d (2 own + 2 relayed): a loop?", room, n, want)
		}
	}
}

// The source leaves: the relay leaves every destination.
func TestRelaySourceLeaves(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B"}}))
	viewers := relayRooms(t, ts, "B")
	src, _ := ts.join(t, "alice", "A", "host")
	publish(t, src)
	if err := src.Call(testCtx(t), "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B")}, nil); err != nil {
		t.Fatal(err)
	}
	receiving(t, viewers["B"], "video", 10)
	if err := src.Leave(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitNote(t, viewers["B"], "track.unpublished", nil)
	waitNote(t, viewers["B"], "participant.left", func(p json.RawMessage) bool {
		var ev client.ParticipantEvent
		return json.Unmarshal(p, &ev) == nil && ev.Participant.Role == "relay"
	})
	if n := len(ts.Rooms.Relays().List()); n != 0 {
		t.Errorf("%d relays left", n)
	}
}

// relay.state carries the relay's destinations, each with its state and
// error (bugs.md 14): the one that runs and the one that failed, and why.
func TestRelayStateCarriesDestinations(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B"}}))
	relayRooms(t, ts, "B")
	src, _ := ts.join(t, "alice", "A", "host")
	publish(t, src)
	ds := ts.dests(t, "alice", "B", "nowhere")
	if err := src.Call(testCtx(t), "relay.start", map[string]any{"destinations": ds}, nil); err != nil {
		t.Fatal(err)
	}
	ev, err := client.WaitEvent(testCtx(t), src, client.NotifyRelayState, func(ev client.RelayStateEvent) bool { return ev.State == "running" })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]client.RelayDestination{}
	for _, d := range ev.Destinations {
		got[d.Room] = d
	}
	if b := got["B"]; b.State != "running" || b.Code != 2 || b.Error != "none" || b.Identity != "alice" {
		t.Errorf("destination B in relay.state: %+v", b)
	}
	if n := got["nowhere"]; n.State != "failure" || n.Code != 3 || n.Error != "failed_join_dest" || n.ErrorCode != 5 {
		t.Errorf("destination nowhere in relay.state: %+v", n)
	}
	if err := src.Call(testCtx(t), "relay.stop", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	n := waitNote(t, src, "relay.state", relayState("idle"))
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(n.Params, &raw)
	if d, ok := raw["destinations"]; !ok || len(d) == 0 || d[0] != '[' {
		t.Errorf("the idle relay.state has no destinations list: %s", n.Params)
	}
}

// POST /v1/relays begins the relay before it answers: the relay object is
// running (its destination joined), or failure when none could be.
func TestPostRelayAnswersItsStart(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B"}}))
	relayRooms(t, ts, "B")
	ts.join(t, "alice", "A", "host")
	admin := ts.admin(t)
	rl, err := admin.StartRelay(testCtx(t), client.RelaySource{Room: "A", Identity: "alice"}, []client.AdminRelayTarget{{Room: "B", Identity: "alice"}})
	if err != nil || rl.State != "running" || rl.Destinations[0].State != "running" {
		t.Fatalf("POST /v1/relays: %+v %v, want running", rl, err)
	}
	if _, err := admin.StopRelay(testCtx(t), rl.ID); err != nil {
		t.Fatal(err)
	}
	rl, err = admin.StartRelay(testCtx(t), client.RelaySource{Room: "A", Identity: "alice"}, []client.AdminRelayTarget{{Room: "nowhere", Identity: "alice"}})
	if err != nil || rl.State != "failure" || rl.Error != "failed_join_dest" {
		t.Fatalf("POST /v1/relays into no room: %+v %v, want failure", rl, err)
	}
}
