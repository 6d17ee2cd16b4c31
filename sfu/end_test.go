package sfu

import (
	"sync"
	"testing"
	"time"
)

// The grace timer's End runs its hook while a shutdown ends the same room:
// the shutdown's End (SFU.Close) returns only after that hook has
// returned, so whatever the hook uses (stores, webhooks) is still open.
// Before, the second End returned at once, and the shutdown closed the
// webhook outbox under the running hook (a race, then a nil pointer).
func TestEndWaitsForARacingEnd(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var ended []RoomInfo
	s := New(Config{Observer: ObserverFunc(func(c RoomChange) {
		sc, ok := c.(RoomStatusChanged)
		if !ok || sc.Info.Status != StatusEnded {
			return
		}
		info := sc.Info
		once.Do(func() {
			close(entered)
			<-release
		})
		mu.Lock()
		ended = append(ended, info)
		mu.Unlock()
	})})
	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	go func() {
		defer close(first)
		r.End(EndHostTimeout) // what the grace timer does
	}()
	<-entered
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		s.Close()
	}()
	select {
	case <-closed:
		t.Fatal("SFU.Close returned while the room's End was still in its hook")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	for _, c := range []chan struct{}{first, closed} {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal("End did not return")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ended) != 1 || ended[0].EndReason != EndHostTimeout {
		t.Errorf("hook saw %+v, want one ended with host_timeout", ended)
	}
	if got := r.Info(false); got.Status != StatusEnded || got.EndReason != EndHostTimeout {
		t.Errorf("room %+v, want ended with host_timeout (the first End's reason)", got)
	}
}

// End's reason is in the room object while it is ended or recorded, and
// only then.
func TestEndReasonInInfo(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	r, _ := s.CreateRoom("r", "alice", "", "")
	if got := r.Info(false).EndReason; got != "" {
		t.Errorf("idle room has endReason %q", got)
	}
	r.End(EndStoppedByAdmin)
	if got := r.Info(false).EndReason; got != EndStoppedByAdmin {
		t.Errorf("ended room: endReason %q", got)
	}
	r.MarkRecorded()
	if got := r.Info(false); got.Status != StatusRecorded || got.EndReason != EndStoppedByAdmin {
		t.Errorf("recorded room %+v: the reason must stay", got)
	}
	r.End(EndServerShutdown) // a second End changes nothing
	if got := r.Info(false).EndReason; got != EndStoppedByAdmin {
		t.Errorf("after a second End: endReason %q", got)
	}
}

func TestRestoredEndReason(t *testing.T) {
	tests := []struct {
		status RoomStatus
		stored EndReason
		want   EndReason
	}{
		{StatusIdle, "", ""},
		{StatusLive, "", EndServerShutdown},             // found live at restart
		{StatusWaitingReconnect, "", EndServerShutdown}, // the host was away when it stopped
		{StatusEnded, EndHostLeft, EndHostLeft},
		{StatusRecorded, EndNodeLost, EndNodeLost},
		{StatusEnded, "", ""},      // ended before reasons were stored
		{StatusEnded, "bogus", ""}, // a damaged record
	}
	for _, tc := range tests {
		if got := restoredEndReason(RoomInfo{Status: tc.status, EndReason: tc.stored}); got != tc.want {
			t.Errorf("%s with %q: %q, want %q", tc.status, tc.stored, got, tc.want)
		}
	}
	s := New(Config{})
	defer s.Close()
	r := s.RestoreRoom(RoomInfo{Name: "r", Host: "alice", Status: StatusLive})
	if got := r.Info(false); got.Status != StatusEnded || got.EndReason != EndServerShutdown {
		t.Errorf("restored live room %+v, want ended with server_shutdown", got)
	}
}

func TestEndReasonValid(t *testing.T) {
	for _, e := range []EndReason{EndHostLeft, EndHostTimeout, EndStoppedByAdmin, EndServerShutdown, EndNodeLost} {
		if !e.Valid() {
			t.Errorf("%q not valid", e)
		}
	}
	for _, e := range []EndReason{"", "test", "Host_Left"} {
		if e.Valid() {
			t.Errorf("%q valid", e)
		}
	}
}
