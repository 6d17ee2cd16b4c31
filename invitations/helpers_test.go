package invitations

import (
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/internal/redistest"
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

// storeKind is one Store implementation under test. at returns an opener
// of one fresh place (a bolt directory, a Redis key prefix): every call of
// it opens a new Store over the same data, like a restart (or another
// node). The caller closes what it opens.
type storeKind struct {
	name string
	at   func(t *testing.T) func() (Store, error)
}

// prefixes makes each Redis test's key prefix unique, so tests sharing a
// server never see each other's keys.
var prefixes atomic.Int64

// stores returns the Store implementations every store test runs against:
// BoltStore, and RedisStore on a redis-server started for t (that case
// skips where redis-server is not installed).
func stores(t *testing.T) []storeKind {
	t.Helper()
	bolt := storeKind{"bolt", func(t *testing.T) func() (Store, error) {
		dir := t.TempDir()
		return func() (Store, error) { return OpenBolt(dir) }
	}}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return []storeKind{bolt, {"redis", func(t *testing.T) func() (Store, error) {
			redistest.Start(t) // skips
			return nil
		}}}
	}
	client := redisClient(t, redistest.Start(t))
	return []storeKind{bolt, {"redis", func(t *testing.T) func() (Store, error) {
		prefix := fmt.Sprintf("relayd-test-%d:", prefixes.Add(1))
		return func() (Store, error) { return NewRedisStore(client, prefix), nil }
	}}}
}

// redisClient connects to srv, closing the client when t ends.
func redisClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eachStore runs body as one subtest per Store implementation.
func eachStore(t *testing.T, body func(t *testing.T, k storeKind)) {
	t.Helper()
	for _, k := range stores(t) {
		t.Run(k.name, func(t *testing.T) { body(t, k) })
	}
}

// openStore opens a fresh store of kind k, closed when t ends.
func openStore(t *testing.T, k storeKind) Store {
	t.Helper()
	store, err := k.at(t)()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	return store
}

// fixture is a Manager over a fresh store with a fake clock.
type fixture struct {
	m       *Manager
	store   Store
	clock   *fakeClock
	rec     *recorder
	metrics *metrics.Metrics
}

const testTTL = 10 * time.Minute

func newFixture(t *testing.T, k storeKind, maxCohosts int) *fixture {
	t.Helper()
	store := openStore(t, k)
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
