package rooms

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/relay"
	"github.com/relaysfu/relayd/sfu"
)

// Only a 1.1 host's fresh join into an ended room starts its next
// broadcast (1.1 §1a).
func TestStartsBroadcast(t *testing.T) {
	for _, tc := range []struct {
		status            sfu.RoomStatus
		host, v11, resume bool
		want              bool
	}{
		{sfu.StatusEnded, true, true, false, true},
		{sfu.StatusRecorded, true, true, false, true},
		{sfu.StatusEnded, true, false, false, false}, // a 1.0 host
		{sfu.StatusEnded, false, true, false, false}, // a viewer
		{sfu.StatusEnded, true, true, true, false},   // a resume attempt
		{sfu.StatusRecorded, false, false, true, false},
		{sfu.StatusIdle, true, true, false, false}, // not ended: joined as it is
		{sfu.StatusLive, true, true, false, false},
		{sfu.StatusWaitingReconnect, true, true, false, false},
	} {
		if got := startsBroadcast(tc.status, tc.host, tc.v11, tc.resume); got != tc.want {
			t.Errorf("%s host %v 1.1 %v resume %v: %v, want %v", tc.status, tc.host, tc.v11, tc.resume, got, tc.want)
		}
	}
}

// joinErr joins and returns the error only.
func (r *Rooms) joinErr(req JoinRequest) error {
	_, _, err := r.Join(req, &events{})
	return err
}

// A 1.1 host's join into its ended room starts the next broadcast: idle,
// a new id, createdAt kept, no start, end or reason; everyone else still
// gets 4009, another identity's host token 4003.
func TestJoinStartsTheNextBroadcast(t *testing.T) {
	r := newTestRooms(t)
	h := &hooks{}
	r.cfg.Webhooks = h
	host, _ := r.mustJoin(t, JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true})
	first := r.SFU().Room("show")
	firstInfo := first.Info(false)
	stop, err := host.StopRoom()
	if err != nil {
		t.Fatal(err)
	}
	stop()
	for _, tc := range []struct {
		req  JoinRequest
		kind error
	}{
		{JoinRequest{Identity: "alice", Room: "show", Host: true}, ErrConflict},                          // 1.0
		{JoinRequest{Identity: "bob", Room: "show", V11: true}, ErrConflict},                             // a viewer
		{JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true, Resume: true}, ErrConflict}, // a resume
		{JoinRequest{Identity: "mallory", Room: "show", Host: true, V11: true}, ErrForbidden},            // not its host
	} {
		if err := r.joinErr(tc.req); !errors.Is(err, tc.kind) {
			t.Errorf("%+v: %v, want %v", tc.req, err, tc.kind)
		}
	}
	if r.SFU().Room("show") != first {
		t.Fatal("a refused join started a broadcast")
	}
	_, j, err := r.Join(JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true}, &events{})
	if err != nil {
		t.Fatal(err)
	}
	next := j.Room
	switch {
	case next.Status != sfu.StatusIdle || next.StartedAt != nil || next.EndedAt != nil || next.EndReason != "":
		t.Errorf("the next broadcast: %+v", next)
	case next.BroadcastID == firstInfo.BroadcastID || !strings.HasPrefix(next.BroadcastID, "BC_"):
		t.Errorf("broadcast %q after %q", next.BroadcastID, firstInfo.BroadcastID)
	case !next.CreatedAt.Equal(firstInfo.CreatedAt):
		t.Errorf("createdAt %v, want %v kept", next.CreatedAt, firstInfo.CreatedAt)
	}
	// Viewers join the new broadcast.
	if err := r.joinErr(JoinRequest{Identity: "bob", Room: "show"}); err != nil {
		t.Errorf("a viewer of the new broadcast: %v", err)
	}
	list, err := r.Broadcasts("show")
	if err != nil || len(list) != 2 || list[0].ID != firstInfo.BroadcastID || list[0].Status != "ended" ||
		list[0].EndReason != "host_left" || list[1].ID != next.BroadcastID || list[1].Status != "idle" {
		t.Fatalf("broadcasts: %+v, %v", list, err)
	}
	var ended []string
	for _, ev := range h.evs {
		if strings.HasPrefix(ev, "room.ended") {
			ended = append(ended, ev)
		}
	}
	if want := fmt.Sprintf("room.ended show map[broadcastId:%s endReason:host_left]", firstInfo.BroadcastID); len(ended) != 1 || ended[0] != want {
		t.Errorf("webhooks %q, want one %q", ended, want)
	}
}

