package chat

import (
	"fmt"
	"testing"
	"time"
)

func TestStoreHistoryDeleteTrim(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < Keep+20; i++ {
		m, err := s.Append(Message{Room: "r", Text: fmt.Sprint(i), At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	if _, err := s.Append(Message{Room: "other", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	last, _ := s.History("r", "", 3)
	if len(last) != 3 || last[0].Text != fmt.Sprint(Keep+17) || last[2].Text != fmt.Sprint(Keep+19) {
		t.Fatalf("newest page %+v", last)
	}
	page, _ := s.History("r", last[0].ID, 2)
	if len(page) != 2 || page[1].Text != fmt.Sprint(Keep+16) {
		t.Fatalf("page before %s: %+v", last[0].ID, page)
	}
	all, _ := s.History("r", "", 10000)
	if len(all) != Keep || all[0].Text != "20" {
		t.Fatalf("kept %d, oldest %q", len(all), all[0].Text)
	}
	if err := s.Delete("r", ids[Keep+18]); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("r", ids[Keep+18]); err != ErrNotFound {
		t.Fatalf("delete twice: %v", err)
	}
	if err := s.Delete("r", "garbage"); err != ErrNotFound {
		t.Fatalf("delete garbage: %v", err)
	}
	last, _ = s.History("r", "", 2)
	if last[0].Text != fmt.Sprint(Keep+17) {
		t.Fatalf("deleted message still in history: %+v", last)
	}
	// Reopen: durable.
	_ = s.Close()
	s, err = OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	last, _ = s.History("r", "", 1)
	if len(last) != 1 || last[0].Text != fmt.Sprint(Keep+19) {
		t.Fatalf("after reopen: %+v", last)
	}
	if empty, _ := s.History("nowhere", "", 5); empty == nil || len(empty) != 0 {
		t.Fatalf("unknown room: %#v", empty)
	}
}
