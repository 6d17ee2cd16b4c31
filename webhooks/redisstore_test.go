package webhooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/internal/redistest"
)

// laneGuard wraps a receiver's handler: it fails the test when two
// requests of one room are in flight at once (two nodes sending a lane
// concurrently), holding each request a moment to widen the window, and
// calls hold (if not nil) with each event and request first, in the
// request's goroutine.
func laneGuard(t *testing.T, hold func(ev Event, req *http.Request)) func(http.Handler) http.Handler {
	var mu sync.Mutex
	inflight := map[string]int{}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			var ev Event
			_ = json.Unmarshal(body, &ev)
			mu.Lock()
			inflight[ev.Room]++
			if n := inflight[ev.Room]; n > 1 {
				t.Errorf("room %q: %d requests in flight at once", ev.Room, n)
			}
			mu.Unlock()
			defer func() {
				mu.Lock()
				inflight[ev.Room]--
				mu.Unlock()
			}()
			time.Sleep(time.Millisecond)
			if hold != nil {
				hold(ev, req)
			}
			next.ServeHTTP(w, req)
		})
	}
}

// countingTransport counts the requests one node sends.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(req)
}

// clusterNode is one relayd's dispatcher over the shared Redis outbox,
// on its own connection pool.
type clusterNode struct {
	client *redis.Client
	d      *Dispatcher
	sent   *countingTransport
	stop   func()
}

// startNode opens and runs a dispatcher on a client of its own; the test
// stops and closes it at the end unless it did so itself.
func startNode(t *testing.T, srv *redistest.Server, prefix string, ttl time.Duration, urls ...string) *clusterNode {
	t.Helper()
	n := &clusterNode{client: redisClient(t, srv), sent: &countingTransport{}}
	cfg := redisConfig(n.client, prefix, urls...)
	cfg.LeaseTTL = ttl
	cfg.Client = &http.Client{Transport: n.sent, Timeout: 10 * time.Second}
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.d = d
	var once sync.Once
	stop := runDispatcher(d)
	n.stop = func() { once.Do(stop) }
	t.Cleanup(func() {
		n.stop()
		_ = d.Close()
	})
	return n
}

