package sfu

import "sync"

// mailbox is a participant's events on their way to its EventSink: an
// unbounded FIFO that post appends to (cheap, never blocks, never drops, so
// the room posts under its lock: every participant gets the room's changes
// in the order the room made them), and a delivery goroutine that calls
// Notify with no lock held, one event at a time, in order.
//
// Goroutines: drain, started by post when events wait and none is running;
// it returns as soon as the queue is empty (an idle participant has none).
// flush waits for it to deliver what was posted before.
type mailbox struct {
	sink EventSink

	mu        sync.Mutex
	queue     []Event   // guarded by mu: posted, not yet delivered
	posted    uint64    // guarded by mu: events ever posted
	delivered uint64    // guarded by mu: events whose Notify has returned
	running   bool      // guarded by mu: drain is delivering
	moved     sync.Cond // on mu: delivered grew
}

func newMailbox(sink EventSink) *mailbox {
	if sink == nil {
		sink = discard{}
	}
	m := &mailbox{sink: sink}
	m.moved.L = &m.mu
	return m
}

// post queues ev for the sink. Any goroutine may call it, holding any lock.
func (m *mailbox) post(ev Event) {
	m.mu.Lock()
	m.queue = append(m.queue, ev)
	m.posted++
	if !m.running {
		m.running = true
		go m.drain()
	}
	m.mu.Unlock()
}

// drain delivers the queue in order until it is empty.
func (m *mailbox) drain() {
	m.mu.Lock()
	for len(m.queue) > 0 {
		ev := m.queue[0]
		m.queue[0] = nil
		m.queue = m.queue[1:]
		m.mu.Unlock()
		m.sink.Notify(ev)
		m.mu.Lock()
		m.delivered++
		m.moved.Broadcast()
	}
	m.queue = nil // let a burst's array go
	m.running = false
	m.mu.Unlock()
}

// flush returns once every event posted before the call has been delivered
// (its Notify returned). Call it with no lock held, and never from the
// sink's own Notify (it would wait for itself).
func (m *mailbox) flush() {
	m.mu.Lock()
	for target := m.posted; m.delivered < target; {
		m.moved.Wait()
	}
	m.mu.Unlock()
}

// discard is the sink of a participant created without one.
type discard struct{}

func (discard) Notify(Event) {}
