package invitations

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/internal/redistest"
	"github.com/relaysfu/relayd/metrics"
)

// node is one relayd of a cluster, as far as invitations go: its own
// Redis connection pool, store and Manager (whose commit lock serializes
// nothing across nodes).
type node struct {
	client *redis.Client
	store  *RedisStore
	m      *Manager
}

func newNodes(t *testing.T, n, maxCohosts int, clock *fakeClock) []node {
	t.Helper()
	srv := redistest.Start(t)
	prefix := fmt.Sprintf("relayd-test-%d:", prefixes.Add(1))
	var nodes []node
	for range n {
		c := redisClient(t, srv)
		s := NewRedisStore(c, prefix)
		nodes = append(nodes, node{c, s, NewManager(Config{
			Store: s, TTL: testTTL, MaxCohosts: maxCohosts, Now: clock.Now, Metrics: metrics.New(),
		})})
	}
	return nodes
}

// TestRedisCrossNodeRace: two nodes, 50 goroutines inviting 10 users to a
// room and accepting at once. The stage never holds more than
// maxCohosts, and each user has one invitation whatever node asked.
func TestRedisCrossNodeRace(t *testing.T) {
	const (
		goroutines = 50
		users      = 10
		maxCohosts = 3
		rooms      = 5
	)
	nodes := newNodes(t, 2, maxCohosts, newFakeClock())
	for r := range rooms {
		room := fmt.Sprintf("room%d", r)
		ids := make([]string, goroutines) // the invitation each goroutine was given
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				<-start
				m := nodes[i%2].m
				user := fmt.Sprintf("u%d", i%users)
				inv, _, err := m.Create(room, host, host, user)
				switch {
				case errors.Is(err, ErrStageFull):
					return
				case err != nil:
					t.Errorf("%s: create %s: %v", room, user, err)
					return
				}
				ids[i] = inv.ID
				if inv.Status != StatusPending {
					return
				}
				_, err = m.Accept(inv.ID, user)
				if err != nil && !errors.Is(err, ErrStageFull) && !errors.Is(err, ErrConflict) {
					t.Errorf("%s: accept %s: %v", room, user, err)
				}
			})
		}
		close(start)
		wg.Wait()

		// Every user's goroutines, on either node, got one invitation.
		byUser := map[string]string{}
		for i, id := range ids {
			user := fmt.Sprintf("u%d", i%users)
			if id == "" {
				continue
			}
			if prev, ok := byUser[user]; ok && prev != id {
				t.Errorf("%s: %s was given %s and %s", room, user, prev, id)
			}
			byUser[user] = id
		}
		for n, nd := range nodes {
			list := mustList(t)(nd.store.List(Filter{Room: room}))
			accepted, perUser := 0, map[string]int{}
			for _, inv := range list {
				perUser[inv.User]++
				switch inv.Status {
				case StatusAccepted:
					accepted++
				case StatusPending:
				default:
					t.Errorf("%s: %s is %s", room, inv.ID, inv.Status)
				}
			}
			// Seats only fill: a refused accept means a full stage.
			if accepted != maxCohosts {
				t.Errorf("%s, node %d: %d accepted, want %d", room, n, accepted, maxCohosts)
			}
			for user, k := range perUser {
				if k != 1 {
					t.Errorf("%s, node %d: %s has %d invitations", room, n, user, k)
				}
			}
			if len(list) != len(byUser) {
				t.Errorf("%s, node %d: %d invitations stored, %d handed out", room, n, len(list), len(byUser))
			}
		}
	}
}

// TestRedisStoreContention bypasses the Managers' locks: 50 goroutines on
// two stores accept 50 pending invitations of one room at once, each
// counting the stage inside its transaction. Exactly maxCohosts win.
func TestRedisStoreContention(t *testing.T) {
	const goroutines, maxCohosts = 50, 5
	clock := newFakeClock()
	nodes := newNodes(t, 2, maxCohosts, clock)
	var invs []Invitation
	for i := range goroutines {
		inv, _, err := nodes[0].m.Create(room, host, host, fmt.Sprintf("u%d", i))
		if err != nil {
			t.Fatal(err)
		}
		invs = append(invs, inv)
	}
	errs := make([]error, goroutines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, inv := range invs {
		wg.Go(func() {
			<-start
			_, errs[i] = nodes[i%2].store.Update(inv.ID, func(inv *Invitation, sameRoom []Invitation) error {
				if err := nodes[0].m.stageFull(sameRoom); err != nil {
					return err
				}
				inv.Status = StatusAccepted
				inv.UpdatedAt = clock.Now()
				return nil
			})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrStageFull):
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	accepted := mustList(t)(nodes[1].store.List(Filter{Room: room, Status: StatusAccepted}))
	if won != maxCohosts || len(accepted) != maxCohosts {
		t.Errorf("%d updates won, %d stored accepted; want %d", won, len(accepted), maxCohosts)
	}
	pending := mustList(t)(nodes[0].store.List(Filter{Status: StatusPending}))
	if len(pending) != goroutines-maxCohosts {
		t.Errorf("%d still pending in the status index, want %d", len(pending), goroutines-maxCohosts)
	}
}

// TestRedisCloseKeepsClient: the client is shared (chat, webhooks, other
// stores): closing the store must leave it usable.
func TestRedisCloseKeepsClient(t *testing.T) {
	nodes := newNodes(t, 1, 0, newFakeClock())
	if err := nodes[0].store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].client.Ping(t.Context()).Err(); err != nil {
		t.Errorf("client unusable after Close: %v", err)
	}
}

// TestRedisPrefixes: two prefixes on one server are two separate stores.
func TestRedisPrefixes(t *testing.T) {
	srv := redistest.Start(t)
	c := redisClient(t, srv)
	a, b := NewRedisStore(c, "a:"), NewRedisStore(c, "b:")
	ma := NewManager(Config{Store: a, Metrics: metrics.New()})
	if _, _, err := ma.Create(room, host, host, invitee); err != nil {
		t.Fatal(err)
	}
	if err := a.PutRoom(RoomRecord{Name: room, Host: host}); err != nil {
		t.Fatal(err)
	}
	if list := mustList(t)(b.List(Filter{})); len(list) != 0 {
		t.Errorf("prefix b: sees %d invitations of prefix a", len(list))
	}
	if rooms, err := b.ListRooms(); err != nil || len(rooms) != 0 {
		t.Errorf("prefix b: ListRooms = %v, %v", rooms, err)
	}
	if list := mustList(t)(a.List(Filter{})); len(list) != 1 {
		t.Errorf("prefix a: %d invitations, want 1", len(list))
	}
}
