package rooms

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// noteSink records the TrackStream events a member is told.
type noteSink struct {
	mu    sync.Mutex
	notes []string
}

func (s *noteSink) Notify(ev Event) {
	if e, ok := ev.(TrackStream); ok {
		s.mu.Lock()
		s.notes = append(s.notes, fmt.Sprintf("%s %s %s", e.TrackID, e.State, e.Reason))
		s.mu.Unlock()
	}
}

func (s *noteSink) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.notes
	s.notes = nil
	return out
}

// streams tells each member given a track the transitions of the track's
// causes; one given it while a cause holds is told paused at once; a
// member's own cause concerns it alone; packets tell "active" to those
// waiting; forgotten members and tracks are told nothing.
func TestStreamsTell(t *testing.T) {
	s := newStreams()
	a, b := &noteSink{}, &noteSink{}
	ma, mb := &Member{v11: true}, &Member{v11: true}
	ma.Rebind(a)
	mb.Rebind(b)
	want := func(who string, sink *noteSink, notes ...string) {
		t.Helper()
		if got := sink.take(); !slices.Equal(got, notes) {
			t.Fatalf("%s told %q, want %q", who, got, notes)
		}
	}

	s.got(ma, "T1")
	want("a", a)
	if s.trackCause("T1", CauseRelayPaused, true) {
		t.Error("waiting while the cause holds")
	}
	want("a", a, "T1 paused relay_paused")
	s.got(mb, "T1")
	want("b", b, "T1 paused relay_paused")
	if s.trackCause("T1", CauseRelayPaused, true) {
		t.Error("a second begin reported waiting")
	}
	want("a", a)

	if !s.trackCause("T1", CauseRelayPaused, false) {
		t.Error("nobody waiting for media after the end")
	}
	want("a", a)
	s.dropped(mb, "T1") // b was told the track is gone
	s.packet("T1")
	want("a", a, "T1 active relay_paused")
	want("b", b)
	s.packet("T1")
	want("a", a)

	// A subscriber's own cause.
	s.got(mb, "T1")
	if s.subscriberCause(ma, "T1", CauseBandwidth, true) {
		t.Error("waiting while bandwidth holds")
	}
	want("a", a, "T1 paused bandwidth")
	want("b", b)
	if !s.subscriberCause(ma, "T1", CauseBandwidth, false) {
		t.Error("not waiting once bandwidth ended")
	}
	s.packet("T1")
	want("a", a, "T1 active bandwidth")
	if s.subscriberCause(ma, "T2", CauseBandwidth, true) {
		t.Error("a cause for a track the member was not given")
	}
	want("a", a)

	// Gone members and tracks.
	s.memberGone(ma)
	s.got(ma, "T1") // its mailbox may still deliver: not kept
	s.trackCause("T1", CauseRelayPaused, true)
	want("a", a)
	want("b", b, "T1 paused relay_paused")
	s.trackGone("T1")
	s.got(mb, "T1")
	want("b", b) // the cause went with the track
	if len(s.subs["T1"]) != 1 || len(s.held) != 0 {
		t.Errorf("kept %d subscribers and %d held causes", len(s.subs["T1"]), len(s.held))
	}
}
