package invitations

import (
	"sync"
	"testing"
	"time"

	"github.com/relaysfu/relayd/metrics"
)

// t0 is the fake clock's start: a fixed instant, so failures reproduce.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// fakeClock is the injected clock: it moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recorder keeps what OnChange was called with.
type recorder struct {
	mu  sync.Mutex
	got []Invitation
}

func (r *recorder) OnChange(inv Invitation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, inv)
}

// of returns the statuses announced for invitation id, in order.
func (r *recorder) of(id string) []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Status
	for _, inv := range r.got {
		if inv.ID == id {
			out = append(out, inv.Status)
		}
	}
	return out
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// fixture is a Manager over a fresh BoltStore with a fake clock.
type fixture struct {
	m       *Manager
	store   *BoltStore
	clock   *fakeClock
	rec     *recorder
	metrics *metrics.Metrics
}

const testTTL = 10 * time.Minute

func newFixture(t *testing.T, maxCohosts int) *fixture {
	t.Helper()
	store, err := OpenBolt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	f := &fixture{store: store, clock: newFakeClock(), rec: &recorder{}, metrics: metrics.New()}
	f.m = NewManager(Config{
		Store: store, TTL: testTTL, MaxCohosts: maxCohosts, Now: f.clock.Now,
		Metrics: f.metrics, OnChange: f.rec.OnChange,
	})
	return f
}

// invite creates a pending invitation of user to room "show" by host
// "alice", failing the test otherwise.
func (f *fixture) invite(t *testing.T, user string) Invitation {
	t.Helper()
	inv, created, err := f.m.Create("show", "alice", "alice", user)
	if err != nil || !created {
		t.Fatalf("Create(%s) = %v, created %v", user, err, created)
	}
	return inv
}

// must fails the test when a step of a set-up fails:
// must(t)(f.m.Accept(id, user)).
func must(t *testing.T) func(Invitation, error) Invitation {
	return func(inv Invitation, err error) Invitation {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
}

// mustList is must for lists.
func mustList(t *testing.T) func([]Invitation, error) []Invitation {
	return func(list []Invitation, err error) []Invitation {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
}
