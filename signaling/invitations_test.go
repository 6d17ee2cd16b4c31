package signaling

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
)

func invitationIs(user, status string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev client.InvitationEvent
		return json.Unmarshal(p, &ev) == nil && ev.Invitation.User == user && ev.Invitation.Status == status
	}
}

func roleIs(identity, role string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev client.ParticipantEvent
		return json.Unmarshal(p, &ev) == nil && ev.Participant.Identity == identity && ev.Participant.Role == role
	}
}

func trackOf(identity string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev client.TrackEvent
		return json.Unmarshal(p, &ev) == nil && ev.Track.Participant == identity
	}
}

// invite creates an invitation for user as the host and accepts it as user.
func invite(t *testing.T, host, invitee *client.Client, user string) client.Invitation {
	t.Helper()
	var inv client.Invitation
	if err := host.Call(testCtx(t), "invitation.create", map[string]string{"user": user}, &inv); err != nil {
		t.Fatalf("invitation.create: %v", err)
	}
	if inv.Status != "pending" || inv.User != user || inv.ID == "" {
		t.Fatalf("created %+v", inv)
	}
	waitNote(t, invitee, "invitation.updated", invitationIs(user, "pending"))
	if err := invitee.Call(testCtx(t), "invitation.accept", map[string]string{"id": inv.ID}, &inv); err != nil {
		t.Fatalf("invitation.accept: %v", err)
	}
	if inv.Status != "accepted" {
		t.Fatalf("accepted %+v", inv)
	}
	waitNote(t, host, "invitation.updated", invitationIs(user, "accepted"))
	return inv
}

// stopsWithin checks that tr gets no packet after d.
func stopsWithin(t *testing.T, tr *client.RemoteTrack, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	before := tr.Packets()
	time.Sleep(500 * time.Millisecond)
	if n := tr.Packets() - before; n > 0 {
		t.Fatalf("%s of %s: %d packets %v after removal", tr.Kind, tr.StreamID, n, d)
	}
}

// A viewer may publish only after accepting an invitation; another viewer
// then gets its media; cohost.remove and stage.leave unpublish it at once.
func TestCohostPublishingGate(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	publish(t, host)
	bob, _ := ts.join(t, "bob", "r1", "viewer")
	carol, _ := ts.join(t, "carol", "r1", "viewer")

	vpub, err := client.NewSyntheticPublisher(client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Publish(testCtx(t), vpub.Tracks()...); client.ErrorCode(err) != CodeForbidden {
		t.Fatalf("publish before accepting: %v, want 4003", err)
	}

	for round, leave := range []bool{false, true} {
		invite(t, host, bob, "bob")
		waitNote(t, carol, "participant.updated", roleIs("bob", "cohost"))
		pub := publish(t, bob)
		n := waitNote(t, carol, "track.published", func(p json.RawMessage) bool {
			var ev client.TrackEvent
			return json.Unmarshal(p, &ev) == nil && ev.Track.Participant == "bob" && ev.Track.Kind == "video"
		})
		var ev client.TrackEvent
		_ = json.Unmarshal(n.Params, &ev)
		tr, err := carol.WaitTrack(testCtx(t), "video", func(r *client.RemoteTrack) bool { return r.TrackID == ev.Track.ID })
		if err != nil {
			t.Fatalf("round %d: carol never got bob's video %s: %v", round, ev.Track.ID, err)
		}
		for tr.Packets() < 20 {
			time.Sleep(10 * time.Millisecond)
		}
		if leave {
			if err := bob.Call(testCtx(t), "stage.leave", map[string]any{}, nil); err != nil {
				t.Fatalf("stage.leave: %v", err)
			}
			waitNote(t, host, "invitation.updated", invitationIs("bob", "left"))
		} else {
			if err := host.Call(testCtx(t), "cohost.remove", map[string]string{"user": "bob"}, nil); err != nil {
				t.Fatalf("cohost.remove: %v", err)
			}
			waitNote(t, bob, "invitation.updated", invitationIs("bob", "removed"))
		}
		waitNote(t, carol, "track.unpublished", trackOf("bob"))
		// Unpublished first: the update shows a viewer without tracks.
		n = waitNote(t, carol, "participant.updated", roleIs("bob", "viewer"))
		var up client.ParticipantEvent
		if err := json.Unmarshal(n.Params, &up); err != nil || len(up.Participant.Tracks) != 0 {
			t.Errorf("round %d: bob a viewer again with tracks %+v", round, up.Participant.Tracks)
		}
		stopsWithin(t, tr, time.Second)
		pub.Stop()
		// A viewer again: publishing is refused.
		again, _ := client.NewSyntheticPublisher(client.PublisherOptions{})
		if err := bob.Publish(testCtx(t), again.Tracks()...); client.ErrorCode(err) != CodeForbidden {
			t.Fatalf("round %d: publish after removal: %v, want 4003", round, err)
		}
	}
}

// A user session (a token with no room) sees the invitation and accepts it;
// joining the room later with a viewer token gives the co-host role.
func TestUserSessionAccepts(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	tok, _ := ts.Tokens.Issue(TokenSpec{Identity: "dave", TTL: time.Hour})
	user, err := client.Dial(testCtx(t), ts.URL, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = user.Close() })
	res, err := user.Join(testCtx(t))
	if err != nil || res.Room != nil {
		t.Fatalf("user session join: %v %+v", err, res)
	}
	// Another session of dave, in some other room, hears it too.
	other, _ := ts.join(t, "dave", "r2", "host")
	inv := invite(t, host, user, "dave")
	waitNote(t, other, "invitation.updated", invitationIs("dave", "accepted"))
	var list struct{ Invitations []client.Invitation }
	if err := user.Call(testCtx(t), "invitation.list", map[string]any{}, &list); err != nil || len(list.Invitations) != 1 || list.Invitations[0].ID != inv.ID {
		t.Fatalf("user list: %v %+v", err, list)
	}
	if err := user.Call(testCtx(t), "stage.leave", map[string]any{}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Fatalf("user session stage.leave: %v", err)
	}
	_, jr := ts.join(t, "dave", "r1", "viewer")
	if jr.Participant.Role != "cohost" {
		t.Fatalf("joined with role %s, want cohost", jr.Participant.Role)
	}
}

