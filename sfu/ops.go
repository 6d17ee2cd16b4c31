package sfu

import "sync"

// opQueue runs one participant's PeerConnection work (its ops) one at a
// time, in the order they were queued, on one goroutine it owns (LiveKit's
// ops queue, Galene's per-client action loop). The fields an op uses need
// no lock as long as only ops touch them, and no lock is held while an op
// runs: an op may take seconds (ICE gathering is bounded by gatherTimeout)
// without blocking anyone but the participant's own later ops.
//
// An op is a plain func, usually a Participant method: post queues it and
// returns; do queues it and waits for its error. A new kind of work (an ICE
// restart, a layer change) is one more method run with do or post.
//
// Rules that keep it from deadlocking: an op never waits for another op of
// its own queue (do from inside an op would wait for itself); it never
// waits for anything that may wait for an op of its queue (ClosePublisher
// waits for its track readers outside the op, since they call the
// observer, which may call back into the participant).
//
// Goroutines: run, started by post (or stop) when ops wait and none is
// running, and ending as soon as the queue is empty, so an idle
// participant (every viewer, between its offers) has none; at 200 viewers
// a goroutine per participant parked on a wake-up channel was about 6 KiB
// of stack each (BENCHMARKS.md, "Architecture change"). At most one run goroutine
// exists at a time, so ops still run one at a time, in order.
type opQueue struct {
	mu      sync.Mutex
	ops     []func()      // guarded by mu: queued, not started
	stopped bool          // guarded by mu: no op is queued any more
	running bool          // guarded by mu: a run goroutine is running the ops
	done    chan struct{} // closed when stop's last op has run
}

func newOpQueue() *opQueue {
	return &opQueue{done: make(chan struct{})}
}

// post queues op and returns at once. It reports false, and op will never
// run, when the queue has been stopped.
func (q *opQueue) post(op func()) bool {
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return false
	}
	q.ops = append(q.ops, op)
	q.startLocked()
	q.mu.Unlock()
	return true
}

// startLocked starts a run goroutine unless one is running. q.mu is held.
func (q *opQueue) startLocked() {
	if !q.running {
		q.running = true
		go q.run()
	}
}

// do runs op on the queue and returns its error once it has run. If the
// queue stops first, do returns ErrClosed when op was dropped before it
// started; an op already running is always waited for, so nothing it
// calls back (HandleOffer's deliver) runs after do has returned. It must
// not be called from an op of the same queue.
func (q *opQueue) do(op func() error) error {
	res := make(chan error, 1)
	if !q.post(func() { res <- op() }) {
		return ErrClosed
	}
	select {
	case err := <-res:
		return err
	case <-q.done:
		select {
		case err := <-res: // it ran just before the end
			return err
		default:
			return ErrClosed
		}
	}
}

// stop drops the queued ops, runs last after the op in progress (if any),
// and returns when the goroutine has ended. Later calls only wait for that.
func (q *opQueue) stop(last func()) {
	q.mu.Lock()
	if !q.stopped {
		q.stopped = true
		clear(q.ops)
		q.ops = append(q.ops[:0], last)
		q.startLocked()
	}
	q.mu.Unlock()
	<-q.done
}

// run runs the ops until the queue is empty. The run that empties a
// stopped queue has run its last op: it closes done.
func (q *opQueue) run() {
	q.mu.Lock()
	for len(q.ops) > 0 {
		op := q.ops[0]
		q.ops[0] = nil
		q.ops = q.ops[1:]
		q.mu.Unlock()
		op()
		q.mu.Lock()
	}
	q.ops = nil // let a burst's array go
	q.running = false
	if q.stopped {
		close(q.done)
	}
	q.mu.Unlock()
}
