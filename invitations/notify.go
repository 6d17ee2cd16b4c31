package invitations

import "sync"

// notifier calls OnChange for committed transitions, outside any lock,
// in commit order for each invitation.
//
// Transitions are pushed in commit order (the Manager pushes while it
// still holds its commit lock). Delivery then runs on the committing
// goroutines themselves, with no goroutine of its own: the first
// goroutine to find an invitation's queue idle becomes its deliverer and
// drains it; one that finds it busy leaves its transition to that
// deliverer. So two transitions of one invitation are never announced
// concurrently nor out of order, while different invitations are
// announced in parallel. A caller whose transition was left to another
// deliverer may return before it is announced.
type notifier struct {
	fn func(Invitation) // nil: nothing to do

	mu     sync.Mutex
	queues map[string]*queue // by invitation id; present while not drained
}

type queue struct {
	waiting []Invitation
	busy    bool // a goroutine is draining it
}

func newNotifier(fn func(Invitation)) *notifier {
	return &notifier{fn: fn, queues: map[string]*queue{}}
}

// push queues a committed transition. The caller holds the commit lock.
func (n *notifier) push(inv Invitation) {
	if n.fn == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	q := n.queues[inv.ID]
	if q == nil {
		q = &queue{}
		n.queues[inv.ID] = q
	}
	q.waiting = append(q.waiting, inv)
}

// deliver drains id's queue unless another goroutine already does. The
// caller holds no lock.
func (n *notifier) deliver(id string) {
	if n.fn == nil {
		return
	}
	n.mu.Lock()
	q := n.queues[id]
	if q == nil || q.busy {
		n.mu.Unlock()
		return
	}
	q.busy = true
	for len(q.waiting) > 0 {
		inv := q.waiting[0]
		q.waiting = q.waiting[1:]
		n.mu.Unlock()
		n.call(q, inv)
		n.mu.Lock()
	}
	delete(n.queues, id)
	n.mu.Unlock()
}

// call runs fn. Should fn panic, the queue is handed back (not busy) so
// that the next commit of this invitation delivers what is left, and the
// panic goes on.
func (n *notifier) call(q *queue, inv Invitation) {
	ok := false
	defer func() {
		if !ok {
			n.mu.Lock()
			q.busy = false
			n.mu.Unlock()
		}
	}()
	n.fn(inv)
	ok = true
}
