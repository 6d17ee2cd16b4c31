package rooms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/internal/redistest"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/recorder"
	"github.com/relaysfu/relayd/sfu"
)

func TestDueForPurge(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	const keep = 30 * 24 * time.Hour
	ago := func(d time.Duration) *time.Time { at := now.Add(-d); return &at }
	room := func(name string, st sfu.RoomStatus, endedAt *time.Time) sfu.RoomInfo {
		return sfu.RoomInfo{Name: name, Status: st, CreatedAt: now.Add(-60 * 24 * time.Hour), EndedAt: endedAt}
	}
	for _, tc := range []struct {
		name string
		room sfu.RoomInfo
		keep time.Duration
		due  bool
	}{
		{"ended longer than keep", room("a", sfu.StatusEnded, ago(keep+time.Second)), keep, true},
		{"recorded longer than keep", room("a", sfu.StatusRecorded, ago(keep+time.Hour)), keep, true},
		{"ended exactly keep ago", room("a", sfu.StatusEnded, ago(keep)), keep, true},
		{"ended a second short of keep", room("a", sfu.StatusEnded, ago(keep-time.Second)), keep, false},
		{"ended, keep 0 keeps forever", room("a", sfu.StatusEnded, ago(1000*keep)), 0, false},
		{"ended, negative keep keeps forever", room("a", sfu.StatusEnded, ago(1000*keep)), -time.Hour, false},
		{"live is never due", room("a", sfu.StatusLive, ago(2*keep)), keep, false},
		{"idle is never due", room("a", sfu.StatusIdle, nil), keep, false},
		{"waiting_reconnect is never due", room("a", sfu.StatusWaitingReconnect, ago(2*keep)), keep, false},
		{"ended without an end time", room("a", sfu.StatusEnded, nil), keep, false},
		{"ended in the future (clock skew)", room("a", sfu.StatusEnded, ago(-time.Hour)), keep, false},
	} {
		got := dueForPurge([]sfu.RoomInfo{tc.room}, now, tc.keep)
		if (len(got) == 1) != tc.due {
			t.Errorf("%s: due %v, want %v", tc.name, len(got) == 1, tc.due)
		}
	}
	// Several at once: only the due ones, in order.
	list := []sfu.RoomInfo{
		room("old", sfu.StatusEnded, ago(2*keep)), room("live", sfu.StatusLive, nil),
		room("young", sfu.StatusEnded, ago(keep/2)), room("older", sfu.StatusRecorded, ago(3*keep)),
	}
	got := dueForPurge(list, now, keep)
	if len(got) != 2 || got[0].Name != "old" || got[1].Name != "older" {
		t.Errorf("dueForPurge(list) = %+v, want old and older", got)
	}
}

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

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Cluster mode: two nodes sweep at once over the shared Redis stores.
// Both purge a dead node's room (idempotent deletes: no error, all gone);
// a node holding an old ended room whose name a newer room (on the other
// node) has taken purges only the old room's data: the newer record,
// invitation and message stay.
func TestRetentionClusterRace(t *testing.T) {
	srv := redistest.Start(t)
	const keep = 30 * 24 * time.Hour
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	type node struct {
		rt  *retention
		dir string
	}
	var nodes []node
	for range 2 {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = c.Close() })
		dir := t.TempDir()
		nodes = append(nodes, node{&retention{
			keep: keep, sfu: sfu.New(sfu.Config{}), store: invitations.NewRedisStore(c, "relayd-test:"),
			chat: chat.NewRedisStore(c, "relayd-test:"), recDir: filepath.Join(dir, "recordings"), log: log,
		}, dir})
	}
	a, b := nodes[0], nodes[1]
	now := time.Now().UTC()
	// A dead node's room, ended long ago; its recording on b's disk.
	seedRoom(t, b.dir, b.rt.store, b.rt.chat, now, seeded{"dead", "ended", 2 * keep})
	// a holds "stale", ended; meanwhile a newer "stale" lives on b.
	old, err := a.rt.sfu.CreateRoom("stale", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.rt.store.PutRoom(invitations.RoomRecord{Name: "stale", Host: "alice", Status: "idle", CreatedAt: old.Info(false).CreatedAt}); err != nil {
		t.Fatal(err)
	}
	oldInv := invitations.Invitation{ID: "IV_stale_old", Room: "stale", Host: "alice", User: "bob", Status: invitations.StatusPending,
		CreatedAt: now.Add(-time.Minute), UpdatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if _, _, err := a.rt.store.Create(oldInv, func([]invitations.Invitation) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.rt.chat.Append(chat.Message{Room: "stale", Text: "old", At: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	old.End("test")
	endedAt := *old.Info(false).EndedAt
	newer := endedAt.Add(time.Second)
	if err := b.rt.store.PutRoom(invitations.RoomRecord{Name: "stale", Host: "carol", Status: "live", CreatedAt: newer}); err != nil {
		t.Fatal(err)
	}
	newInv := invitations.Invitation{ID: "IV_stale_new", Room: "stale", Host: "carol", User: "dave", Status: invitations.StatusAccepted,
		CreatedAt: newer.Add(time.Second), UpdatedAt: newer, ExpiresAt: newer.Add(time.Minute)}
	if _, _, err := b.rt.store.Create(newInv, func([]invitations.Invitation) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := b.rt.chat.Append(chat.Message{Room: "stale", Text: "new", At: newer.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}

	later := now.Add(2 * keep)
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { n.rt.sweep(context.Background(), later) })
	}
	wg.Wait()
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("errors while two nodes purged:\n%s", logs.String())
	}

	st := a.rt.store
	if _, err := st.GetRoom("dead"); !errors.Is(err, invitations.ErrNotFound) {
		t.Errorf("dead: record left: %v", err)
	}
	if list, _ := st.List(invitations.Filter{Room: "dead"}); len(list) != 0 {
		t.Errorf("dead: invitations left: %v", list)
	}
	if msgs, _ := a.rt.chat.History("dead", "", "", 10); len(msgs) != 0 {
		t.Errorf("dead: messages left: %v", msgs)
	}
	if _, err := os.Stat(recorder.RoomDir(filepath.Join(b.dir, "recordings"), "dead")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead: recordings left on the node's disk: %v", err)
	}

	if a.rt.sfu.Room("stale") != nil {
		t.Error("stale: the old ended room is still in its node's registry")
	}
	if rec, err := st.GetRoom("stale"); err != nil || rec.Host != "carol" {
		t.Errorf("stale: the newer room's record: %+v, %v", rec, err)
	}
	if list, _ := st.List(invitations.Filter{Room: "stale"}); len(list) != 1 || list[0].ID != newInv.ID {
		t.Errorf("stale: invitations %+v, want the newer room's alone", list)
	}
	if msgs, _ := a.rt.chat.History("stale", "", "", 10); len(msgs) != 1 || msgs[0].Text != "new" {
		t.Errorf("stale: messages %+v, want the newer room's alone", msgs)
	}
}

// A room another node purged first (its record gone before this node saw
// it due) still has its recordings deleted from this node's disk, once they
// are older than the retention; a newer recording of a room with no record
// stays until then.
func TestRetentionOrphanRecordings(t *testing.T) {
	const keep = 30 * 24 * time.Hour
	dir := t.TempDir()
	store, err := invitations.OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	chats, err := chat.OpenBolt(filepath.Join(dir, "chat"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chats.Close() })
	rt := &retention{keep: keep, sfu: sfu.New(sfu.Config{}), store: store, chat: chats,
		recDir: filepath.Join(dir, "recordings"), log: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))}
	now := time.Now().UTC()
	seedRoom(t, dir, store, chats, now, seeded{"gone", "ended", 2 * keep})
	seedRoom(t, dir, store, chats, now, seeded{"kept", "ended", 2 * keep})
	for _, name := range []string{"gone", "kept"} {
		rec, err := store.GetRoom(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.DeleteRoom(name, rec.CreatedAt); err != nil { // the other node's purge
			t.Fatal(err)
		}
	}
	old := now.Add(-2 * keep) // gone's files were last written when it ended; kept's just now
	for _, ent := range mustReadDir(t, recorder.RoomDir(rt.recDir, "gone")) {
		if err := os.Chtimes(filepath.Join(recorder.RoomDir(rt.recDir, "gone"), ent.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}

	rt.sweep(context.Background(), now)
	if _, err := os.Stat(recorder.RoomDir(rt.recDir, "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gone: recordings left on disk after its record was purged: %v", err)
	}
	if n := len(mustReadDir(t, recorder.RoomDir(rt.recDir, "kept"))); n != 2 {
		t.Errorf("kept: %d files left, want both (younger than the retention)", n)
	}
}

func mustReadDir(t *testing.T, d string) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	return ents
}
