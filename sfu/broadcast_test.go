package sfu

import (
	"regexp"
	"sync"
	"testing"
	"time"
)

// roomLog is an EventSink that keeps what it is told.
type roomLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *roomLog) Notify(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
}

// rooms returns the RoomUpdated told, once there are n of them (events
// are delivered by the participant's mailbox, in their order).
func (l *roomLog) rooms(t *testing.T, n int) []RoomInfo {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := l.roomsNow()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

func (l *roomLog) roomsNow() []RoomInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []RoomInfo
	for _, ev := range l.evs {
		if ru, ok := ev.(RoomUpdated); ok {
			out = append(out, ru.Room)
		}
	}
	return out
}

var broadcastIDForm = regexp.MustCompile(`^BC_[0-9a-f]{16}$`)

// The next broadcast replaces only an ended room still registered: a new
// Room, idle, with a new id and the room's createdAt; a room not ended, or
// already replaced, stays.
func TestNextBroadcast(t *testing.T) {
	s := New(Config{})
	old, err := s.CreateRoom("show", "alice", "Show", `{"a":1}`)
	if err != nil {
		t.Fatal(err)
	}
	first := old.Info(false)
	if !broadcastIDForm.MatchString(first.BroadcastID) || !first.BroadcastCreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("a new room's broadcast: %q at %v (created %v)", first.BroadcastID, first.BroadcastCreatedAt, first.CreatedAt)
	}
	if cur, err := s.NextBroadcast(old, "alice", "", ""); err != ErrRoomExists || cur != old {
		t.Fatalf("next broadcast of a room not ended: %v %v", cur, err)
	}
	old.End(EndHostLeft)
	time.Sleep(2 * time.Millisecond) // the broadcast's time differs from the room's
	next, err := s.NextBroadcast(old, "bob", "Again", "")
	if err != nil {
		t.Fatal(err)
	}
	info := next.Info(false)
	switch {
	case next == old || s.Room("show") != next:
		t.Fatal("the next broadcast is not the registered room")
	case info.Status != StatusIdle || info.StartedAt != nil || info.EndedAt != nil || info.EndReason != "":
		t.Errorf("next broadcast: %+v, want idle with no start, end or reason", info)
	case info.BroadcastID == first.BroadcastID || !broadcastIDForm.MatchString(info.BroadcastID):
		t.Errorf("broadcast id %q after %q", info.BroadcastID, first.BroadcastID)
	case !info.CreatedAt.Equal(first.CreatedAt) || !info.BroadcastCreatedAt.After(first.CreatedAt):
		t.Errorf("createdAt %v (want %v kept), broadcast at %v", info.CreatedAt, first.CreatedAt, info.BroadcastCreatedAt)
	case info.Host != "bob" || info.Title != "Again":
		t.Errorf("host %q title %q", info.Host, info.Title)
	}
	if cur, err := s.NextBroadcast(old, "alice", "", ""); err != ErrRoomExists || cur != next {
		t.Fatalf("a second next broadcast of the same old room: %v %v", cur, err)
	}
	if old.Info(false).BroadcastID != first.BroadcastID {
		t.Error("the old broadcast's id changed")
	}
	s.Close()
	if _, err := s.NextBroadcast(next, "alice", "", ""); err != ErrClosed {
		t.Errorf("after Close: %v", err)
	}
}

// A restored room keeps its stored broadcast; a record from before
// broadcasts gets one.
func TestRestoredBroadcast(t *testing.T) {
	s := New(Config{})
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := s.RestoreRoom(RoomInfo{Name: "a", Host: "h", Status: StatusEnded, CreatedAt: at.Add(-time.Hour), BroadcastID: "BC_0123456789abcdef", BroadcastCreatedAt: at})
	if info := r.Info(false); info.BroadcastID != "BC_0123456789abcdef" || !info.BroadcastCreatedAt.Equal(at) {
		t.Errorf("restored: %q %v", info.BroadcastID, info.BroadcastCreatedAt)
	}
	r = s.RestoreRoom(RoomInfo{Name: "b", Host: "h", Status: StatusIdle, CreatedAt: at})
	if info := r.Info(false); !broadcastIDForm.MatchString(info.BroadcastID) || !info.BroadcastCreatedAt.Equal(at) {
		t.Errorf("restored from an old record: %q %v", info.BroadcastID, info.BroadcastCreatedAt)
	}
}

// SetRecording tells every participant room.updated with recording, only
// on a change; an ended room never records.
func TestSetRecording(t *testing.T) {
	s := New(Config{})
	r, _ := s.CreateRoom("show", "alice", "", "")
	var l roomLog
	if _, _, err := r.Join(ParticipantParams{Identity: "bob", Role: RoleViewer, Events: &l}); err != nil {
		t.Fatal(err)
	}
	if !r.SetRecording(true) || r.SetRecording(true) {
		t.Fatal("SetRecording(true) twice: want a change, then none")
	}
	if got := l.rooms(t, 1); len(got) != 1 || !got[0].Recording {
		t.Fatalf("room.updated after recording on: %+v", got)
	}
	if !r.Info(false).Recording {
		t.Error("Info: not recording")
	}
	r.End(EndHostLeft)
	if r.Info(false).Recording || r.SetRecording(false) || r.SetRecording(true) {
		t.Error("an ended room records, or changed")
	}
	if got := l.rooms(t, 2); len(got) != 2 || got[1].Recording || got[1].Status != StatusEnded {
		t.Fatalf("room.updated at the end: %+v", got)
	}
}
