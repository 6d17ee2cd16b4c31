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

// fakeNow is a settable clock for the room creation limit.
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
		if _, err := ts.Store.GetRoom(name); !errors.Is(err, invitations.ErrNotFound) {
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
