package chat

import (
	"sort"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/internal/redistest"
)

// TestRedisConcurrentAppend: two nodes (two clients) appending to one
// room at once hand out distinct ids, in one sequence, and History
// returns them all in id order.
func TestRedisConcurrentAppend(t *testing.T) {
	srv := redistest.Start(t)
	var nodes []*RedisStore
	for range 2 {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = c.Close() })
		nodes = append(nodes, NewRedisStore(c, "relayd-test:"))
	}
	const goroutines, each = 20, 10
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range each {
				m, err := nodes[g%2].Append(Message{Room: "r", Text: "hi"})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[m.ID] {
					t.Errorf("id %s handed out twice", m.ID)
				}
				seen[m.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	all, err := nodes[1].History("r", "", "", Keep)
	if err != nil || len(all) != goroutines*each {
		t.Fatalf("History: %d messages, %v; want %d", len(all), err, goroutines*each)
	}
	if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].ID < all[j].ID }) {
		t.Errorf("History is not in id order")
	}
	if all[0].ID != idOf(1) || all[len(all)-1].ID != idOf(goroutines*each) {
		t.Errorf("ids from %s to %s, want one sequence from 1", all[0].ID, all[len(all)-1].ID)
	}
	for _, m := range all {
		if !seen[m.ID] {
			t.Errorf("History has %s, never handed out", m.ID)
		}
	}
}
