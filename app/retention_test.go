package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/recorder"
	roomspkg "github.com/relaysfu/relayd/rooms"
	"github.com/relaysfu/relayd/sfu"
	"github.com/relaysfu/relayd/signaling"
)

// seeded is one room written into a data dir before the server starts:
// its record, an invitation, a chat message and a recording, all from
// before its end.
type seeded struct {
	name   string
	status string
	ended  time.Duration // how long ago it ended; 0: not ended
}

func seedRoom(t *testing.T, dir string, store invitations.Store, chats chat.Store, now time.Time, r seeded) {
	t.Helper()
	created := now.Add(-r.ended - 24*time.Hour)
	rec := invitations.RoomRecord{Name: r.name, Host: "alice", Status: r.status, CreatedAt: created}
	if r.ended > 0 {
		ended := now.Add(-r.ended)
		rec.EndedAt = &ended
	}
	if err := store.PutRoom(rec); err != nil {
		t.Fatal(err)
	}
	at := created.Add(time.Hour)
	inv := invitations.Invitation{
		ID: "IV_" + r.name, Room: r.name, Host: "alice", User: "bob", Status: invitations.StatusRemoved,
		CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(10 * time.Minute),
	}
	if _, _, err := store.Create(inv, func([]invitations.Invitation) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := chats.Append(chat.Message{Room: r.name, Text: "hello", At: at}); err != nil {
		t.Fatal(err)
	}
	rd := recorder.RoomDir(filepath.Join(dir, "recordings"), r.name)
	if err := os.MkdirAll(rd, 0o700); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("alice-%d.webm", at.UnixMilli())
	for file, body := range map[string]string{
		name:           "webm",
		name + ".json": `{"name":"` + name + `","participant":"alice","startedAt":"` + at.Format(time.RFC3339) + `"}`,
	} {
		if err := os.WriteFile(filepath.Join(rd, file), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Rooms ended longer ago than --room-retention are purged by the sweep at
// start: gone from the API, the stores and the disk, and the name is free
// again. Younger ended rooms, idle rooms and a room that was live at the
// restart stay; a live room is never purged, however far the clock runs.
func TestRoomRetention(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const keep = 30 * 24 * time.Hour
	dir := t.TempDir()
	now := time.Now().UTC()
	rooms := []seeded{
		{"old", "recorded", keep + time.Hour},
		{"oldended", "ended", 2 * keep},
		{"young", "ended", keep - time.Hour},
		{"idle", "idle", 0},
		{"waslive", "live", 0}, // ended by the restart: its retention starts now
	}
	{
		store, err := invitations.OpenBolt(dir)
		if err != nil {
			t.Fatal(err)
		}
		chats, err := chat.OpenBolt(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rooms {
			seedRoom(t, dir, store, chats, now, r)
		}
		_ = store.Close()
		_ = chats.Close()
	}

	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	a, err := New(Options{
		Secret: []byte(secret), UDPConn: udp, LoopbackOnly: true, DataDir: dir,
		MaxCohosts: 8, MaxRelayDestinations: 4, ReconnectGrace: 30 * time.Second, InvitationTTL: time.Minute,
		RoomRetention: keep,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a.Handler)
	closed := false
	closeAll := func() {
		if !closed {
			closed = true
			a.Close(5 * time.Second)
			hs.Close()
		}
	}
	defer closeAll()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, _ := a.Tokens.Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})

	// The sweep at start runs in the background: wait for it. A room's
	// record is deleted last.
	for _, gone := range []string{"old", "oldended"} {
		for {
			_, err := a.store.GetRoom(gone)
			if errors.Is(err, invitations.ErrNotFound) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("room %s ended %v ago still stored (%v): not purged", gone, keep, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	gone := func(name string) {
		t.Helper()
		if a.SFU.Room(name) != nil {
			t.Errorf("%s: still in the sfu", name)
		}
		if _, err := a.store.GetRoom(name); !errors.Is(err, invitations.ErrNotFound) {
			t.Errorf("%s: record still stored: %v", name, err)
		}
		if list, err := a.store.List(invitations.Filter{Room: name}); err != nil || len(list) != 0 {
			t.Errorf("%s: invitations left: %v, %v", name, list, err)
		}
		if msgs, err := a.chats.History(name, "", "", 10); err != nil || len(msgs) != 0 {
			t.Errorf("%s: messages left: %v, %v", name, msgs, err)
		}
		if _, err := os.Stat(recorder.RoomDir(filepath.Join(dir, "recordings"), name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: recordings directory left: %v", name, err)
		}
		for _, path := range []string{"/recordings", "/invitations"} {
			if code, _ := get(t, hs.URL+"/v1/rooms/"+name+path, admin); code != 404 {
				t.Errorf("%s%s: %d, want 404", name, path, code)
			}
		}
	}
	kept := func(name, status string) {
		t.Helper()
		r := a.SFU.Room(name)
		if r == nil || string(r.Status()) != status {
			t.Fatalf("%s: %v, want kept with status %s", name, r, status)
		}
		if _, err := a.store.GetRoom(name); err != nil {
			t.Errorf("%s: record gone: %v", name, err)
		}
		if list, err := a.store.List(invitations.Filter{Room: name}); err != nil || len(list) != 1 {
			t.Errorf("%s: invitations %v, %v; want its one", name, list, err)
		}
		if msgs, err := a.chats.History(name, "", "", 10); err != nil || len(msgs) != 1 {
			t.Errorf("%s: messages %v, %v; want its one", name, msgs, err)
		}
		code, body := get(t, hs.URL+"/v1/rooms/"+name+"/recordings", admin)
		var list struct{ Recordings []roomspkg.RecordingInfo }
		if code != 200 || json.Unmarshal(body, &list) != nil || len(list.Recordings) != 1 {
			t.Errorf("%s: recordings %d %s; want its one", name, code, body)
		}
	}
	gone("old")
	gone("oldended")
	kept("young", "ended")
	kept("idle", "idle")
	kept("waslive", "ended")

	// The name is free: a host token creates the room again (before the
	// purge it would have been 4009, an ended room), with a new host.
	tok := func(id, room string) string {
		s, _ := a.Tokens.Issue(signaling.TokenSpec{Identity: id, Room: room, Role: "host", TTL: time.Hour})
		return s
	}
	zoe, err := client.Dial(ctx, hs.URL, tok("zoe", "old"), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer zoe.Close()
	res, err := zoe.Join(ctx)
	if err != nil {
		t.Fatalf("host join of a purged room's name: %v", err)
	}
	if res.Room.Status != "idle" || res.Room.Host != "zoe" {
		t.Fatalf("recreated room: %+v", res.Room)
	}
	if code, _ := get(t, hs.URL+"/v1/rooms/old", admin); code != 200 {
		t.Fatalf("recreated room: GET %d", code)
	}

	// A live room: never purged, whatever the clock says.
	alice, err := client.Dial(ctx, hs.URL, tok("alice", "show"), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if _, err := alice.Join(ctx); err != nil {
		t.Fatal(err)
	}
	pub, err := client.NewSyntheticPublisher(client.PublisherOptions{KeyframeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	if err := alice.Publish(ctx, pub.Tracks()...); err != nil {
		t.Fatal(err)
	}
	pub.Start()
	for a.SFU.Room("show").Status() != sfu.StatusLive {
		if ctx.Err() != nil {
			t.Fatalf("room show never went live: %s", a.SFU.Room("show").Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A sweep a thousand days on: every ended room goes, nothing else.
	if n := a.Rooms.Purge(ctx, time.Now().Add(1000*24*time.Hour)); n != 2 {
		t.Errorf("the late sweep purged %d rooms, want 2 (young and waslive)", n)
	}
	gone("young")
	gone("waslive")
	if r := a.SFU.Room("show"); r == nil || r.Status() != sfu.StatusLive {
		t.Fatalf("the live room was purged: %v", r)
	}
	if r := a.SFU.Room("idle"); r == nil || r.Status() != sfu.StatusIdle {
		t.Fatalf("the idle room was purged: %v", r)
	}
	if a.SFU.Room("old") == nil {
		t.Fatal("the recreated room was purged")
	}
	pub.Stop()
	closeAll()

	// On disk too: the stores opened anew hold nothing of the purged rooms.
	store, err := invitations.OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, name := range []string{"oldended", "young", "waslive"} {
		if _, err := store.GetRoom(name); !errors.Is(err, invitations.ErrNotFound) {
			t.Errorf("%s: record in the reopened store: %v", name, err)
		}
	}
	if _, err := store.Get("IV_old"); !errors.Is(err, invitations.ErrNotFound) {
		t.Errorf("the purged room's invitation is in the reopened store: %v", err)
	}
	if list, _ := store.List(invitations.Filter{Room: "idle"}); len(list) != 1 {
		t.Errorf("the idle room's invitation is gone from the reopened store")
	}
}

// Options.RoomCreateRate reaches signaling: one room a minute for one
// host, not for another.
func TestRoomCreateRateOption(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	a, err := New(Options{
		Secret: []byte(secret), UDPConn: udp, LoopbackOnly: true, DataDir: t.TempDir(),
		MaxRelayDestinations: 4, ReconnectGrace: 30 * time.Second, InvitationTTL: time.Minute,
		RoomCreateRate: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a.Handler)
	defer func() {
		a.Close(5 * time.Second)
		hs.Close()
	}()
	admin, _ := a.Tokens.Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})
	post := func(name, host string) int {
		req, _ := http.NewRequest("POST", hs.URL+"/v1/rooms", strings.NewReader(`{"name":"`+name+`","host":"`+host+`"}`))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, host string
		want       int
	}{{"r1", "mallory", 201}, {"r2", "mallory", 429}, {"r3", "alice", 201}} {
		if got := post(tc.name, tc.host); got != tc.want {
			t.Errorf("POST %s by %s: %d, want %d", tc.name, tc.host, got, tc.want)
		}
	}
}
