package signaling

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func withParams(f func(*Params)) func(*serverOpts) {
	return func(o *serverOpts) { o.params = f }
}

func TestAdmitSocket(t *testing.T) {
	for _, tc := range []struct {
		name  string
		max   int
		rooms []string
		room  string
		want  bool
	}{
		{"no cap", 0, []string{"a", "b", "c"}, "d", true},
		{"under the cap", 3, []string{"a", "b"}, "c", true},
		{"under the cap, a user session", 3, []string{"a", ""}, "", true},
		{"at the cap", 3, []string{"a", "b", "c"}, "d", false},
		{"at the cap, a user session", 3, []string{"a", "b", ""}, "", false},
		{"at the cap, replacing the one session in a room", 3, []string{"a", "b", "c"}, "b", true},
		{"at the cap, a second replacement in that room", 3, []string{"a", "b", "b"}, "b", false},
		{"at the cap, replacing in another room", 3, []string{"a", "b", "b"}, "a", true},
		{"twice the cap: one replacement per room at most", 2, []string{"a", "b", "a", "b"}, "a", false},
		{"over the cap by a replacement, a new room", 2, []string{"a", "b", "a"}, "c", false},
		{"over the cap by a replacement, a user session", 2, []string{"a", "b", "a"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := admitSocket(tc.max, tc.rooms, tc.room); got != tc.want {
				t.Fatalf("admitSocket(%d, %q, %q) = %v, want %v", tc.max, tc.rooms, tc.room, got, tc.want)
			}
		})
	}
}

// dialStatus opens a socket and returns the HTTP status of a refused
// upgrade (0 when it was upgraded: the socket is then returned) and the
// refusal's body.
func (ts *testServer) dialStatus(t *testing.T, token string) (*rawConn, int, []byte) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(ts.wsURL(token), nil)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
		return &rawConn{t: t, Conn: c}, 0, nil
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return nil, resp.StatusCode, body
}

func joinRaw(t *testing.T, c *rawConn) {
	t.Helper()
	if r := c.send(`{"jsonrpc":"2.0","id":"j","method":"join"}`); r.Error != nil {
		t.Fatalf("join: %v", r.Error)
	}
}

// settledGoroutines waits until the goroutine count is at most want, and
// returns the last count seen.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// One identity holds at most --max-sockets-per-identity sockets: beyond
// them the upgrade is refused with HTTP 429 and the contract's error body,
// and costs no goroutine; the sockets already open are unaffected, and
// another identity is not limited by this one.
func TestSocketCapPerIdentity(t *testing.T) {
	ts := newTestServer(t, withParams(func(p *Params) { p.MaxSocketsPerIdentity = 3 }))
	user, _ := ts.Tokens.Issue(TokenSpec{Identity: "alice", TTL: time.Hour})
	open := []*rawConn{
		ts.dialRaw(t, ts.token(t, "alice", "r1", "host")),
		ts.dialRaw(t, ts.token(t, "alice", "r2", "host")),
		ts.dialRaw(t, user),
	}
	for _, c := range open {
		joinRaw(t, c)
	}

	// (A socket for r1 or r2 would replace the one there: see
	// TestSocketCapReplacement.)
	for name, tok := range map[string]string{
		"a room session": ts.token(t, "alice", "r3", "host"),
		"a user session": user,
	} {
		_, status, body := ts.dialStatus(t, tok)
		if status != http.StatusTooManyRequests {
			t.Fatalf("%s over the cap: HTTP %d, want 429", name, status)
		}
		var e struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == nil || e.Error.Code != CodeRateLimited || e.Error.Message == "" {
			t.Fatalf("%s over the cap: body %s, want {\"error\":{\"code\":4029,...}}", name, body)
		}
	}

	// Refused sockets cost nothing that lasts.
	before := runtime.NumGoroutine()
	extra := ts.token(t, "alice", "r4", "host")
	for i := 0; i < 200; i++ {
		if _, status, _ := ts.dialStatus(t, extra); status != http.StatusTooManyRequests {
			t.Fatalf("refused socket %d: HTTP %d", i, status)
		}
	}
	if n := settledGoroutines(before + 5); n > before+5 {
		t.Fatalf("goroutines %d after 200 refused sockets, %d before", n, before)
	}

	// The open ones are served; another identity is not limited.
	for i, c := range open {
		if r := c.send(`{"jsonrpc":"2.0","id":5,"method":"nope"}`); r.Error == nil || r.Error.Code != CodeMethodNotFound {
			t.Fatalf("open socket %d after the refusals: %+v", i, r)
		}
	}
	joinRaw(t, ts.dialRaw(t, ts.token(t, "bob", "r1", "viewer")))

	// A closed socket gives its place back.
	_ = open[1].Close()
	deadline := time.Now().Add(10 * time.Second)
	for ts.Srv.sockets.count("alice") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("alice has %d sockets counted after closing one, want 2", ts.Srv.sockets.count("alice"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	joinRaw(t, ts.dialRaw(t, ts.token(t, "alice", "r3", "host")))
}

// At the cap, a client reconnecting to a room whose old socket the server
// still holds (a network change) gets in: its join replaces the old
// session, whose place is given back at once, before the join's result,
// though the old socket is still closing; the next reconnect gets in too.
func TestSocketCapReplacement(t *testing.T) {
	ts := newTestServer(t, withParams(func(p *Params) { p.MaxSocketsPerIdentity = 2 }))
	old := ts.dialRaw(t, ts.token(t, "alice", "r1", "host"))
	joinRaw(t, old)
	joinRaw(t, ts.dialRaw(t, ts.token(t, "alice", "r2", "host")))
	// old's client is gone: it reads nothing from now on, nor answers the
	// close, so its connection lingers on the server for a while.

	for i := 0; i < 3; i++ {
		c, status, body := ts.dialStatus(t, ts.token(t, "alice", "r1", "host"))
		if status != 0 {
			t.Fatalf("reconnect %d at the cap: HTTP %d %s", i, status, body)
		}
		if i == 0 {
			// One replacement at a time: while c has not joined, a
			// second socket for r1 is refused, and so is a third room.
			for _, room := range []string{"r1", "r3"} {
				if _, status, _ := ts.dialStatus(t, ts.token(t, "alice", room, "host")); status != http.StatusTooManyRequests {
					t.Fatalf("%s while a replacement is pending: HTTP %d, want 429", room, status)
				}
			}
		}
		joinRaw(t, c)
		if n := ts.Srv.sockets.count("alice"); n != 2 {
			t.Fatalf("reconnect %d: %d sockets counted right after the join, want 2", i, n)
		}
		if r := c.send(`{"jsonrpc":"2.0","id":3,"method":"trickle","params":{"target":"publisher","candidate":null}}`); r.Error != nil {
			t.Fatalf("reconnect %d: the new session: %v", i, r.Error)
		}
	}
	var ce *websocket.CloseError
	_ = old.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := old.ReadMessage(); err != nil {
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				t.Fatalf("the replaced socket: %v, want close 1000", err)
			}
			break
		}
	}
}

