package webhooks

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// perURL is the number of requests in flight to one URL: that many rooms
// are delivered to it in parallel, and a receiver that hangs holds at most
// that many workers (and never another URL's). 4 keeps up with hundreds of
// events a second on a LAN without flooding a small receiver.
const perURL = 4

// logEvery: a lane logs its first failure and then every 10th, so a
// receiver down for an hour does not fill the log.
const logEvery = 10

// lane is the delivery state of one room to one URL.
type lane struct {
	url, room string
	busy      bool      // its head is in flight
	failures  int       // consecutive failed attempts of the head
	next      time.Time // not before: the backoff after a failure

	// With a shared outbox (leases): whether this node holds the
	// lane's lease, as far as it knows, and how to abort its head in
	// flight when a renewal finds the lease lost.
	leased bool
	cancel context.CancelFunc
}

type laneID struct{ url, room string }

// job is one delivery attempt, handed to a worker of its URL.
type job struct {
	ctx     context.Context // the attempt's: cancelled by Run's end or a lost lease
	l       *lane
	seq     uint64
	body    []byte
	id, typ string
}

type result struct {
	l   *lane
	err error
}

// scheduler is Run's state: the lanes, and the workers it started.
type scheduler struct {
	d        *Dispatcher
	lanes    map[laneID]*lane
	jobs     map[string]chan job // per URL, capacity perURL: a send never blocks
	inflight map[string]int
	results  chan result // capacity: every worker, so a worker never blocks
	ctx      context.Context

	// leases is the outbox's leaser when other nodes deliver from it
	// too (nil for bbolt). Then the scheduler renews the leases of its
	// lanes in flight every third of their TTL, and rescans the outbox
	// every poll for lanes it has not heard of (other nodes' Emits, and
	// the lanes of a node that died).
	leases            leaser
	poll              time.Duration
	renewAt, rescanAt time.Time
}

func newScheduler(d *Dispatcher) *scheduler {
	s := &scheduler{
		d:        d,
		lanes:    map[laneID]*lane{},
		jobs:     map[string]chan job{},
		inflight: map[string]int{},
		results:  make(chan result, perURL*len(d.cfg.URLs)),
	}
	for _, u := range d.cfg.URLs {
		s.jobs[u] = make(chan job, perURL)
	}
	if l, ok := d.store.(leaser); ok {
		s.leases = l
		// A tenth of the TTL, within [10ms, 1s]: how late a node
		// notices another node's new lane or its dead lease.
		s.poll = min(max(l.leaseTTL()/10, 10*time.Millisecond), time.Second)
	}
	return s
}

// run delivers until ctx is done, then stops the workers and waits for
// them (their requests are cancelled with ctx).
func (s *scheduler) run(ctx context.Context) {
	s.ctx = ctx
	var wg sync.WaitGroup
	for u, jobs := range s.jobs {
		for range perURL {
			wg.Go(func() { s.work(u, jobs) })
		}
	}
	defer func() {
		for _, jobs := range s.jobs {
			close(jobs)
		}
		wg.Wait()
		s.releaseAll()
	}()

	s.d.takeDirty() // everything in the store now is loaded below
	s.rescan()
	s.rescanAt = time.Now().Add(s.poll)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for room := range s.d.takeDirty() {
			for _, u := range s.d.cfg.URLs {
				s.lane(u, room)
			}
		}
		wait := s.housekeep(time.Now())
		wait = min(wait, s.dispatch())
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.d.signal:
		case r := <-s.results:
			s.finish(r)
		case <-timer.C:
		}
	}
}

// rescan creates the lanes of every room with events in the outbox.
func (s *scheduler) rescan() {
	for _, u := range s.d.cfg.URLs {
		rooms, err := s.d.store.rooms(u)
		if err != nil {
			s.d.log.Error("webhooks: reading the outbox", "err", err)
		}
		for _, room := range rooms {
			s.lane(u, room)
		}
	}
}

// housekeep renews the leases in flight and rescans the outbox when they
// are due, and returns how long until one of them is due again. Without
// leases there is nothing to do.
func (s *scheduler) housekeep(now time.Time) time.Duration {
	if s.leases == nil {
		return idleWait
	}
	if !now.Before(s.renewAt) {
		s.renewAt = now.Add(s.leases.leaseTTL() / 3)
		for _, l := range s.lanes {
			if !l.busy || !l.leased {
				continue
			}
			ok, err := s.leases.claim(l.url, l.room)
			if ok && err == nil {
				continue
			}
			// Another node may take the lane over once the lease
			// lapses: stop sending rather than race it.
			s.d.log.Warn("webhooks: lost a lane's lease, aborting its request", "url", l.url, "room", l.room, "err", err)
			l.leased = false
			l.cancel()
		}
	}
	if !now.Before(s.rescanAt) {
		s.rescanAt = now.Add(s.poll)
		s.rescan()
	}
	return min(s.renewAt.Sub(now), s.rescanAt.Sub(now))
}