// TestRedisTwoNodesExactlyOnce: two nodes emit into one Redis outbox and
// both deliver from it. Every event reaches the receiver once, in order
// per room, one request per room at a time, with both nodes sending.
func TestRedisTwoNodesExactlyOnce(t *testing.T) {
	srv := redistest.Start(t)
	rcv := newReceiverWith(t, func(n int, _ Event) int {
		if n%7 == 3 { // some failures, so lanes retry across the nodes
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}, laneGuard(t, nil))
	prefix := newPrefix()
	nodes := []*clusterNode{
		startNode(t, srv, prefix, 2*time.Second, rcv.srv.URL),
		startNode(t, srv, prefix, 2*time.Second, rcv.srv.URL),
	}
	var emitted []Event
	for i := range 60 {
		room := fmt.Sprintf("r%d", i%5)
		ev, err := nodes[i%2].d.Emit(TypeParticipantJoined, room, map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		emitted = append(emitted, ev)
		if i%10 == 9 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	rcv.waitDelivered(emitted)
	rcv.checkOrder(emitted)
	if ids, dups := rcv.delivered(); len(ids) != len(emitted) || dups != 0 {
		t.Errorf("%d events delivered, %d duplicates; want %d, none", len(ids), dups, len(emitted))
	}
	for _, n := range nodes {
		waitPending(t, n.d, 0)
	}
	a, b := nodes[0].sent.n.Load(), nodes[1].sent.n.Load()
	if a == 0 || b == 0 {
		t.Errorf("requests per node: %d, %d; want both nodes delivering", a, b)
	}
	if n := storedEvents(t, nodes[0].d); n != 0 {
		t.Errorf("%d events left in the outbox", n)
	}
	t.Logf("requests: node A %d, node B %d, %d attempts", a, b, len(rcv.attempts()))
}

// TestRedisLeaseRenewedWhileSending: a request lasting several lease TTLs
// keeps its lane: the sender renews the lease, and the other node never
// sends that room meanwhile.
func TestRedisLeaseRenewedWhileSending(t *testing.T) {
	const ttl = 300 * time.Millisecond
	srv := redistest.Start(t)
	var slow atomic.Bool
	rcv := newReceiverWith(t, func(int, Event) int { return http.StatusOK }, laneGuard(t, func(ev Event, _ *http.Request) {
		if ev.Room == "slow" && slow.CompareAndSwap(false, true) {
			time.Sleep(4 * ttl)
		}
	}))
	prefix := newPrefix()
	nodes := []*clusterNode{
		startNode(t, srv, prefix, ttl, rcv.srv.URL),
		startNode(t, srv, prefix, ttl, rcv.srv.URL),
	}
	var emitted []Event
	for i := range 6 {
		ev, err := nodes[i%2].d.Emit(TypeRoomStarted, "slow", map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		emitted = append(emitted, ev)
	}
	rcv.waitDelivered(emitted)
	rcv.checkOrder(emitted)
	if _, dups := rcv.delivered(); dups != 0 {
		t.Errorf("%d duplicates: the lane changed hands during the slow request", dups)
	}
}

// TestRedisLeaseTakeover: node A dies in the middle of a lane (its Redis
// connection gone, its request abandoned, its lease not released). Node
// B, running all along, leaves the lane alone while A's lease lives, and
// delivers all of it, in order, once the lease has lapsed.
func TestRedisLeaseTakeover(t *testing.T) {
	const ttl = 400 * time.Millisecond
	srv := redistest.Start(t)
	block := make(chan struct{})
	arrived := make(chan struct{})
	var first atomic.Bool
	var mu sync.Mutex
	var firstB time.Time // when the first request after A's arrived
	rcv := newReceiverWith(t, func(int, Event) int { return http.StatusOK }, laneGuard(t, func(_ Event, req *http.Request) {
		if first.CompareAndSwap(false, true) {
			close(arrived)
			// A's request: never answered while A lives, over when A
			// drops the connection.
			select {
			case <-block:
			case <-req.Context().Done():
			}
			return
		}
		mu.Lock()
		if firstB.IsZero() {
			firstB = time.Now()
		}
		mu.Unlock()
	}))
	t.Cleanup(func() { close(block) }) // before the receiver's Close, which waits for it

	prefix := newPrefix()
	a := startNode(t, srv, prefix, ttl, rcv.srv.URL)
	var emitted []Event
	for i := range 3 {
		ev, err := a.d.Emit(TypeRoomStarted, "r", map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		emitted = append(emitted, ev)
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("node A never sent")
	}
	b := startNode(t, srv, prefix, ttl, rcv.srv.URL)
	time.Sleep(3 * ttl) // A renews its lease: B must wait
	if n := len(rcv.attempts()); n != 0 {
		t.Fatalf("node B sent %d requests of a lane node A holds", n)
	}

	// A dies: without Redis it can neither renew nor release.
	killed := time.Now()
	_ = a.client.Close()
	a.stop()

	rcv.waitDelivered(emitted)
	rcv.checkOrder(emitted)
	waitPending(t, b.d, 0)
	mu.Lock()
	took := firstB.Sub(killed)
	mu.Unlock()
	// A renewed at most a third of the TTL before it died.
	if took < ttl/2 {
		t.Errorf("node B took the lane over %v after A died, before A's lease (%v) could lapse", took, ttl)
	}
	if sent := b.sent.n.Load(); sent < int64(len(emitted)) {
		t.Errorf("node B sent %d requests, want at least %d", sent, len(emitted))
	}
	t.Logf("node B took over %v after node A died (lease TTL %v)", took, ttl)
}

// TestRedisConfig: with Redis no Dir is needed, and Close leaves the
// shared client open.
func TestRedisConfig(t *testing.T) {
	c := redisClient(t, redistest.Start(t))
	cfg := redisConfig(c, newPrefix(), "http://127.0.0.1:1/")
	if cfg.Dir != "" {
		t.Fatal("redisConfig sets a Dir")
	}
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Errorf("client unusable after Close: %v", err)
	}
}