func TestInvitationRules(t *testing.T) {
	ts := newTestServer(t, func(o *serverOpts) { o.maxCohosts = 1 })
	host, _ := ts.join(t, "alice", "r1", "host")
	bob, _ := ts.join(t, "bob", "r1", "viewer")
	carol, _ := ts.join(t, "carol", "r1", "viewer")
	ctx := testCtx(t)

	if err := bob.Call(ctx, "invitation.create", map[string]string{"user": "carol"}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Errorf("viewer creates: %v", err)
	}
	if err := host.Call(ctx, "invitation.create", map[string]any{"user": 5}, nil); client.ErrorCode(err) != CodeInvalidParams {
		t.Errorf("bad params: %v", err)
	}
	var ib, ic, again client.Invitation
	_ = host.Call(ctx, "invitation.create", map[string]string{"user": "bob"}, &ib)
	_ = host.Call(ctx, "invitation.create", map[string]string{"user": "carol"}, &ic)
	if err := host.Call(ctx, "invitation.create", map[string]string{"user": "bob"}, &again); err != nil || again.ID != ib.ID {
		t.Errorf("second create: %v, got %s want the pending %s", err, again.ID, ib.ID)
	}
	if err := carol.Call(ctx, "invitation.accept", map[string]string{"id": ib.ID}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Errorf("someone else accepts: %v", err)
	}
	if err := bob.Call(ctx, "invitation.cancel", map[string]string{"id": ib.ID}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Errorf("invitee cancels: %v", err)
	}
	if err := bob.Call(ctx, "invitation.accept", map[string]string{"id": "IN_nope"}, nil); client.ErrorCode(err) != CodeNotFound {
		t.Errorf("unknown id: %v", err)
	}
	if err := bob.Call(ctx, "invitation.accept", map[string]string{"id": ib.ID}, nil); err != nil {
		t.Fatal(err)
	}
	// --max-cohosts 1: the stage is full.
	if err := carol.Call(ctx, "invitation.accept", map[string]string{"id": ic.ID}, nil); client.ErrorCode(err) != CodeTooMany {
		t.Errorf("accept on a full stage: %v", err)
	}
	if err := host.Call(ctx, "invitation.create", map[string]string{"user": "erin"}, nil); client.ErrorCode(err) != CodeTooMany {
		t.Errorf("create on a full stage: %v", err)
	}
	if err := bob.Call(ctx, "invitation.accept", map[string]string{"id": ib.ID}, nil); client.ErrorCode(err) != CodeConflict {
		t.Errorf("accept twice: %v", err)
	}
	var list struct{ Invitations []client.Invitation }
	if err := host.Call(ctx, "invitation.list", map[string]string{"status": "pending"}, &list); err != nil || len(list.Invitations) != 1 {
		t.Errorf("host list pending: %v %+v", err, list)
	}
	// The room ends: pending cancelled, the co-host's stage ended.
	if err := host.Call(ctx, "room.stop", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	waitNote(t, carol, "invitation.updated", invitationIs("carol", "cancelled"))
	waitNote(t, bob, "invitation.updated", invitationIs("bob", "removed"))
}

func TestInvitationHTTPAPI(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	if code, _ := httpDo(t, "GET", ts.URL+"/v1/rooms/none/invitations", admin, ""); code != 404 {
		t.Errorf("missing room: %d", code)
	}
	httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":"show","host":"alice"}`)
	code, body := httpDo(t, "POST", ts.URL+"/v1/rooms/show/invitations", admin, `{"user":"bob"}`)
	if code != 201 || body["status"] != "pending" || body["host"] != "alice" {
		t.Fatalf("create: %d %v", code, body)
	}
	id := body["id"].(string)
	if code, body := httpDo(t, "GET", ts.URL+"/v1/users/bob/invitations", admin, ""); code != 200 || len(body["invitations"].([]any)) != 1 {
		t.Errorf("user list: %d %v", code, body)
	}
	if code, body := httpDo(t, "POST", ts.URL+"/v1/invitations/"+id+"/accept", admin, ""); code != 200 || body["status"] != "accepted" {
		t.Errorf("accept: %d %v", code, body)
	}
	if code, _ := httpDo(t, "POST", ts.URL+"/v1/invitations/"+id+"/cancel", admin, ""); code != 409 {
		t.Errorf("cancel accepted: %d", code)
	}
	if code, body := httpDo(t, "GET", ts.URL+"/v1/rooms/show/invitations?status=accepted", admin, ""); code != 200 || len(body["invitations"].([]any)) != 1 {
		t.Errorf("room list: %d %v", code, body)
	}
	if code, _ := httpDo(t, "POST", ts.URL+"/v1/invitations/IN_nope/accept", admin, ""); code != 404 {
		t.Errorf("unknown: %d", code)
	}
}

// The relay gate through real invitations: the destination's host invites
// the source host, who may then relay there.
func TestRelayGatedByInvitation(t *testing.T) {
	ts := newTestServer(t)
	viewers := relayRooms(t, ts, "B")
	hostB := ts.SFU.Room("B")
	_ = hostB
	src, _ := ts.join(t, "alice", "A", "host")
	publish(t, src)
	// Not invited yet: the destination fails.
	var rl client.Relay
	if err := src.Call(testCtx(t), "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B")}, &rl); err != nil {
		t.Fatal(err)
	}
	waitNote(t, src, "relay.state", relayState("failure"))
	_ = src.Call(testCtx(t), "relay.stop", map[string]any{}, nil)
	// Invited and accepted (alice's user session answers).
	tok, _ := ts.Tokens.Issue(TokenSpec{Identity: "alice", TTL: time.Hour})
	user, err := client.Dial(testCtx(t), ts.URL, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = user.Close() })
	if _, err := user.Join(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	hb, _ := ts.join(t, "host-B", "B", "host") // a second session of B's host
	invite(t, hb, user, "alice")
	if err := src.Call(testCtx(t), "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B")}, &rl); err != nil {
		t.Fatal(err)
	}
	waitNote(t, src, "relay.state", relayState("running"))
	receiving(t, viewers["B"], "video", 10)
}
