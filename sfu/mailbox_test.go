package sfu

import (
	"sync"
	"testing"
	"time"
)

// eventLog is an EventSink that records events; slow, when set, is held
// at each Notify until it is closed.
type eventLog struct {
	slow chan struct{}
	mu   sync.Mutex
	evs  []Event
}

func (l *eventLog) Notify(ev Event) {
	if l.slow != nil {
		<-l.slow
	}
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.evs...)
}

// Events reach the sink in the order posted, never blocking the poster
// even while the sink is slow; flush waits until what was posted before it
// has been delivered.
func TestMailboxOrderAndFlush(t *testing.T) {
	log := &eventLog{slow: make(chan struct{})}
	m := newMailbox(log)
	for i := range 1000 {
		m.post(SessionEnded{Code: i}) // the sink is stuck: posting still returns
	}
	flushed := make(chan struct{})
	go func() {
		m.flush()
		close(flushed)
	}()
	select {
	case <-flushed:
		t.Fatal("flush returned before the events were delivered")
	case <-time.After(20 * time.Millisecond):
	}
	close(log.slow)
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("flush did not return")
	}
	evs := log.events()
	if len(evs) != 1000 {
		t.Fatalf("%d events delivered, want 1000", len(evs))
	}
	for i, ev := range evs {
		if ev.(SessionEnded).Code != i {
			t.Fatalf("event %d delivered at position %d", ev.(SessionEnded).Code, i)
		}
	}
	m.flush() // nothing waiting: returns at once
}

// selfPoster posts one more event from inside Notify: no lock is held
// during Notify, and the event is delivered after the current one.
type selfPoster struct {
	m *mailbox
	eventLog
}

func (s *selfPoster) Notify(ev Event) {
	s.eventLog.Notify(ev)
	if e := ev.(SessionEnded); e.Code < 3 {
		s.m.post(SessionEnded{Code: e.Code + 1})
	}
}

func TestMailboxPostFromNotify(t *testing.T) {
	s := &selfPoster{}
	s.m = newMailbox(s)
	s.m.post(SessionEnded{Code: 0})
	waitFor(t, "4 events", func() bool { return len(s.events()) == 4 })
	for i, ev := range s.events() {
		if ev.(SessionEnded).Code != i {
			t.Errorf("position %d: %v", i, ev)
		}
	}
}