// At a new broadcast the older invitations end (pending: cancelled,
// accepted: removed), each told to its host and invitee; only the current
// broadcast's make co-hosts; invitation.list (host) and chat.history
// cover the current broadcast; message ids keep increasing; bans end with
// their broadcast.
func TestTheNextBroadcastStartsClean(t *testing.T) {
	r := newTestRooms(t)
	host, _ := r.mustJoin(t, JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true})
	bob, _ := r.mustJoin(t, JoinRequest{Identity: "bob", Room: "show"})
	_, carolEv := r.mustJoin(t, JoinRequest{Identity: "carol"}) // a user session
	accepted, err := host.InvitationCreate("bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.InvitationAccept(accepted.ID); err != nil {
		t.Fatal(err)
	}
	pending, err := host.InvitationCreate("carol")
	if err != nil {
		t.Fatal(err)
	}
	old, err := bob.ChatSend("in the first")
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Kick("mallory", true); err != nil {
		t.Fatal(err)
	}
	first := r.SFU().Room("show")
	// An end whose invitations' writes failed (or a crash between the
	// two) leaves them open: here, the room ends with its invitations
	// left open; the next broadcast closes them.
	first.End(sfu.EndServerShutdown)
	for _, id := range []string{accepted.ID, pending.ID} {
		if _, err := r.store.Update(id, func(inv *invitations.Invitation, _ []invitations.Invitation) error {
			inv.Status = map[string]invitations.Status{accepted.ID: invitations.StatusAccepted, pending.ID: invitations.StatusPending}[id]
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	host2, _ := r.mustJoin(t, JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true})
	second := r.SFU().Room("show").BroadcastID()
	for id, want := range map[string]invitations.Status{accepted.ID: invitations.StatusRemoved, pending.ID: invitations.StatusCancelled} {
		if got, _ := r.inv.Get(id); got.Status != want {
			t.Errorf("%s: %s, want %s", id, got.Status, want)
		}
	}
	told := false
	carolEv.mu.Lock()
	for _, ev := range carolEv.evs {
		if iu, ok := ev.(InvitationUpdated); ok && iu.Invitation.ID == pending.ID && iu.Invitation.Status == invitations.StatusCancelled {
			told = true
		}
	}
	carolEv.mu.Unlock()
	if !told {
		t.Error("the invitee was not told its invitation was cancelled")
	}
	bob2, j, err := r.Join(JoinRequest{Identity: "bob", Room: "show"}, &events{})
	if err != nil || j.Participant.Role != sfu.RoleViewer {
		t.Fatalf("bob in the next broadcast: %+v %v, want a viewer", j.Participant, err)
	}
	if err := r.joinErr(JoinRequest{Identity: "mallory", Room: "show"}); err != nil {
		t.Errorf("banned in the last broadcast, joining the next: %v", err)
	}
	if list, err := host2.InvitationList(""); err != nil || len(list) != 0 {
		t.Errorf("the host's invitation.list in the next broadcast: %+v %v", list, err)
	}
	cur, err := host2.InvitationCreate("dan")
	if err != nil || cur.BroadcastID != second {
		t.Fatalf("an invitation of the next broadcast: %+v %v", cur, err)
	}
	if list, _ := host2.InvitationList(""); len(list) != 1 || list[0].ID != cur.ID {
		t.Errorf("invitation.list: %+v, want the current broadcast's only", list)
	}
	if all, _ := r.RoomInvitations("show", "", ""); len(all) != 3 {
		t.Errorf("every broadcast's invitations over HTTP: %d, want 3", len(all))
	}
	if one, _ := r.RoomInvitations("show", "", first.BroadcastID()); len(one) != 2 {
		t.Errorf("the first broadcast's invitations over HTTP: %d, want 2", len(one))
	}
	if _, err := r.RoomInvitations("show", "", "BC_0000000000000000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown broadcast: %v", err)
	}
	if h, _ := bob2.ChatHistory("", 0); len(h) != 0 {
		t.Errorf("chat.history of the next broadcast: %+v", h)
	}
	msg, err := bob2.ChatSend("in the second")
	if err != nil || msg.ID <= old.ID || msg.BroadcastID != second {
		t.Fatalf("a message of the next broadcast: %+v (after %s) %v", msg, old.ID, err)
	}
	for _, tc := range []struct {
		bc   string
		want []chat.Message
	}{{"", []chat.Message{msg}}, {second, []chat.Message{msg}}, {first.BroadcastID(), []chat.Message{old}}} {
		got, err := r.Chat("show", tc.bc, "", 0)
		if err != nil || len(got) != 1 || got[0].ID != tc.want[0].ID {
			t.Errorf("chat of %q: %+v %v", tc.bc, got, err)
		}
	}
	if _, err := r.Chat("show", "BC_0000000000000000", "", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("chat of an unknown broadcast: %v", err)
	}
}

