package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/relaysfu/relayd/internal/redistest"
)

// setLoads gives each node a fixed load and waits until all nodes see them.
func setLoads(t *testing.T, nodes []*Cluster, loads []Load) {
	t.Helper()
	for i, n := range nodes {
		l := loads[i]
		n.SetLoad(func() Load { return l })
	}
	waitFor(t, 2*time.Second, "loads", func() bool {
		ns, err := nodes[0].Nodes(context.Background())
		if err != nil || len(ns) != len(nodes) {
			return false
		}
		for i, n := range ns { // both sorted by id
			if n.Load != loads[i] {
				return false
			}
		}
		return true
	})
}

func place(t *testing.T, c *Cluster, room string) string {
	t.Helper()
	n, err := c.PlaceRoom(context.Background(), room)
	if err != nil {
		t.Fatalf("PlaceRoom %s: %v", room, err)
	}
	return n.ID
}

func TestPlaceRoomLeastLoadedAndSticky(t *testing.T) {
	srv := redistest.Start(t)
	a, b, c := open(t, srv, "a"), open(t, srv, "b"), open(t, srv, "c")
	all := []*Cluster{a, b, c}
	ctx := context.Background()

	setLoads(t, all, []Load{{CPU: 2}, {CPU: 0.1}, {CPU: 1}})
	if got := place(t, a, "r1"); got != "b" {
		t.Fatalf("r1 on %s, want least CPU b", got)
	}
	n, ok, err := c.RoomNode(ctx, "r1")
	if err != nil || !ok || n.ID != "b" || n.URL != "http://b.test" || n.Load.CPU != 0.1 {
		t.Fatalf("RoomNode = %+v %v %v", n, ok, err)
	}

	// Sticky: b becomes the busiest, r1 stays; a new room goes to c.
	setLoads(t, all, []Load{{CPU: 2}, {CPU: 5}, {CPU: 1}})
	if got := place(t, c, "r1"); got != "b" {
		t.Fatalf("r1 moved to %s", got)
	}
	if got := place(t, b, "r2"); got != "c" {
		t.Fatalf("r2 on %s, want c", got)
	}

	// Equal CPU (within a 0.25-core step): fewer rooms, then fewer
	// participants, then the lower id win.
	setLoads(t, all, []Load{{CPU: 0.3, Rooms: 1, Participants: 9}, {CPU: 0.4, Rooms: 1, Participants: 2}, {CPU: 0.26, Rooms: 3}})
	// b reports 1 room but holds placements r1 (c holds r2): b counts 1, a 1, c 3.
	if got := place(t, a, "r3"); got != "b" {
		t.Fatalf("r3 on %s, want b (fewest participants)", got)
	}
	// Now b holds 2 placements: a wins with 1 room.
	if got := place(t, a, "r4"); got != "a" {
		t.Fatalf("r4 on %s, want a (fewest rooms)", got)
	}

	if _, ok, _ := a.RoomNode(ctx, "nope"); ok {
		t.Fatal("RoomNode placed a room")
	}
}

func TestPlaceRoomSpreadsBurst(t *testing.T) {
	srv := redistest.Start(t)
	a, b, c := open(t, srv, "a"), open(t, srv, "b"), open(t, srv, "c")
	all := []*Cluster{a, b, c}
	count := map[string]int{}
	for i := range 9 {
		count[place(t, all[i%3], fmt.Sprint("room", i))]++
	}
	if count["a"] != 3 || count["b"] != 3 || count["c"] != 3 {
		t.Fatalf("rooms per node %v, want 3 each", count)
	}
}

func TestPlaceRoomConcurrent(t *testing.T) {
	srv := redistest.Start(t)
	all := []*Cluster{open(t, srv, "a"), open(t, srv, "b"), open(t, srv, "c")}
	for round := range 5 {
		room := fmt.Sprint("same", round)
		var wg sync.WaitGroup
		got := make([]string, 20)
		errs := make([]error, 20)
		for i := range 20 {
			wg.Go(func() {
				n, err := all[i%3].PlaceRoom(context.Background(), room)
				got[i], errs[i] = n.ID, err
			})
		}
		wg.Wait()
		for i := range 20 {
			if errs[i] != nil || got[i] != got[0] {
				t.Fatalf("round %d: goroutine %d got %q (%v), goroutine 0 got %q", round, i, got[i], errs[i], got[0])
			}
		}
	}
}

func TestReleaseRoom(t *testing.T) {
	srv := redistest.Start(t)
	a, b := open(t, srv, "a"), open(t, srv, "b")
	ctx := context.Background()
	if got := place(t, b, "r1"); got != "a" { // a wins the tie by id
		t.Fatalf("r1 on %s", got)
	}
	if err := b.ReleaseRoom(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if n, ok, _ := b.RoomNode(ctx, "r1"); !ok || n.ID != "a" {
		t.Fatal("a non-owner released the room")
	}
	if err := a.ReleaseRoom(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.RoomNode(ctx, "r1"); ok {
		t.Fatal("owner release left the placement")
	}
	if n, _ := a.Client().SCard(ctx, "relayd:node:a:rooms").Result(); n != 0 {
		t.Fatalf("rooms set has %d members", n)
	}
}

// A placement naming a dead node that no watch loop has cleaned up yet is
// re-placed at once, and the later cleanup does not report it.
func TestPlaceRoomOfDeadNodeBeforeCleanup(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	ctx := context.Background()
	// An hour-long heartbeat: the watch loop never ticks, the test drives it.
	b := open(t, srv, "b", func(o *Options) { o.Heartbeat, o.TTL = time.Hour, 3*time.Hour })
	dead := record{URL: "http://x.test", Started: 1, Seen: 2}.json()
	rc.HSet(ctx, "relayd:nodes", "x", dead)
	rc.Set(ctx, "relayd:room:r1", "x", 0)
	rc.Set(ctx, "relayd:room:r2", "x", 0)
	rc.SAdd(ctx, "relayd:node:x:rooms", "r1", "r2")

	if got := place(t, b, "r1"); got != "b" {
		t.Fatalf("r1 on %s", got)
	}
	var got []goneEvent
	b.OnNodeGone(func(n Node, rooms []string, owner bool) {
		got = append(got, goneEvent{n, rooms, owner})
	})
	b.watch(ctx)
	if len(got) != 1 || got[0].node.ID != "x" || got[0].node.URL != "http://x.test" ||
		!got[0].owner || fmt.Sprint(got[0].rooms) != "[r2]" {
		t.Fatalf("gone events %+v", got)
	}
	if n, ok, _ := b.RoomNode(ctx, "r1"); !ok || n.ID != "b" {
		t.Fatal("r1 lost its new placement")
	}
	b.watch(ctx)
	if len(got) != 1 {
		t.Fatalf("reported twice: %+v", got)
	}
}
