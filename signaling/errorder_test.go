package signaling

import (
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
)

// PROTOCOL.md "Errors": params are validated before permissions (-32602
// before 4003), then the state (4009). A viewer may not relay, but a
// destination set that names a room twice, or the viewer's own room, is
// the params' fault first (before: 4003).
func TestRelayStartParamsBeforeRole(t *testing.T) {
	ts := newTestServer(t)
	ts.join(t, "alice", "A", "host")
	viewer, _ := ts.join(t, "bob", "A", "viewer")
	ctx := testCtx(t)
	for name, dests := range map[string][]destination{
		"a room twice":    append(ts.dests(t, "bob", "B"), ts.dests(t, "bob", "B")...),
		"the source room": ts.dests(t, "bob", "A"),
	} {
		err := viewer.Call(ctx, "relay.start", map[string]any{"destinations": dests}, nil)
		if client.ErrorCode(err) != CodeInvalidParams {
			t.Errorf("%s, by a viewer: %v, want -32602", name, err)
		}
	}
	// Valid params: now the role says no.
	if err := viewer.Call(ctx, "relay.start", map[string]any{"destinations": ts.dests(t, "bob", "B")}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Errorf("a viewer's relay: %v, want 4003", err)
	}
}

// invitation.accept in the contract's order: an unknown id is 4004;
// someone else's invitation is 4003 whatever its state or its room's
// (before: 4009 once its room had ended); the invitee's own, in an ended
// room, 4009.
func TestInvitationAcceptPermissionBeforeState(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	ctx := testCtx(t)
	var inv client.Invitation
	if err := host.Call(ctx, "invitation.create", map[string]string{"user": "bob"}, &inv); err != nil {
		t.Fatal(err)
	}
	user := func(identity string) *client.Client {
		tok, _ := ts.Tokens.Issue(TokenSpec{Identity: identity, TTL: time.Hour})
		c, err := client.Dial(ctx, ts.URL, tok, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := c.Join(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	bob, carol := user("bob"), user("carol")
	if err := host.Call(ctx, "room.stop", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	waitNote(t, bob, "invitation.updated", invitationIs("bob", "cancelled"))
	if err := carol.Call(ctx, "invitation.accept", map[string]string{"id": "IN_nope"}, nil); client.ErrorCode(err) != CodeNotFound {
		t.Errorf("unknown id: %v, want 4004", err)
	}
	if err := carol.Call(ctx, "invitation.accept", map[string]string{"id": inv.ID}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Errorf("someone else's invitation, room ended: %v, want 4003", err)
	}
	if err := bob.Call(ctx, "invitation.accept", map[string]string{"id": inv.ID}, nil); client.ErrorCode(err) != CodeConflict {
		t.Errorf("the invitee's own, room ended: %v, want 4009", err)
	}
}