// POST /v1/rooms with an ended room's name starts its next broadcast,
// whose host may change; a room that has not ended is a conflict.
func TestCreateRoomStartsTheNextBroadcast(t *testing.T) {
	r := newTestRooms(t)
	first, err := r.CreateRoom("show", "alice", "", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateRoom("show", "bob", "", nil, false); !errors.Is(err, ErrConflict) {
		t.Errorf("POST over an idle room: %v", err)
	}
	if _, err := r.StopRoom("show"); err != nil {
		t.Fatal(err)
	}
	next, err := r.CreateRoom("show", "bob", "Again", []byte(`{"n":2}`), true)
	if err != nil {
		t.Fatal(err)
	}
	if next.BroadcastID == first.BroadcastID || next.Host != "bob" || next.Status != sfu.StatusIdle ||
		!next.CreatedAt.Equal(first.CreatedAt) || next.Title != "Again" || !next.Recording {
		t.Errorf("the next broadcast: %+v", next)
	}
	if err := r.joinErr(JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true}); !errors.Is(err, ErrForbidden) {
		t.Errorf("the former host's join: %v", err)
	}
	if err := r.joinErr(JoinRequest{Identity: "bob", Room: "show", Host: true}); err != nil {
		t.Errorf("the new host's join: %v", err)
	}
}

// A broadcast that ends after the next began (its recordings became final
// late) is stored as its own record; the room's record stays the current
// broadcast's. Broadcasts survive a restart.
func TestALateEndTouchesItsOwnBroadcast(t *testing.T) {
	dir := t.TempDir()
	open := func() (*Rooms, func()) {
		store, err := invitations.OpenBolt(dir)
		if err != nil {
			t.Fatal(err)
		}
		chats, err := chat.OpenBolt(dir)
		if err != nil {
			t.Fatal(err)
		}
		r, err := New(Config{
			Invitations: invitations.Config{Store: store}, Chat: chats, DataDir: dir,
			AuthorizeRelay: func(t relay.Target) (string, relay.Error) { return t.Identity, relay.ErrNone },
		})
		if err != nil {
			t.Fatal(err)
		}
		return r, func() { r.Close(); _ = store.Close(); _ = chats.Close() }
	}
	r, closeRooms := open()
	if _, err := r.CreateRoom("show", "alice", "", nil, false); err != nil {
		t.Fatal(err)
	}
	first := r.SFU().Room("show")
	first.End(sfu.EndHostLeft)
	if _, err := r.CreateRoom("show", "alice", "", nil, false); err != nil {
		t.Fatal(err)
	}
	second := r.SFU().Room("show")
	first.MarkRecorded() // what a late recording does
	rec, err := r.store.GetRoom("show")
	if err != nil || rec.BroadcastID != second.BroadcastID() || rec.Status != "idle" {
		t.Fatalf("the room record: %+v %v, want the second broadcast, idle", rec, err)
	}
	list, _ := r.Broadcasts("show")
	if len(list) != 2 || list[0].Status != "recorded" || list[0].EndReason != "host_left" || list[1].Status != "idle" {
		t.Fatalf("broadcasts: %+v", list)
	}
	closeRooms()

	// The stop ended the second broadcast (server_shutdown); a restart
	// finds it so.
	r, closeRooms = open()
	defer closeRooms()
	if got := r.SFU().Room("show"); got == nil || got.BroadcastID() != second.BroadcastID() || got.Info(false).EndReason != sfu.EndServerShutdown {
		t.Fatalf("restored: %+v", got)
	}
	again, _ := r.Broadcasts("show")
	if len(again) != 2 || !reflectEqual(again[0], list[0]) || again[1].ID != list[1].ID || again[1].EndReason != "server_shutdown" {
		t.Errorf("broadcasts after a restart: %+v, want %+v then the second, ended", again, list[0])
	}
	// Purged with all its broadcasts.
	if n := r.Purge(t.Context(), time.Now().Add(time.Hour)); n != 0 {
		t.Fatalf("purged %d with no retention", n)
	}
	r.ret.keep = time.Minute
	if n := r.Purge(t.Context(), time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("purged %d, want 1", n)
	}
	if b, err := r.store.ListBroadcasts("show"); err != nil || len(b) != 0 {
		t.Errorf("broadcasts after the purge: %+v %v", b, err)
	}
}

