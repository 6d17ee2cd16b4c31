package chat

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/internal/redistest"
)

// stores returns, per Store implementation, an opener of one fresh place
// (a bolt directory, a Redis key prefix): every call opens a new Store
// over the same data, like a restart. Redis skips where redis-server is
// not installed.
func stores(t *testing.T) map[string]func() (Store, error) {
	t.Helper()
	dir := t.TempDir()
	out := map[string]func() (Store, error){
		"bolt": func() (Store, error) { return OpenBolt(dir) },
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return out
	}
	client := redis.NewClient(&redis.Options{Addr: redistest.Start(t).Addr})
	t.Cleanup(func() { _ = client.Close() })
	out["redis"] = func() (Store, error) { return NewRedisStore(client, "relayd-test:"), nil }
	return out
}

func TestStoreHistoryDeleteTrim(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) { testHistoryDeleteTrim(t, open) })
	}
}

func testHistoryDeleteTrim(t *testing.T, open func() (Store, error)) {
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < Keep+20; i++ {
		m, err := s.Append(Message{Room: "r", Text: fmt.Sprint(i), At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if want := idOf(uint64(i + 1)); m.ID != want {
			t.Fatalf("message %d: id %s, want %s", i, m.ID, want)
		}
		ids = append(ids, m.ID)
	}
	if _, err := s.Append(Message{Room: "other", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	last, _ := s.History("r", "", "", 3)
	if len(last) != 3 || last[0].Text != fmt.Sprint(Keep+17) || last[2].Text != fmt.Sprint(Keep+19) {
		t.Fatalf("newest page %+v", last)
	}
	if last[2].ID != ids[Keep+19] || last[2].Room != "r" {
		t.Fatalf("newest message %+v, want id %s in room r", last[2], ids[Keep+19])
	}
	page, _ := s.History("r", "", last[0].ID, 2)
	if len(page) != 2 || page[1].Text != fmt.Sprint(Keep+16) {
		t.Fatalf("page before %s: %+v", last[0].ID, page)
	}
	all, _ := s.History("r", "", "", 10000)
	if len(all) != Keep || all[0].Text != "20" {
		t.Fatalf("kept %d, oldest %q", len(all), all[0].Text)
	}
	// Before an id past the newest: the newest ones.
	if page, _ := s.History("r", "", idOf(1<<40), 1); len(page) != 1 || page[0].ID != ids[Keep+19] {
		t.Fatalf("page before a future id: %+v", page)
	}
	if page, _ := s.History("r", "", "garbage", 5); page == nil || len(page) != 0 {
		t.Fatalf("page before garbage: %#v", page)
	}
	if err := s.Delete("r", "", ids[Keep+18]); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("r", "", ids[Keep+18]); err != ErrNotFound {
		t.Fatalf("delete twice: %v", err)
	}
	if err := s.Delete("r", "", "garbage"); err != ErrNotFound {
		t.Fatalf("delete garbage: %v", err)
	}
	if err := s.Delete("r", "", ids[0]); err != ErrNotFound {
		t.Fatalf("delete trimmed: %v", err)
	}
	if err := s.Delete("other", "", ids[Keep+17]); err != ErrNotFound {
		t.Fatalf("delete in the wrong room: %v", err)
	}
	last, _ = s.History("r", "", "", 2)
	if last[0].Text != fmt.Sprint(Keep+17) {
		t.Fatalf("deleted message still in history: %+v", last)
	}
	// Reopen: durable.
	_ = s.Close()
	s, err = open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	last, _ = s.History("r", "", "", 1)
	if len(last) != 1 || last[0].Text != fmt.Sprint(Keep+19) {
		t.Fatalf("after reopen: %+v", last)
	}
	// The sequence goes on after a reopen: ids are never reused.
	if m, err := s.Append(Message{Room: "r", Text: "again"}); err != nil || m.ID != idOf(Keep+21) {
		t.Fatalf("append after reopen: %+v, %v", m, err)
	}
	if empty, _ := s.History("nowhere", "", "", 5); empty == nil || len(empty) != 0 {
		t.Fatalf("unknown room: %#v", empty)
	}
}
