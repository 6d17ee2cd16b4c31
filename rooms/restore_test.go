package rooms

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/relay"
	"github.com/relaysfu/relayd/sfu"
)

// A restart after a crash finds rooms the store has as live or waiting
// for their host: they end server_shutdown as a graceful stop would have
// ended them, room.ended told and their invitations closed (pending
// cancelled, accepted removed); an idle room keeps its invitations, and
// an ended one is not told ended again.
func TestRestoreEndsLiveRooms(t *testing.T) {
	store, open := restartable(t)
	// Before the crash: an invitation pending and one accepted in each
	// room (rooms need not exist for them).
	before := open(nil)
	ids := map[string]string{}
	for _, room := range []string{"live", "wait", "idle"} {
		p, _, err := before.inv.Create(room, "alice", "alice", "bob")
		if err != nil {
			t.Fatal(err)
		}
		a, _, err := before.inv.Create(room, "alice", "alice", "carol")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := before.inv.Accept(a.ID, "carol"); err != nil {
			t.Fatal(err)
		}
		ids[room+" pending"], ids[room+" accepted"] = p.ID, a.ID
	}
	before.Close()
	// What the store held when the server died.
	now := time.Now().UTC()
	for _, rec := range []invitations.RoomRecord{
		{Name: "live", Host: "alice", Status: "live", CreatedAt: now, BroadcastID: "BC_0000000000000001"},
		{Name: "wait", Host: "alice", Status: "waiting_reconnect", CreatedAt: now, BroadcastID: "BC_0000000000000002"},
		{Name: "idle", Host: "alice", Status: "idle", CreatedAt: now, BroadcastID: "BC_0000000000000003"},
		{Name: "over", Host: "alice", Status: "ended", EndReason: "host_left", CreatedAt: now, EndedAt: &now, BroadcastID: "BC_0000000000000004"},
	} {
		if err := store.PutRoom(rec); err != nil {
			t.Fatal(err)
		}
	}

	h := &hooks{}
	r := open(h)
	defer r.Close()

	want := map[string]invitations.Status{
		"live pending": invitations.StatusCancelled, "live accepted": invitations.StatusRemoved,
		"wait pending": invitations.StatusCancelled, "wait accepted": invitations.StatusRemoved,
		"idle pending": invitations.StatusPending, "idle accepted": invitations.StatusAccepted,
	}
	for k, id := range ids {
		if got, err := r.inv.Get(id); err != nil || got.Status != want[k] {
			t.Errorf("%s invitation: %s %v, want %s", k, got.Status, err, want[k])
		}
	}
	for _, name := range []string{"live", "wait"} {
		if rec, err := r.store.GetRoom(name); err != nil || rec.Status != "ended" || rec.EndReason != "server_shutdown" {
			t.Errorf("%s room's record: %+v %v, want ended server_shutdown", name, rec, err)
		}
	}
	var ended []string
	h.mu.Lock()
	for _, ev := range h.evs {
		if strings.HasPrefix(ev, "room.ended") {
			ended = append(ended, ev)
		}
	}
	h.mu.Unlock()
	wantEnded := []string{
		"room.ended live map[broadcastId:BC_0000000000000001 endReason:server_shutdown]",
		"room.ended wait map[broadcastId:BC_0000000000000002 endReason:server_shutdown]",
	}
	if strings.Join(ended, "\n") != strings.Join(wantEnded, "\n") {
		t.Errorf("room.ended webhooks:\n%s\nwant\n%s", strings.Join(ended, "\n"), strings.Join(wantEnded, "\n"))
	}
}

// A ban lasts until the room ends, restarts included: an identity banned
// from an idle room is still banned after a restart (the ban ahead, by
// the admin API's kick of someone absent), and the room's next broadcast
// ends it.
func TestBanSurvivesRestart(t *testing.T) {
	_, open := restartable(t)
	r := open(nil)
	if _, err := r.CreateRoom("show", "alice", "", nil, false); err != nil {
		t.Fatal(err)
	}
	if err := r.KickParticipant("show", "eve", true); err != nil {
		t.Fatal(err)
	}
	// A crash: the first server is never closed (closing ends its rooms);
	// a second one starts on the same store.
	crashed := r
	defer crashed.Close()
	r = open(nil)
	defer r.Close()
	if _, _, err := r.Join(JoinRequest{Identity: "eve", Room: "show"}, &events{}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("eve's join after a restart: %v, want forbidden (banned)", err)
	}
	r.SFU().Room("show").End(sfu.EndHostLeft)
	if _, _, err := r.Join(JoinRequest{Identity: "alice", Room: "show", Host: true, V11: true}, &events{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Join(JoinRequest{Identity: "eve", Room: "show"}, &events{}); err != nil {
		t.Fatalf("eve's join in the next broadcast: %v", err)
	}
	rec, err := r.store.GetRoom("show")
	if err != nil || len(rec.Bans) != 0 {
		t.Errorf("the next broadcast's record: %+v %v, want no bans", rec, err)
	}
}

// restartable opens a data directory's stores and returns the invitations
// store and a function that starts a Rooms on them, as a server's start
// does (webhooks to h; nil: none). Closing a Rooms ends its rooms: a test
// of a crash leaves the first one open.
func restartable(t *testing.T) (*invitations.BoltStore, func(h Emitter) *Rooms) {
	t.Helper()
	dir := t.TempDir()
	store, err := invitations.OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	chats, err := chat.OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(); _ = chats.Close() })
	return store, func(h Emitter) *Rooms {
		r, err := New(Config{
			Invitations: invitations.Config{Store: store}, Chat: chats, DataDir: dir, Webhooks: h,
			AuthorizeRelay: func(t relay.Target) (string, relay.Error) { return t.Identity, relay.ErrNone },
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}