// room.record: the host only, in a room that has not ended; it turns the
// room's recording on (room.updated to all) and off; a new broadcast
// starts with the policy's default.
func TestRecordSwitch(t *testing.T) {
	r := newTestRooms(t)
	host, _ := r.mustJoin(t, JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true})
	viewer, vev := r.mustJoin(t, JoinRequest{Identity: "bob", Room: "show"})
	if _, err := viewer.Record(true); !errors.Is(err, ErrForbidden) {
		t.Errorf("a viewer's room.record: %v", err)
	}
	info, err := host.Record(true)
	if err != nil || !info.Recording {
		t.Fatalf("room.record on: %+v %v", info, err)
	}
	if !vev.eventually(func(ev Event) bool { ru, ok := ev.(sfu.RoomUpdated); return ok && ru.Room.Recording }) {
		t.Error("the viewer was not told room.updated with recording")
	}
	if info, err := host.Record(false); err != nil || info.Recording {
		t.Fatalf("room.record off: %+v %v", info, err)
	}
	if _, err := host.Record(true); err != nil {
		t.Fatal(err)
	}
	r.SFU().Room("show").End(sfu.EndHostLeft)
	if _, err := host.Record(true); !errors.Is(err, ErrConflict) {
		t.Errorf("room.record in an ended room: %v", err)
	}
	if _, err := r.SetRecording("show", true); !errors.Is(err, ErrConflict) {
		t.Errorf("the HTTP switch of an ended room: %v", err)
	}
	if _, err := r.SetRecording("nope", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("the HTTP switch of no room: %v", err)
	}
	_, j, err := r.Join(JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true}, &events{})
	if err != nil || j.Room.Recording {
		t.Errorf("the next broadcast: recording %v (%v), want off", j.Room.Recording, err)
	}
}

// Without a data directory the server records nothing.
func TestNoRecorder(t *testing.T) {
	dir := t.TempDir()
	store, _ := invitations.OpenBolt(dir)
	chats, _ := chat.OpenBolt(dir)
	r, err := New(Config{Invitations: invitations.Config{Store: store}, Chat: chats, RecordAll: true,
		AuthorizeRelay: func(t relay.Target) (string, relay.Error) { return t.Identity, relay.ErrNone }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Close(); _ = store.Close(); _ = chats.Close() }()
	host, j, err := r.Join(JoinRequest{Identity: "alice", Room: "show", Host: true}, &events{})
	if err != nil || j.Room.Recording || r.HasRecorder() {
		t.Fatalf("no recorder: recording %v, HasRecorder %v, %v", j.Room.Recording, r.HasRecorder(), err)
	}
	if _, err := host.Record(true); !errors.Is(err, ErrNotFound) {
		t.Errorf("room.record without a recorder: %v", err)
	}
	if list, err := r.Recordings("show", ""); err != nil || list == nil || len(list) != 0 {
		t.Errorf("recordings without a recorder: %#v %v", list, err)
	}
}

func reflectEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

// eventually reports whether e is told an event match accepts within a
// few seconds (the sfu's events come from the participant's mailbox).
func (e *events) eventually(match func(Event) bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		for _, ev := range e.evs {
			if match(ev) {
				e.mu.Unlock()
				return true
			}
		}
		e.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// Only the current broadcast's invitations make co-hosts: an older
// broadcast's accepted invitation that stayed accepted (its end failed to
// be stored) gives no role, and an older broadcast's pending invitation
// can no longer be accepted.
func TestOnlyTheCurrentBroadcastMakesCohosts(t *testing.T) {
	r := newTestRooms(t)
	host, _ := r.mustJoin(t, JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true})
	bob, _ := r.mustJoin(t, JoinRequest{Identity: "bob", Room: "show"})
	carol, _ := r.mustJoin(t, JoinRequest{Identity: "carol"})
	accepted, _ := host.InvitationCreate("bob")
	if _, err := bob.InvitationAccept(accepted.ID); err != nil {
		t.Fatal(err)
	}
	pending, _ := host.InvitationCreate("carol")
	r.SFU().Room("show").End(sfu.EndHostLeft)
	r.mustJoin(t, JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true})
	// As if the next broadcast's writes of the old invitations had failed.
	for id, st := range map[string]invitations.Status{accepted.ID: invitations.StatusAccepted, pending.ID: invitations.StatusPending} {
		if _, err := r.store.Update(id, func(inv *invitations.Invitation, _ []invitations.Invitation) error {
			inv.Status = st
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	_, j, err := r.Join(JoinRequest{Identity: "bob", Room: "show"}, &events{})
	if err != nil || j.Participant.Role != sfu.RoleViewer {
		t.Errorf("bob with the last broadcast's accepted invitation: %+v %v, want a viewer", j.Participant, err)
	}
	if r.relayGate("show", "bob") {
		t.Error("the relay gate let the last broadcast's co-host in")
	}
	if _, err := carol.InvitationAccept(pending.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("accepting the last broadcast's invitation: %v, want conflict", err)
	}
}
