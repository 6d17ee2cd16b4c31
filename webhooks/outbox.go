package webhooks

import "time"

// outbox is what the Dispatcher needs of where events wait: the bbolt
// file of one relayd (store, store.go), or Redis shared by the nodes of a
// cluster (redisOutbox, redisstore.go).
//
// A lane is (URL, room): its events in the order add stored them. Every
// method is safe for concurrent use.
type outbox interface {
	// add stores an event and puts it at the tail of room's lane of
	// every URL in urls, atomically and durably.
	add(room string, body []byte, urls []string) error
	// head returns the oldest event of the lane (url, room), or ok
	// false when the lane is empty. body is nil when the event itself
	// is missing (the caller skips it).
	head(url, room string) (seq uint64, body []byte, ok bool, err error)
	// delivered takes the event out of the lane, and deletes it when
	// no other lane holds it. It is idempotent.
	delivered(url, room string, seq uint64) error
	// rooms returns the rooms whose lane of url is not empty.
	rooms(url string) ([]string, error)
	// pending returns the number of (event, URL) deliveries to make.
	pending() (int, error)
	// close releases the outbox; every method fails after it.
	close() error
}

// leaser is implemented by an outbox that other processes deliver from
// too. A lane's head may only be sent by the process holding the lane's
// lease, so that each lane stays in order with one request in flight
// cluster-wide. A lease lapses after leaseTTL unless renewed: a process
// that dies (or loses Redis) gives its lanes up to the others by then.
//
// The bbolt outbox needs none of this: its file lock already makes its
// one Dispatcher the only sender.
type leaser interface {
	// claim takes the lease of (url, room), or renews it when this
	// outbox holds it already; false when another process holds it.
	claim(url, room string) (bool, error)
	// release gives the lease up, if this outbox still holds it.
	release(url, room string) error
	// leaseTTL is how long a lease lasts without a renewal.
	leaseTTL() time.Duration
}
