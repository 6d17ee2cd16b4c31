package cluster

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/relaysfu/relayd/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Short heartbeats keep the tests fast. ttl is for the tests of dead-node
// detection (noticed within TTL+hb = 400ms); the others use relaxedTTL,
// because on a loaded CI machine (-race, 2 cores, other packages' tests)
// a goroutine can stall for more than 300ms and a node that is merely
// late would be declared dead.
const (
	hb         = 100 * time.Millisecond
	ttl        = 300 * time.Millisecond
	relaxedTTL = 2 * time.Second
)

// fastTTL makes a node use the short ttl.
func fastTTL(o *Options) { o.TTL = ttl }

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// open starts a node with id on srv and closes it when t ends.
func open(t *testing.T, srv *redistest.Server, id string, edit ...func(*Options)) *Cluster {
	t.Helper()
	o := Options{URL: srv.URL, NodeID: id, Advertise: "http://" + id + ".test",
		Heartbeat: hb, TTL: relaxedTTL, Logger: testLogger(t).With("test_node", id)}
	for _, e := range edit {
		e(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Open(ctx, o)
	if err != nil {
		t.Fatalf("Open %s: %v", id, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawClient is a plain client for inspecting keys.
func rawClient(t *testing.T, srv *redistest.Server) *redis.Client {
	ro, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(ro)
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// keysOf returns every key under the default prefix that mentions id.
func keysOf(t *testing.T, rc *redis.Client, id string) []string {
	t.Helper()
	var out []string
	iter := rc.Scan(context.Background(), 0, "relayd:*", 100).Iterator()
	for iter.Next(context.Background()) {
		if strings.Contains(iter.Val(), id) {
			out = append(out, iter.Val())
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := rc.HExists(context.Background(), "relayd:nodes", id).Result(); n {
		out = append(out, "relayd:nodes["+id+"]")
	}
	slices.Sort(out)
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func nodeIDs(t *testing.T, c *Cluster) []string {
	t.Helper()
	ns, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

func TestOpenValidates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for name, o := range map[string]Options{
		"no advertise": {URL: "redis://127.0.0.1:1/0"},
		"no redis":     {Advertise: "http://x"},
		"bad url":      {URL: "http://nope", Advertise: "http://x"},
		"ttl <= hb":    {URL: "redis://127.0.0.1:1/0", Advertise: "http://x", Heartbeat: time.Second, TTL: time.Second},
		"unreachable":  {URL: "redis://127.0.0.1:1/0", Advertise: "http://x"},
	} {
		if c, err := Open(ctx, o); err == nil {
			_ = c.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestThreeNodesSeeEachOther(t *testing.T) {
	srv := redistest.Start(t)
	a, b, c := open(t, srv, "a"), open(t, srv, "b"), open(t, srv, "c")
	for _, n := range []*Cluster{a, b, c} {
		if got := nodeIDs(t, n); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("%s sees %v", n.NodeID(), got)
		}
	}
	n, ok, err := a.Node(context.Background(), "c")
	if err != nil || !ok || n.URL != "http://c.test" || n.Started.IsZero() || n.Seen.IsZero() {
		t.Fatalf("a.Node(c) = %+v %v %v", n, ok, err)
	}
	if _, ok, _ := a.Node(context.Background(), "zz"); ok {
		t.Fatal("unknown node reported alive")
	}
	if s := b.Self(); s.ID != "b" || s.URL != "http://b.test" {
		t.Fatalf("Self = %+v", s)
	}
	if b.Client() == nil {
		t.Fatal("no client")
	}
	// Default id and prefix.
	d := open(t, srv, "", func(o *Options) { o.NodeID = ""; o.Advertise = "http://d.test" })
	if !strings.HasPrefix(d.NodeID(), "ND_") || len(nodeIDs(t, a)) != 4 {
		t.Fatalf("default id %q, nodes %v", d.NodeID(), nodeIDs(t, a))
	}
}

func TestLoadReported(t *testing.T) {
	srv := redistest.Start(t)
	a, b := open(t, srv, "a"), open(t, srv, "b")
	want := Load{Rooms: 3, Participants: 17, PacketsPerSec: 1234.5, CPU: 1.75}
	a.SetLoad(func() Load { return want })
	waitFor(t, 2*time.Second, "b to see a's load", func() bool {
		n, ok, err := b.Node(context.Background(), "a")
		return err == nil && ok && n.Load == want
	})
	ns, _ := b.Nodes(context.Background())
	if ns[0].ID != "a" || ns[0].Load != want || ns[1].Load != (Load{}) {
		t.Fatalf("Nodes = %+v", ns)
	}
	// a's own view follows its heartbeat's write, which b may read first.
	waitFor(t, 2*time.Second, "a's own view of its load", func() bool { return a.Self().Load == want })
}

func TestCloseDeregisters(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	a, b := open(t, srv, "a"), open(t, srv, "b")
	var mu sync.Mutex
	var gone []string
	b.OnNodeGone(func(n Node, rooms []string, owner bool) {
		mu.Lock()
		defer mu.Unlock()
		gone = append(gone, n.ID)
	})
	ctx := context.Background()
	b.SetLoad(func() Load { return Load{CPU: 9} }) // so that the rooms go to a
	waitFor(t, 2*time.Second, "load", func() bool { n, _, _ := a.Node(ctx, "b"); return n.Load.CPU == 9 })
	for _, r := range []string{"r1", "r2"} {
		if n, err := b.PlaceRoom(ctx, r); err != nil || n.ID != "a" {
			t.Fatalf("PlaceRoom %s = %v %v", r, n.ID, err)
		}
	}
	if len(keysOf(t, rc, ":a")) == 0 {
		t.Fatal("no keys of a before Close")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if k := keysOf(t, rc, ":a"); len(k) != 0 {
		t.Fatalf("keys left after Close: %v", k)
	}
	if n, _ := rc.Exists(ctx, "relayd:room:r1", "relayd:room:r2").Result(); n != 0 {
		t.Fatal("placements left after Close")
	}
	if got := nodeIDs(t, b); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("b sees %v", got)
	}
	time.Sleep(5 * hb) // a few watch ticks
	mu.Lock()
	defer mu.Unlock()
	if len(gone) != 0 {
		t.Fatalf("closed node reported gone: %v", gone)
	}
}

func TestNodeIDReuse(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := open(t, srv, "a", fastTTL)
	if _, err := a.PlaceRoom(ctx, "r1"); err != nil {
		t.Fatal(err)
	}

	// A second live process with the same id is refused.
	o := Options{URL: srv.URL, NodeID: "a", Advertise: "http://other", Heartbeat: hb, TTL: ttl}
	if c, err := Open(ctx, o); !errors.Is(err, ErrNodeIDInUse) {
		if c != nil {
			_ = c.Close()
		}
		t.Fatalf("Open with a live id: %v", err)
	}

	// A restart after a crash waits out the old registration and reports
	// the old process's rooms as gone, as their owner.
	a.halt(false)
	start := time.Now()
	a2 := open(t, srv, "a", fastTTL)
	if d := time.Since(start); d > ttl+hb+600*time.Millisecond { // slack for a loaded machine
		t.Errorf("Open waited %v", d)
	}
	got := make(chan []string, 1)
	a2.OnNodeGone(func(n Node, rooms []string, owner bool) {
		if n.ID == "a" && owner {
			got <- rooms
		}
	})
	select {
	case rooms := <-got:
		if !slices.Equal(rooms, []string{"r1"}) {
			t.Fatalf("rooms %v", rooms)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no gone report for the previous process")
	}
	if _, ok, _ := a2.RoomNode(ctx, "r1"); ok {
		t.Fatal("old placement survived")
	}
}

// A node the others cleaned up as dead (it stalled past TTL) learns it at
// its next heartbeat: OnEvicted runs once, and the node is registered
// again, with no room placed on it.
func TestEvictedNodeIsTold(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	a := open(t, srv, "ev-a")
	if got := place(t, a, "r1"); got != "ev-a" {
		t.Fatalf("r1 placed on %s", got)
	}
	var evicted atomic.Int32
	a.OnEvicted(func() { evicted.Add(1) })

	// What a survivor's cleanup leaves: no registration, no alive key, no
	// placement.
	ctx := context.Background()
	if err := rc.HDel(ctx, "relayd:nodes", "ev-a").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Del(ctx, "relayd:node:ev-a", "relayd:node:ev-a:rooms", "relayd:room:r1").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "OnEvicted", func() bool { return evicted.Load() == 1 })
	waitFor(t, 5*time.Second, "the node registered again", func() bool {
		return slices.Contains(nodeIDs(t, a), "ev-a")
	})
	if _, ok, err := a.RoomNode(ctx, "r1"); err != nil || ok {
		t.Errorf("r1 still placed after the eviction: %v %v", ok, err)
	}
	time.Sleep(5 * hb)
	if n := evicted.Load(); n != 1 {
		t.Errorf("OnEvicted ran %d times, want once", n)
	}
}