// A socket that does not join within the deadline is closed with 4009,
// and sent nothing else; frames other than join do not extend it. A
// socket that joined stays open past it. Closed sockets leave no
// goroutine behind.
func TestJoinDeadline(t *testing.T) {
	const deadline = 300 * time.Millisecond
	ts := newTestServer(t, withParams(func(p *Params) { p.JoinDeadline = deadline }))
	before := runtime.NumGoroutine()

	joined := ts.dialRaw(t, ts.token(t, "alice", "r1", "host"))
	joinRaw(t, joined)
	busy := ts.dialRaw(t, ts.token(t, "bob", "r1", "viewer"))
	idle := make([]*rawConn, 20)
	for i := range idle {
		idle[i] = ts.dialRaw(t, ts.token(t, "carol", "r1", "viewer"))
	}
	start := time.Now()

	// busy sends requests, never join, until it is closed.
	for i := 0; ; i++ {
		if err := busy.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"offer","params":{"sdp":"x"}}`)); err != nil {
			break
		}
		_ = busy.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := busy.ReadMessage()
		if err != nil {
			wantJoinDeadlineClose(t, err)
			break
		}
		var r rpcReply
		if json.Unmarshal(b, &r) != nil || r.Error == nil || r.Error.Code != CodeConflict {
			t.Fatalf("before join: %s, want error 4009", b)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("a socket sending requests but no join is still open after 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, b, err := c.ReadMessage()
		if err == nil {
			t.Fatalf("an idle socket was sent a frame (%d) %q before its close", typ, b)
		}
		wantJoinDeadlineClose(t, err)
	}
	if waited := time.Since(start); waited < deadline/2 {
		t.Fatalf("closed after %v, before the %v deadline", waited, deadline)
	}

	time.Sleep(2 * deadline) // well past the deadline for the joined socket too
	if r := joined.send(`{"jsonrpc":"2.0","id":2,"method":"trickle","params":{"target":"publisher","candidate":null}}`); r.Error != nil {
		t.Fatalf("the joined socket after the deadline: %v", r.Error)
	}
	_ = joined.Close()
	if n := settledGoroutines(before); n > before {
		t.Fatalf("goroutines %d after the sockets closed, %d before", n, before)
	}
	if n := ts.Srv.sockets.count("carol"); n != 0 {
		t.Fatalf("carol still has %d sockets counted", n)
	}
}

func wantJoinDeadlineClose(t *testing.T, err error) {
	t.Helper()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CodeConflict || ce.Text != "join deadline passed" {
		t.Fatalf("got %v, want close 4009 \"join deadline passed\"", err)
	}
}
