package webhooks

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/internal/redistest"
)

var testSecret = []byte("s3cret")

// attempt is one request the test receiver got.
type attempt struct {
	ev     Event
	status int
}

// receiver is a loopback webhook endpoint. policy chooses the status of
// each request (n counts requests from 0); every request's signature and
// headers are checked.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	policy func(n int, ev Event) int
	got    []attempt
}

func newReceiver(t *testing.T, policy func(n int, ev Event) int) *receiver {
	return newReceiverWith(t, policy, nil)
}

// newReceiverWith is newReceiver with its handler wrapped by wrap (nil:
// not wrapped), to watch or hold requests before they are recorded.
func newReceiverWith(t *testing.T, policy func(n int, ev Event) int, wrap func(http.Handler) http.Handler) *receiver {
	r := &receiver{t: t, policy: policy}
	var h http.Handler = http.HandlerFunc(r.serve)
	if wrap != nil {
		h = wrap(h)
	}
	r.srv = httptest.NewServer(h)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("reading body: %v", err)
		return
	}
	// The receiver's side of docs/webhooks.md.
	if !Verify(testSecret, body, req.Header.Get(HeaderSignature)) {
		r.t.Errorf("bad signature %q", req.Header.Get(HeaderSignature))
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" ||
		req.Header.Get(HeaderEvent) != ev.Type || req.Header.Get(HeaderDelivery) != ev.ID {
		r.t.Errorf("request %s %v does not match event %+v", req.Method, req.Header, ev)
	}
	if ts, err := strconv.ParseInt(req.Header.Get(HeaderTimestamp), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		r.t.Errorf("%s %q", HeaderTimestamp, req.Header.Get(HeaderTimestamp))
	}
	r.mu.Lock()
	status := r.policy(len(r.got), ev)
	r.got = append(r.got, attempt{ev, status})
	r.mu.Unlock()
	w.WriteHeader(status)
}

func (r *receiver) attempts() []attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]attempt(nil), r.got...)
}

// delivered returns the ids acknowledged with a 2xx, first time each, in
// the order they were, and the number of repeated deliveries.
func (r *receiver) delivered() (ids []string, dups int) {
	seen := map[string]bool{}
	for _, a := range r.attempts() {
		if a.status/100 != 2 {
			continue
		}
		if seen[a.ev.ID] {
			dups++
			continue
		}
		seen[a.ev.ID] = true
		ids = append(ids, a.ev.ID)
	}
	return ids, dups
}

// waitDelivered waits until every id in want was acknowledged.
func (r *receiver) waitDelivered(want []Event) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids, _ := r.delivered()
		got := map[string]bool{}
		for _, id := range ids {
			got[id] = true
		}
		missing := 0
		for _, ev := range want {
			if !got[ev.ID] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d events not delivered after 10s", missing, len(want))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkOrder checks that, per room, the receiver saw no attempt of an
// event before the previous event of that room was acknowledged, and that
// every room's events were delivered in emission order.
func (r *receiver) checkOrder(emitted []Event) {
	r.t.Helper()
	index := map[string]int{} // id -> position within its room
	perRoom := map[string]int{}
	for _, ev := range emitted {
		index[ev.ID] = perRoom[ev.Room]
		perRoom[ev.Room]++
	}
	next := map[string]int{} // room -> position of the event it may send
	for _, a := range r.attempts() {
		i, ok := index[a.ev.ID]
		if !ok {
			r.t.Errorf("unknown event %s", a.ev.ID)
			continue
		}
		switch {
		case i > next[a.ev.Room]:
			r.t.Errorf("room %q: event %d sent before event %d was delivered", a.ev.Room, i, next[a.ev.Room])
		case i == next[a.ev.Room] && a.status/100 == 2:
			next[a.ev.Room]++
		}
		// i < next: a duplicate of a delivered event, allowed.
	}
	for room, n := range perRoom {
		if next[room] != n {
			r.t.Errorf("room %q: %d of %d delivered in order", room, next[room], n)
		}
	}
}

// testConfig is a Config for dir and urls with short backoffs.
func testConfig(dir string, urls ...string) Config {
	return Config{
		URLs: urls, Secret: testSecret, Dir: dir,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}
}

// outboxKind is one outbox implementation under test. at returns a maker
// of Configs over one fresh place (a directory, a Redis key prefix):
// every Config it makes opens the same outbox, like a restart.
type outboxKind struct {
	name string
	at   func(t *testing.T) func(urls ...string) Config
}

// prefixes makes each Redis test's key prefix unique.
var prefixes atomic.Int64

// outboxes returns the outbox implementations the dispatcher tests run
// against: bbolt, and Redis on a redis-server started for t (that case
// skips where redis-server is not installed).
func outboxes(t *testing.T) []outboxKind {
	t.Helper()
	bolt := outboxKind{"bolt", func(t *testing.T) func(...string) Config {
		dir := t.TempDir()
		return func(urls ...string) Config { return testConfig(dir, urls...) }
	}}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return []outboxKind{bolt, {"redis", func(t *testing.T) func(...string) Config {
			redistest.Start(t) // skips
			return nil
		}}}
	}
	srv := redistest.Start(t)
	client := redisClient(t, srv)
	return []outboxKind{bolt, {"redis", func(t *testing.T) func(...string) Config {
		prefix := newPrefix()
		return func(urls ...string) Config { return redisConfig(client, prefix, urls...) }
	}}}
}

// eachOutbox runs body as one subtest per outbox implementation.
func eachOutbox(t *testing.T, body func(t *testing.T, k outboxKind)) {
	t.Helper()
	for _, k := range outboxes(t) {
		t.Run(k.name, func(t *testing.T) { body(t, k) })
	}
}

func newPrefix() string { return fmt.Sprintf("relayd-test-%d:", prefixes.Add(1)) }

// redisClient connects to srv, closing the client when t ends.
func redisClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisConfig is testConfig with the outbox in Redis under prefix.
func redisConfig(c redis.UniversalClient, prefix string, urls ...string) Config {
	cfg := testConfig("", urls...)
	cfg.Redis, cfg.RedisPrefix = c, prefix
	return cfg
}
