package signaling

import "sync"

// outQueue bounds the frames waiting for a slow client. A join into a busy
// room sends one notification per participant; 1024 is far beyond what a
// live client lags by. A client that falls this far behind is closed
// rather than buffered without end: nothing is ever dropped from the
// outbox short of that.
const outQueue = 1024

// out is one frame to send, or the close that ends the connection.
type out struct {
	data   []byte
	close  bool
	code   int
	reason string
}

// outbox is a session's outgoing frames, in the order they were queued,
// waiting for its connection's writer. It is a slice that grows only
// while a burst waits (a buffered channel of outQueue slots would cost
// 8 KB per idle session), and a wake-up for the writer. Safe for
// concurrent use: rooms' events, the reader's answers and the server's
// broadcasts all queue here.
type outbox struct {
	wake chan struct{} // capacity 1: there is something to take

	mu     sync.Mutex
	q      []*out // guarded by mu
	spare  []*out // guarded by mu: the writer's last batch, for reuse
	closed bool   // guarded by mu: the session has ended
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

// push queues m for the writer; false when outQueue frames are already
// waiting. Once closed it takes nothing (the session has ended, nothing
// will be sent, and that is no fault).
func (o *outbox) push(m *out) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return true
	}
	if len(o.q) >= outQueue {
		o.mu.Unlock()
		return false
	}
	o.q = append(o.q, m)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default: // the writer is already woken
	}
	return true
}

// take hands the writer everything queued so far, in order.
func (o *outbox) take() []*out {
	o.mu.Lock()
	defer o.mu.Unlock()
	batch := o.q
	o.q, o.spare = o.spare[:0], nil
	return batch
}

// recycle keeps a written batch's array for the next one, unless a burst
// made it big: an idle session holds no more than a few slots.
func (o *outbox) recycle(batch []*out) {
	if cap(batch) > 16 {
		return
	}
	clear(batch)
	o.mu.Lock()
	if o.spare == nil {
		o.spare = batch[:0]
	}
	o.mu.Unlock()
}

// close refuses what comes next and drops what waits.
func (o *outbox) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.q, o.spare = nil, nil
}
