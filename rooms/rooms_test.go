package rooms

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/relay"
	"github.com/relaysfu/relayd/sfu"
)

// newTestRooms is Rooms over bbolt stores, with an sfu whose participants
// never negotiate (no PeerConnection is made: joins, roles and removals
// need none).
func newTestRooms(t *testing.T) *Rooms {
	t.Helper()
	_, open := restartable(t)
	r := open(nil)
	t.Cleanup(r.Close) // before the stores close
	return r
}

// events records what a member or a relay participant is told.
type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) Notify(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

// ended returns the SessionEnded told, if any.
func (e *events) ended() (sfu.SessionEnded, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.evs {
		if se, ok := ev.(sfu.SessionEnded); ok {
			return se, true
		}
	}
	return sfu.SessionEnded{}, false
}

// sfuEvents adapts events to an sfu.EventSink (a relay participant's).
type sfuEvents struct{ *events }

func (s sfuEvents) Notify(ev sfu.Event) { s.events.Notify(ev) }

func (r *Rooms) mustJoin(t *testing.T, req JoinRequest) (*Member, *events) {
	t.Helper()
	ev := &events{}
	m, _, err := r.Join(req, ev)
	if err != nil {
		t.Fatalf("join %+v: %v", req, err)
	}
	return m, ev
}

// relayInto puts a relay participant of identity into room, as a relay
// from room "src" would.
func relayInto(t *testing.T, room *sfu.Room, identity string) (*sfu.Participant, *events) {
	t.Helper()
	ev := &events{}
	p, _, err := room.Join(sfu.ParticipantParams{Identity: identity, Role: sfu.RoleRelay, RelayFrom: "src", Events: sfuEvents{ev}})
	if err != nil {
		t.Fatal(err)
	}
	return p, ev
}

// in reports whether identity is in room with role.
func in(room *sfu.Room, identity string, role sfu.Role) bool {
	for _, p := range room.Participants() {
		if p.Identity == identity && p.Role == role {
			return true
		}
	}
	return false
}

// An invitation's end reaches every participant of its identity in its
// room: removed or left, the direct one is a viewer again and the relay
// one leaves (its relay is told SessionEnded and drops the room). The
// host's own relay into its room is never touched; an accepted
// invitation makes the direct one a co-host.
func TestInvitationEndReachesRelays(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // first registered: runs after the rooms close
	for _, how := range []string{"removed", "left"} {
		t.Run(how, func(t *testing.T) {
			r := newTestRooms(t)
			host, _ := r.mustJoin(t, JoinRequest{Identity: "alice", Room: "B", Host: true})
			bob, _ := r.mustJoin(t, JoinRequest{Identity: "bob", Room: "B"})
			inv, err := host.InvitationCreate("bob")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bob.InvitationAccept(inv.ID); err != nil {
				t.Fatal(err)
			}
			room := r.SFU().Room("B")
			if !in(room, "bob", sfu.RoleCohost) {
				t.Fatalf("accepted: %+v, want bob co-host", room.Participants())
			}
			_, relayEv := relayInto(t, room, "bob")
			_, hostRelayEv := relayInto(t, room, "alice")

			if how == "removed" {
				err = host.CohostRemove("bob")
			} else {
				err = bob.StageLeave()
			}
			if err != nil {
				t.Fatal(err)
			}
			if !in(room, "bob", sfu.RoleViewer) || in(room, "bob", sfu.RoleRelay) {
				t.Fatalf("after %s: %+v, want bob a viewer and no relay of bob", how, room.Participants())
			}
			if _, ok := relayEv.ended(); !ok {
				t.Error("bob's relay was not told its session ended")
			}
			if !in(room, "alice", sfu.RoleRelay) {
				t.Error("the host's own relay was taken out")
			}
			if _, ok := hostRelayEv.ended(); ok {
				t.Error("the host's own relay was told its session ended")
			}
		})
	}
}

// A kick addresses an identity: its direct participant (4003 close) and
// its relay participant in the room alike; with neither and no ban, 4004.
func TestKickBothWays(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // first registered: runs after the rooms close
	r := newTestRooms(t)
	host, _ := r.mustJoin(t, JoinRequest{Identity: "alice", Room: "B", Host: true})
	_, bobEv := r.mustJoin(t, JoinRequest{Identity: "bob", Room: "B"})
	room := r.SFU().Room("B")
	_, relayEv := relayInto(t, room, "bob")
	_, carolRelayEv := relayInto(t, room, "carol")

	if err := host.Kick("bob", false); err != nil {
		t.Fatal(err)
	}
	if se, ok := bobEv.ended(); !ok || se.Code != 4003 {
		t.Errorf("bob's session: %+v %v, want ended with 4003", se, ok)
	}
	if _, ok := relayEv.ended(); !ok {
		t.Error("bob's relay was not told its session ended")
	}
	if in(room, "bob", sfu.RoleViewer) || in(room, "bob", sfu.RoleRelay) {
		t.Fatalf("after the kick: %+v", room.Participants())
	}
	// Only as a relay.
	if err := host.Kick("carol", false); err != nil {
		t.Fatalf("kick of a relay-only identity: %v", err)
	}
	if _, ok := carolRelayEv.ended(); !ok || in(room, "carol", sfu.RoleRelay) {
		t.Error("carol's relay is still in the room")
	}
	for _, tc := range []struct {
		who  string
		ban  bool
		kind error
	}{
		{"nobody", false, ErrNotFound},
		{"nobody", true, nil},
		{"alice", false, ErrForbidden},
	} {
		if err := host.Kick(tc.who, tc.ban); !errors.Is(err, tc.kind) || (tc.kind == nil && err != nil) {
			t.Errorf("kick %s (ban %v): %v, want %v", tc.who, tc.ban, err, tc.kind)
		}
	}
	if _, _, err := r.Join(JoinRequest{Identity: "nobody", Room: "B"}, &events{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("banned join: %v, want forbidden", err)
	}
	if r.relayGate("B", "nobody") {
		t.Error("the relay gate let a banned identity in")
	}
}

func TestCheckDestinations(t *testing.T) {
	ts := func(rooms ...string) []relay.Target {
		var out []relay.Target
		for _, r := range rooms {
			out = append(out, relay.Target{Room: r})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		src  string
		ts   []relay.Target
		ok   bool
	}{
		{"none", "A", nil, true},
		{"distinct", "A", ts("B", "C", "D"), true},
		{"a room twice", "A", ts("B", "C", "B"), false},
		{"the source room", "A", ts("B", "A"), false},
		{"no source room (a user session)", "", ts("B"), true},
	} {
		err := checkDestinations(tc.src, tc.ts)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: %v, want ok %v (or ErrInvalid)", tc.name, err, tc.ok)
		}
	}
}

// Every error of the packages below becomes one of rooms' kinds; anything
// else (a store that failed) stays as it is.
func TestErrorKinds(t *testing.T) {
	other := errors.New("disk on fire")
	for _, tc := range []struct {
		err  error
		kind error
	}{
		{fromSFU(sfu.ErrBadSDP), ErrInvalid},
		{fromSFU(sfu.ErrBadCandidate), ErrInvalid},
		{fromSFU(sfu.ErrForbidden), ErrForbidden},
		{fromSFU(sfu.ErrRoomNotFound), ErrNotFound},
		{fromSFU(sfu.ErrRoomEnded), ErrConflict},
		{fromSFU(sfu.ErrWrongState), ErrConflict},
		{fromSFU(sfu.ErrClosed), ErrConflict},
		{fromSFU(sfu.ErrRoomExists), ErrConflict},
		{fromInvitations(fmt.Errorf("x: %w", invitations.ErrNotFound)), ErrNotFound},
		{fromInvitations(invitations.ErrForbidden), ErrForbidden},
		{fromInvitations(invitations.ErrConflict), ErrConflict},
		{fromInvitations(invitations.ErrStageFull), ErrTooMany},
		{fromInvitations(invitations.ErrInvalid), ErrInvalid},
		{fromRelay(relay.ErrNotFound), ErrNotFound},
		{fromRelay(relay.ErrConflict), ErrConflict},
		{fromRelay(relay.ErrTooMany), ErrTooMany},
		{fromRelay(relay.ErrInvalid), ErrInvalid},
		{fromRelay(relay.ErrForbidden), ErrForbidden},
		{fromChat(chat.ErrNotFound, "m1"), ErrNotFound},
	} {
		var e *Error
		if !errors.As(tc.err, &e) || !errors.Is(tc.err, tc.kind) {
			t.Errorf("%v: not a rooms error of kind %v", tc.err, tc.kind)
		}
	}
	for _, err := range []error{fromSFU(other), fromInvitations(other), fromRelay(other), fromChat(other, "m1")} {
		if err != other {
			t.Errorf("%v: changed into %v", other, err)
		}
	}
	if fromSFU(nil) != nil || fromInvitations(nil) != nil || fromRelay(nil) != nil {
		t.Error("nil became an error")
	}
}

// ordered delivers in the order queued under the callers' own lock, never
// two at once, and a panic leaves it usable.
func TestOrdered(t *testing.T) {
	var o ordered
	var mu sync.Mutex // the callers' order, as the chat's
	var got []int
	running := 0
	var wg sync.WaitGroup
	next := 0
	for range 8 {
		wg.Go(func() {
			for range 100 {
				mu.Lock()
				n := next
				next++
				o.push(func() {
					running++ // racy if two ran at once (go test -race)
					if running != 1 {
						t.Errorf("%d deliveries at once", running)
					}
					got = append(got, n)
					running--
				})
				mu.Unlock()
				o.drain()
			}
		})
	}
	wg.Wait()
	o.drain()
	if len(got) != 800 {
		t.Fatalf("%d delivered, want 800", len(got))
	}
	for i, n := range got {
		if n != i {
			t.Fatalf("delivered %d at %d: out of order", n, i)
		}
	}
	func() {
		defer func() { _ = recover() }()
		o.push(func() { panic("boom") })
		o.drain()
	}()
	ran := false
	o.push(func() { ran = true })
	o.drain()
	if !ran {
		t.Fatal("nothing delivered after a panic")
	}
}

// hooks records the webhook events.
type hooks struct {
	mu  sync.Mutex
	evs []string
}

func (h *hooks) Emit(typ, room string, data any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.evs = append(h.evs, fmt.Sprintf("%s %s %v", typ, room, data))
}

// A dead node's rooms end in the store (node_lost), with their
// invitations and the webhook, once; an ended room only has its
// invitations closed; a room never created is skipped.
func TestEndRoomsOfNode(t *testing.T) {
	r := newTestRooms(t)
	h := &hooks{}
	r.cfg.Webhooks = h
	now := time.Now().UTC()
	for _, rec := range []invitations.RoomRecord{
		{Name: "live", Host: "alice", Status: "live", CreatedAt: now},
		{Name: "over", Host: "alice", Status: "ended", CreatedAt: now, EndReason: "host_left"},
	} {
		if err := r.store.PutRoom(rec); err != nil {
			t.Fatal(err)
		}
	}
	inv, _, err := r.inv.Create("live", "alice", "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	h.evs = nil
	r.EndRoomsOfNode("n2", []string{"live", "over", "never"})
	rec, err := r.store.GetRoom("live")
	if err != nil || rec.Status != "ended" || rec.EndReason != "node_lost" || rec.EndedAt == nil {
		t.Fatalf("live room's record: %+v %v", rec, err)
	}
	if rec, _ := r.store.GetRoom("over"); rec.EndReason != "host_left" {
		t.Errorf("an ended room's reason changed: %+v", rec)
	}
	if got, _ := r.inv.Get(inv.ID); got.Status != invitations.StatusCancelled {
		t.Errorf("the pending invitation is %s, want cancelled", got.Status)
	}
	var ended []string
	for _, ev := range h.evs {
		if strings.HasPrefix(ev, "room.ended") {
			ended = append(ended, ev)
		}
	}
	if want := "room.ended live map[endReason:node_lost reason:node_lost]"; len(ended) != 1 || ended[0] != want {
		t.Errorf("webhooks %q, want one %q", ended, want)
	}
}