// releaseAll gives up the leases this node holds, when Run ends with no
// request in flight, so that other nodes take the lanes over at once
// instead of after the TTL.
func (s *scheduler) releaseAll() {
	if s.leases == nil {
		return
	}
	for _, l := range s.lanes {
		if l.leased {
			if err := s.leases.release(l.url, l.room); err != nil {
				s.d.log.Warn("webhooks: releasing a lane's lease", "url", l.url, "room", l.room, "err", err)
			}
			l.leased = false
		}
	}
}

// lane returns the lane of (url, room), creating it due now.
func (s *scheduler) lane(url, room string) *lane {
	id := laneID{url, room}
	l := s.lanes[id]
	if l == nil {
		l = &lane{url: url, room: room}
		s.lanes[id] = l
	}
	return l
}

// idleWait is how long the loop sleeps with no lane waiting on a timer: it
// wakes up anyway on an Emit or a result.
const idleWait = time.Hour

// dispatch hands the head of every due, idle lane to its URL's workers
// while they have room, drops lanes found empty, and returns how long until
// the next lane in backoff is due. It looks at every lane: O(lanes) per
// event, fine for the thousands of rooms one server holds.
func (s *scheduler) dispatch() time.Duration {
	now := time.Now()
	wait := idleWait
	for id, l := range s.lanes {
		if l.busy {
			continue
		}
		if d := l.next.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		if s.inflight[l.url] >= perURL {
			continue // a result will free a worker and call dispatch again
		}
		if s.leases != nil {
			// The lease first, then the head: a head read before
			// the lease could be one its previous holder has just
			// delivered.
			ok, err := s.leases.claim(l.url, l.room)
			if err != nil {
				s.d.log.Error("webhooks: claiming a lane", "err", err)
				l.next = now.Add(backoff(1, s.d.cfg.MinBackoff, s.d.cfg.MaxBackoff))
				wait = min(wait, l.next.Sub(now))
				continue
			}
			l.leased = ok
			if !ok { // another node sends it: look again later
				l.next = now.Add(s.poll)
				wait = min(wait, s.poll)
				continue
			}
		}
		seq, body, ok, err := s.d.store.head(l.url, l.room)
		if err != nil {
			s.d.log.Error("webhooks: reading the outbox", "err", err)
			l.next = now.Add(backoff(1, s.d.cfg.MinBackoff, s.d.cfg.MaxBackoff))
			wait = min(wait, l.next.Sub(now))
			continue
		}
		if !ok {
			if l.leased {
				if err := s.leases.release(l.url, l.room); err != nil {
					s.d.log.Warn("webhooks: releasing a lane's lease", "url", l.url, "room", l.room, "err", err)
				}
			}
			delete(s.lanes, id) // delivered everything; an Emit (or a rescan) recreates it
			continue
		}
		var head struct{ ID, Type string }
		if body == nil || json.Unmarshal(body, &head) != nil {
			// The event is missing or unreadable (cannot happen): skip
			// it rather than block the lane forever.
			s.d.log.Error("webhooks: dropping an unreadable event", "seq", seq, "room", l.room)
			if err := s.d.store.delivered(l.url, l.room, seq); err != nil {
				s.d.log.Error("webhooks: updating the outbox", "err", err)
			}
			wait = 0 // look at this lane's next event right away
			continue
		}
		l.busy = true
		s.inflight[l.url]++
		ctx, cancel := context.WithCancel(s.ctx)
		l.cancel = cancel
		s.jobs[l.url] <- job{ctx: ctx, l: l, seq: seq, body: body, id: head.ID, typ: head.Type}
	}
	return wait
}

// finish records the outcome of an attempt.
func (s *scheduler) finish(r result) {
	l := r.l
	l.busy = false
	l.cancel()
	s.inflight[l.url]--
	if r.err == nil {
		l.failures, l.next = 0, time.Time{}
		return
	}
	l.failures++
	d := backoff(l.failures, s.d.cfg.MinBackoff, s.d.cfg.MaxBackoff)
	l.next = time.Now().Add(d)
	if l.failures%logEvery == 1 {
		s.d.log.Warn("webhooks: delivery failed, will retry", "url", l.url, "room", l.room, "failures", l.failures, "retry_in", d, "err", r.err)
	}
}

// work is one worker of url: it posts the jobs it gets and, on success,
// takes the event out of url's outbox before reporting.
func (s *scheduler) work(url string, jobs <-chan job) {
	for j := range jobs {
		err := s.d.post(j.ctx, url, j)
		if err == nil {
			// A failure here means the event is sent again: a
			// duplicate, which at-least-once allows.
			err = s.d.store.delivered(url, j.l.room, j.seq)
		}
		s.results <- result{l: j.l, err: err}
	}
}
