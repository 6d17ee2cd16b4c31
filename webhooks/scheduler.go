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
}

type laneID struct{ url, room string }

// job is one delivery attempt, handed to a worker of its URL.
type job struct {
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
	return s
}

// run delivers until ctx is done, then stops the workers and waits for
// them (their requests are cancelled with ctx).
func (s *scheduler) run(ctx context.Context) {
	var wg sync.WaitGroup
	for u, jobs := range s.jobs {
		for range perURL {
			wg.Go(func() { s.work(ctx, u, jobs) })
		}
	}
	defer func() {
		for _, jobs := range s.jobs {
			close(jobs)
		}
		wg.Wait()
	}()

	s.d.takeDirty() // everything in the store now is loaded below
	for _, u := range s.d.cfg.URLs {
		rooms, err := s.d.store.rooms(u)
		if err != nil {
			s.d.log.Error("webhooks: reading the outbox", "err", err)
		}
		for _, room := range rooms {
			s.lane(u, room)
		}
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for room := range s.d.takeDirty() {
			for _, u := range s.d.cfg.URLs {
				s.lane(u, room)
			}
		}
		wait := s.dispatch()
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
		seq, body, ok, err := s.d.store.head(l.url, l.room)
		if err != nil {
			s.d.log.Error("webhooks: reading the outbox", "err", err)
			l.next = now.Add(backoff(1, s.d.cfg.MinBackoff, s.d.cfg.MaxBackoff))
			wait = min(wait, l.next.Sub(now))
			continue
		}
		if !ok {
			delete(s.lanes, id) // delivered everything; an Emit recreates it
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
		s.jobs[l.url] <- job{l: l, seq: seq, body: body, id: head.ID, typ: head.Type}
	}
	return wait
}

// finish records the outcome of an attempt.
func (s *scheduler) finish(r result) {
	l := r.l
	l.busy = false
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
func (s *scheduler) work(ctx context.Context, url string, jobs <-chan job) {
	for j := range jobs {
		err := s.d.post(ctx, url, j)
		if err == nil {
			// A failure here means the event is sent again: a
			// duplicate, which at-least-once allows.
			err = s.d.store.delivered(url, j.l.room, j.seq)
		}
		s.results <- result{l: j.l, err: err}
	}
}
