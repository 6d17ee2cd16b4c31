package signaling

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/relaysfu/relayd/invitations"
)

var limitT0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestTakeDecision(t *testing.T) {
	const perMinute = 10
	for _, tc := range []struct {
		name   string
		b      bucket
		now    time.Time
		ok     bool
		tokens float64
	}{
		{"full bucket", bucket{10, limitT0}, limitT0, true, 9},
		{"empty, same instant", bucket{0, limitT0}, limitT0, false, 0},
		{"empty, 5.9 s later: 0.98 of a token", bucket{0, limitT0}, limitT0.Add(5900 * time.Millisecond), false, 5.9 / 6},
		{"empty, 6 s later: one token", bucket{0, limitT0}, limitT0.Add(6 * time.Second), true, 0},
		{"half a token, 3 s later", bucket{0.5, limitT0}, limitT0.Add(3 * time.Second), true, 0},
		{"refill stops at the burst", bucket{2, limitT0}, limitT0.Add(10 * time.Minute), true, 9},
		{"a clock that went back refills nothing", bucket{0, limitT0.Add(time.Minute)}, limitT0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, ok := take(tc.b, tc.now, perMinute)
			if ok != tc.ok || next.tokens < tc.tokens-1e-9 || next.tokens > tc.tokens+1e-9 {
				t.Errorf("take = %+v, %v; want %v tokens, %v", next, ok, tc.tokens, tc.ok)
			}
		})
	}
	for _, tc := range []struct {
		name string
		b    bucket
		now  time.Time
		want bool
	}{
		{"full", bucket{10, limitT0}, limitT0, true},
		{"one taken", bucket{9, limitT0}, limitT0.Add(5 * time.Second), false},
		{"one taken, refilled", bucket{9, limitT0}, limitT0.Add(6 * time.Second), true},
		{"empty, a minute later", bucket{0, limitT0}, limitT0.Add(time.Minute), true},
		{"empty, 59 s later", bucket{0, limitT0}, limitT0.Add(59 * time.Second), false},
	} {
		if got := idle(tc.b, tc.now, perMinute); got != tc.want {
			t.Errorf("idle, %s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// fakeNow is a settable clock for the limiter.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeNow) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeNow) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The limiter forgets identities once their bucket is full again, and
// never holds more than maxCreators.
func TestCreateLimiterMemory(t *testing.T) {
	clock := &fakeNow{t: limitT0}
	l := newCreateLimiter(10, clock.now)
	if newCreateLimiter(0, nil) != nil || !(*createLimiter)(nil).allow("x") {
		t.Fatal("a zero rate must mean no limiter, allowing everything")
	}
	for i := range 1000 {
		if !l.allow(fmt.Sprint("id", i)) {
			t.Fatalf("identity %d refused its first room", i)
		}
	}
	if l.size() != 1000 {
		t.Fatalf("%d identities remembered, want 1000", l.size())
	}
	clock.advance(time.Minute)
	l.allow("late")
	if l.size() != 1 {
		t.Fatalf("%d identities remembered a minute later, want 1 (the idle ones dropped)", l.size())
	}

	// At the bound a new identity is refused, a known one still served;
	// once the others are idle there is room again.
	clock.advance(time.Minute)
	for i := range maxCreators {
		l.allow(fmt.Sprint("many", i))
	}
	if l.size() != maxCreators {
		t.Fatalf("%d identities remembered, want %d", l.size(), maxCreators)
	}
	if l.allow("newcomer") {
		t.Fatal("a new identity was let in beyond maxCreators")
	}
	if !l.allow("many7") {
		t.Fatal("a known identity with creations left was refused")
	}
	clock.advance(time.Minute)
	if !l.allow("newcomer") || l.size() != 1 {
		t.Fatalf("after a minute: size %d, want the newcomer alone", l.size())
	}
}

// One identity creating 2,000 rooms (the 2,000 in 3 s): beyond the
// burst every creation is refused with 4029 / HTTP 429, over the HTTP API
// and over a host token's join alike, and nothing of it is created;
// joining an existing room is not limited; another identity is unaffected.
func TestRoomCreateRateLimit(t *testing.T) {
	clock := &fakeNow{t: limitT0} // time stands still: exactly the burst is allowed
	ts := newTestServer(t, func(o *serverOpts) { o.createRate, o.createNow = 10, clock.now })
	admin := ts.adminToken(t)

	const attempts = 2000
	const overWS = 20 // of them, host-token joins (each a socket)
	var created, refused []string
	for i := range attempts - overWS {
		name := fmt.Sprint("spam", i)
		code, body := httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":"`+name+`","host":"mallory"}`)
		switch code {
		case 201:
			created = append(created, name)
		case 429:
			e, _ := body["error"].(map[string]any)
			if c, _ := e["code"].(float64); c != CodeRateLimited {
				t.Fatalf("POST %s: 429 with body %v, want error code 4029", name, body)
			}
			refused = append(refused, name)
		default:
			t.Fatalf("POST %s: %d %v", name, code, body)
		}
	}
	if len(created) != 10 {
		t.Fatalf("%d rooms created by one identity, want the burst of 10", len(created))
	}
	for i := range overWS {
		name := fmt.Sprint("spamws", i)
		c := ts.dialRaw(t, ts.token(t, "mallory", name, "host"))
		wantError(t, c.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`), CodeRateLimited, "1")
		_ = c.Close()
		refused = append(refused, name)
	}
	// Nothing refused exists anywhere.
	if n := len(ts.SFU.Rooms()); n != len(created) {
		t.Errorf("the sfu holds %d rooms, want the %d created", n, len(created))
	}
	for _, name := range refused {
		if ts.SFU.Room(name) != nil {
			t.Fatalf("refused room %s is in the sfu", name)
		}
		if _, err := ts.Srv.store.GetRoom(name); !errors.Is(err, invitations.ErrNotFound) {
			t.Fatalf("refused room %s is in the store: %v", name, err)
		}
	}
	// Joining one of the rooms that exist is never limited.
	host := ts.dialRaw(t, ts.token(t, "mallory", created[0], "host"))
	if r := host.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`); r.Error != nil {
		t.Fatalf("host join of an existing room: %v", r.Error)
	}
	// A POST of a room that exists is a 409, not a 429.
	if code, _ := httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":"`+created[1]+`","host":"mallory"}`); code != 409 {
		t.Errorf("POST of an existing room while limited: %d, want 409", code)
	}
	// Another identity is unaffected, both ways.
	if code, body := httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":"alices","host":"alice"}`); code != 201 {
		t.Fatalf("another identity's POST: %d %v", code, body)
	}
	alice := ts.dialRaw(t, ts.token(t, "alice", "alices2", "host"))
	if r := alice.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`); r.Error != nil {
		t.Fatalf("another identity's join: %v", r.Error)
	}
	// Six seconds later one more room is allowed (10 a minute).
	clock.advance(6 * time.Second)
	if code, _ := httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":"later","host":"mallory"}`); code != 201 {
		t.Errorf("POST after the refill: %d, want 201", code)
	}
	if code, _ := httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":"later2","host":"mallory"}`); code != 429 {
		t.Errorf("second POST after one refill: %d, want 429", code)
	}
}
