package cluster

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relaysfu/relayd/internal/redistest"
)

type goneLog struct {
	mu     sync.Mutex
	events []goneEvent
	at     time.Time // of the first event
}

// record keeps the reports of node "a" (a survivor stalled by a loaded
// machine may be reported too; that is not what the test is about).
func (g *goneLog) record(n Node, rooms []string, owner bool) {
	if n.ID != "a" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.events) == 0 {
		g.at = time.Now()
	}
	g.events = append(g.events, goneEvent{n, rooms, owner})
}

func (g *goneLog) get() ([]goneEvent, time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.events), g.at
}

func TestCrashedNodeIsReportedOnceOnEachSurvivor(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	ctx := context.Background()
	a, b, c := open(t, srv, "a", fastTTL), open(t, srv, "b", fastTTL), open(t, srv, "c", fastTTL)
	// a is the least loaded, so it gets the rooms.
	setLoads(t, []*Cluster{a, b, c}, []Load{{}, {CPU: 1}, {CPU: 1}})
	for _, r := range []string{"r1", "r2", "r3"} {
		if got := place(t, b, r); got != "a" {
			t.Fatalf("%s on %s", r, got)
		}
	}
	logs := map[string]*goneLog{"b": {}, "c": {}}
	b.OnNodeGone(logs["b"].record)
	c.OnNodeGone(logs["c"].record)

	crash := time.Now()
	a.halt(false) // no deregistration: the keys stay until they expire
	waitFor(t, 3*time.Second, "both survivors to report a", func() bool {
		eb, _ := logs["b"].get()
		ec, _ := logs["c"].get()
		return len(eb) > 0 && len(ec) > 0
	})
	if got := nodeIDs(t, b); slices.Contains(got, "a") {
		t.Fatalf("alive after crash: %v", got)
	}
	owners := 0
	for name, l := range logs {
		evs, at := l.get()
		// Expiry takes at most TTL, noticing it at most one heartbeat more;
		// 600ms of slack for the race detector and a busy machine.
		if d := at.Sub(crash); d > ttl+hb+600*time.Millisecond {
			t.Errorf("%s noticed after %v", name, d)
		} else {
			t.Logf("%s noticed after %v", name, d)
		}
		ev := evs[0]
		if ev.node.ID != "a" || ev.node.URL != "http://a.test" || ev.node.Started.IsZero() ||
			!slices.Equal(ev.rooms, []string{"r1", "r2", "r3"}) {
			t.Errorf("%s got %+v", name, ev)
		}
		if ev.owner {
			owners++
		}
	}
	if owners != 1 {
		t.Fatalf("%d owners, want 1", owners)
	}

	// The rooms are free: re-placed on a live node.
	if _, ok, _ := b.RoomNode(ctx, "r1"); ok {
		t.Fatal("dead node's placement survived")
	}
	if got := place(t, c, "r1"); got != "b" && got != "c" {
		t.Fatalf("r1 re-placed on %s", got)
	}

	// Only the tombstone remains, and it expires after 10*TTL.
	if k := keysOf(t, rc, ":a"); !slices.Equal(k, []string{"relayd:gone:a"}) {
		t.Fatalf("keys of a after cleanup: %v", k)
	}
	waitFor(t, 10*ttl+2*time.Second, "tombstone to expire", func() bool {
		return len(keysOf(t, rc, ":a")) == 0
	})
	for name, l := range logs {
		if evs, _ := l.get(); len(evs) != 1 {
			t.Errorf("%s reported %d times", name, len(evs))
		}
	}
}

// A survivor whose reap reply was lost still learns it won, from the
// tombstone: exactly one owner even then.
func TestReapWinnerFromTombstone(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	ctx := context.Background()
	b := open(t, srv, "b", func(o *Options) { o.Heartbeat, o.TTL = time.Hour, 3*time.Hour })
	rc.HSet(ctx, "relayd:nodes", "x", record{URL: "http://x.test"}.json())
	rc.Set(ctx, "relayd:room:r1", "x", 0)
	rc.SAdd(ctx, "relayd:node:x:rooms", "r1")

	ev, res, err := b.reap(ctx, "x")
	if err != nil || res != reapWon || !ev.owner || !slices.Equal(ev.rooms, []string{"r1"}) {
		t.Fatalf("first reap %+v %d %v", ev, res, err)
	}
	ev, res, err = b.reap(ctx, "x")
	if err != nil || res != reapCleaned || !ev.owner || !slices.Equal(ev.rooms, []string{"r1"}) {
		t.Fatalf("retry by the winner %+v %d %v", ev, res, err)
	}
	c := open(t, srv, "c", func(o *Options) { o.Heartbeat, o.TTL = time.Hour, 3*time.Hour })
	ev, res, err = c.reap(ctx, "x")
	if err != nil || res != reapCleaned || ev.owner || ev.node.URL != "http://x.test" {
		t.Fatalf("reap by another node %+v %d %v", ev, res, err)
	}
	if _, res, _ := c.reap(ctx, "nobody"); res != reapUnknown {
		t.Fatalf("unknown node: %d", res)
	}
	if _, res, _ := c.reap(ctx, "b"); res != reapAlive {
		t.Fatalf("alive node: %d", res)
	}
}
