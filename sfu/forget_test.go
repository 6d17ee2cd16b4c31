package sfu

import (
	"errors"
	"testing"
)

// Forget removes only an ended room that is still the room of its name;
// afterwards the name is free.
func TestForget(t *testing.T) {
	s := New(Config{})
	live, err := s.CreateRoom("live", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Forget(live) || s.Room("live") != live {
		t.Fatal("a room that has not ended was forgotten")
	}

	old, err := s.CreateRoom("show", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	old.End("test")
	// A new room replaces the ended one under its name: forgetting the
	// old one must not take the new one out.
	repl, err := s.CreateRoom("show", "bob", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Forget(old) || s.Room("show") != repl {
		t.Fatal("forgetting a replaced room removed its successor")
	}
	repl.End("test")
	if !s.Forget(repl) {
		t.Fatal("an ended room was not forgotten")
	}
	if s.Room("show") != nil {
		t.Fatal("a forgotten room is still found")
	}
	if s.Forget(repl) {
		t.Fatal("a room was forgotten twice")
	}
	for _, r := range s.Rooms() {
		if r.Name() == "show" {
			t.Fatal("a forgotten room is still listed")
		}
	}
	// The name is free: a new room of that name is created, not refused.
	again, err := s.CreateRoom("show", "carol", "", "")
	if err != nil || again == repl || again.Host() != "carol" {
		t.Fatalf("CreateRoom after Forget: %v, %v", again, err)
	}
	if _, err := s.CreateRoom("show", "dave", "", ""); !errors.Is(err, ErrRoomExists) {
		t.Fatalf("the new room is not registered: %v", err)
	}
}
