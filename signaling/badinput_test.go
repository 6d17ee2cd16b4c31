package signaling

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// Every bad frame gets its contract error, changes nothing, and the
// connection keeps serving.
func TestBadFrames(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dialRaw(t, ts.token(t, "alice", "r1", "host"))

	// Before join only join is served.
	wantError(t, c.send(`{"jsonrpc":"2.0","id":1,"method":"offer","params":{"sdp":"v=0"}}`), CodeConflict, "1")
	wantError(t, c.send(`{"jsonrpc":"2.0","id":"a","method":"room.stop"}`), CodeConflict, `"a"`)
	if r := c.send(`{"jsonrpc":"2.0","id":2,"method":"join","params":{}}`); r.Error != nil {
		t.Fatalf("join: %v", r.Error)
	}

	for _, tc := range []struct {
		name, frame string
		code        int
		id          string
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","id":3,"method":`, CodeParse, "null"},
		{"not JSON at all", `hello`, CodeParse, "null"},
		{"batch", `[{"jsonrpc":"2.0","id":4,"method":"join"},{"jsonrpc":"2.0","id":5,"method":"join"}]`, CodeInvalidRequest, "null"},
		{"empty batch", `[]`, CodeInvalidRequest, "null"},
		{"scalar", `42`, CodeInvalidRequest, "null"},
		{"no jsonrpc", `{"id":6,"method":"join"}`, CodeInvalidRequest, "6"},
		{"wrong jsonrpc", `{"jsonrpc":"1.0","id":7,"method":"join"}`, CodeInvalidRequest, "7"},
		{"method not a string", `{"jsonrpc":"2.0","id":8,"method":5}`, CodeInvalidRequest, "8"},
		{"id an object", `{"jsonrpc":"2.0","id":{"a":1},"method":"join"}`, CodeInvalidRequest, "null"},
		{"unknown method", `{"jsonrpc":"2.0","id":9,"method":"teleport"}`, CodeMethodNotFound, "9"},
		{"params an array", `{"jsonrpc":"2.0","id":10,"method":"offer","params":["v=0"]}`, CodeInvalidParams, "10"},
		{"sdp wrong type", `{"jsonrpc":"2.0","id":11,"method":"offer","params":{"sdp":5}}`, CodeInvalidParams, "11"},
		{"sdp missing", `{"jsonrpc":"2.0","id":12,"method":"offer","params":{}}`, CodeInvalidParams, "12"},
		{"garbage SDP", `{"jsonrpc":"2.0","id":13,"method":"offer","params":{"sdp":"this is not sdp"}}`, CodeInvalidParams, "13"},
		{"garbage candidate", `{"jsonrpc":"2.0","id":14,"method":"trickle","params":{"target":"publisher","candidate":{"candidate":"candidate:garbage","sdpMid":"0"}}}`, CodeInvalidParams, "14"},
		{"candidate wrong type", `{"jsonrpc":"2.0","id":15,"method":"trickle","params":{"target":"publisher","candidate":"x"}}`, CodeInvalidParams, "15"},
		{"bad target", `{"jsonrpc":"2.0","id":16,"method":"trickle","params":{"target":"sideways","candidate":null}}`, CodeInvalidParams, "16"},
		{"join twice", `{"jsonrpc":"2.0","id":17,"method":"join"}`, CodeConflict, "17"},
		{"string id echoed", `{"jsonrpc":"2.0","id":"x-1","method":"nope"}`, CodeMethodNotFound, `"x-1"`},
		{"float id echoed as given", `{"jsonrpc":"2.0","id":1.50,"method":"nope"}`, CodeMethodNotFound, "1.50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			wantError(t, c.send(tc.frame), tc.code, tc.id)
		})
	}
	c.t = t
	// Still serving: a valid trickle (end of candidates) works.
	if r := c.send(`{"jsonrpc":"2.0","id":20,"method":"trickle","params":{"target":"publisher","candidate":null}}`); r.Error != nil {
		t.Fatalf("valid request after bad ones: %v", r.Error)
	}
	if st := ts.SFU.Room("r1").Status(); st != "idle" {
		t.Fatalf("room status %s after bad input, want idle", st)
	}
}

func TestFrameLimit(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dialRaw(t, ts.token(t, "alice", "r1", "host"))
	// Exactly 65,536 bytes is served.
	head := `{"jsonrpc":"2.0","id":1,"method":"nope","params":{"pad":"`
	tail := `"}}`
	frame := head + strings.Repeat("x", maxFrame-len(head)-len(tail)) + tail
	if len(frame) != maxFrame {
		t.Fatalf("frame is %d bytes", len(frame))
	}
	wantError(t, c.send(frame), CodeMethodNotFound, "1")
	// One byte more closes the socket with 1009.
	big := head + strings.Repeat("x", maxFrame-len(head)-len(tail)+1) + tail
	if err := c.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("want close 1009, got %v", err)
		}
		break
	}
	// The server keeps serving others.
	c2 := ts.dialRaw(t, ts.token(t, "bob", "r2", "host"))
	if r := c2.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`); r.Error != nil {
		t.Fatal(r.Error)
	}
}

func TestRateLimit(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dialRaw(t, ts.token(t, "alice", "r1", "host"))
	limited := 0
	for i := 0; i < requestBurst+50; i++ {
		r := c.send(`{"jsonrpc":"2.0","id":1,"method":"nope"}`)
		if r.Error != nil && r.Error.Code == CodeRateLimited {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no request was rate limited")
	}
	time.Sleep(100 * time.Millisecond) // ~5 tokens back at 50/s
	if r := c.send(`{"jsonrpc":"2.0","id":2,"method":"join"}`); r.Error != nil {
		t.Fatalf("after the burst: %v", r.Error)
	}
}

func TestUpgradeAuth(t *testing.T) {
	ts := newTestServer(t)
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{
		Room: "r1", Role: "host",
		RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))},
	}).SignedString([]byte("test-secret-0123456789"))
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{
		Room: "r1", Role: "host",
		RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))},
	}).SignedString([]byte("another-secret"))
	for name, tok := range map[string]string{"missing": "", "expired": expired, "forged": forged, "garbage": "a.b.c"} {
		t.Run(name, func(t *testing.T) {
			_, resp, err := websocket.DefaultDialer.Dial(ts.wsURL(tok), nil)
			if err == nil {
				t.Fatal("upgraded with a bad token")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("want HTTP 401, got %v", resp)
			}
		})
	}
	// A browser origin that is not allowed is refused; none is fine.
	h := http.Header{"Origin": {"http://evil.example"}}
	if _, resp, err := websocket.DefaultDialer.Dial(ts.wsURL(ts.token(t, "a", "r", "host")), h); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: err %v", err)
	}
}

func TestJoinRules(t *testing.T) {
	ts := newTestServer(t)
	join := func(identity, room, role string) rpcReply {
		c := ts.dialRaw(t, ts.token(t, identity, room, role))
		return c.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`)
	}
	wantError(t, join("bob", "nowhere", "viewer"), CodeNotFound, "1")
	if r := join("alice", "r1", "host"); r.Error != nil {
		t.Fatal(r.Error)
	}
	wantError(t, join("mallory", "r1", "host"), CodeForbidden, "1")
	if r := join("bob", "r1", "viewer"); r.Error != nil {
		t.Fatal(r.Error)
	}
	ts.SFU.Room("r1").End("test")
	wantError(t, join("carol", "r1", "viewer"), CodeConflict, "1")
	wantError(t, join("alice", "r1", "host"), CodeConflict, "1")

	// A user session (no room) joins with room null, and may only use
	// invitation methods.
	tok, _ := ts.Tokens.Issue(TokenSpec{Identity: "dave", TTL: time.Hour})
	c := ts.dialRaw(t, tok)
	r := c.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`)
	if r.Error != nil || !strings.Contains(string(r.Result), `"room":null`) {
		t.Fatalf("user session join: %s %v", r.Result, r.Error)
	}
	wantError(t, c.send(`{"jsonrpc":"2.0","id":2,"method":"offer","params":{"sdp":"garbage"}}`), CodeInvalidParams, "2")
	wantError(t, c.send(`{"jsonrpc":"2.0","id":3,"method":"room.stop"}`), CodeForbidden, "3")
}

func TestHTTPAPI(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	user := ts.token(t, "alice", "r1", "host")

	if code, _ := httpDo(t, "GET", ts.URL+"/v1/rooms", "", ""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _ := httpDo(t, "GET", ts.URL+"/v1/rooms", user, ""); code != 403 {
		t.Errorf("non-admin token: %d", code)
	}
	code, body := httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":"show","host":"alice","title":"Friday","metadata":{"k":1}}`)
	if code != 201 || body["status"] != "idle" || body["host"] != "alice" {
		t.Fatalf("create: %d %v", code, body)
	}
	if code, body := httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":"show","host":"alice"}`); code != 409 {
		t.Errorf("create twice: %d %v", code, body)
	}
	if code, body := httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":5}`); code != 400 {
		t.Errorf("bad body: %d %v", code, body)
	}
	if code, body := httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":"x","host":"a","title":"`+strings.Repeat("x", maxBody)+`"}`); code != 413 {
		t.Errorf("huge body: %d %v", code, body)
	}
	if code, body := httpDo(t, "GET", ts.URL+"/v1/rooms/show", admin, ""); code != 200 || body["name"] != "show" {
		t.Errorf("get: %d %v", code, body)
	}
	if code, body := httpDo(t, "GET", ts.URL+"/v1/rooms/none", admin, ""); code != 404 || body["error"].(map[string]any)["code"].(float64) != 4004 {
		t.Errorf("get missing: %d %v", code, body)
	}
	if code, body := httpDo(t, "GET", ts.URL+"/v1/rooms?status=idle", admin, ""); code != 200 || len(body["rooms"].([]any)) != 1 {
		t.Errorf("list idle: %d %v", code, body)
	}
	if code, body := httpDo(t, "GET", ts.URL+"/v1/rooms?status=live", admin, ""); code != 200 || len(body["rooms"].([]any)) != 0 {
		t.Errorf("list live: %d %v", code, body)
	}
	if code, body := httpDo(t, "POST", ts.URL+"/v1/rooms/show/stop", admin, ""); code != 200 || body["status"] != "ended" {
		t.Errorf("stop: %d %v", code, body)
	}
	code, body = httpDo(t, "POST", ts.URL+"/v1/tokens", admin, `{"identity":"bob","room":"show","role":"viewer","ttl":"10m"}`)
	if code != 200 || body["token"] == nil || !strings.Contains(body["url"].(string), "/v1/ws?token=") {
		t.Fatalf("token: %d %v", code, body)
	}
	c, err := ts.Tokens.Verify(body["token"].(string))
	if err != nil || c.Identity() != "bob" || c.Room != "show" || c.Role != "viewer" {
		t.Fatalf("minted token: %v %+v", err, c)
	}
	if code, _ := httpDo(t, "POST", ts.URL+"/v1/tokens", admin, `{"identity":"bad id!"}`); code != 400 {
		t.Errorf("bad identity: %d", code)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, _ := httpDo(t, "GET", ts.URL+p, "", ""); code != 200 && p != "/metrics" {
			t.Errorf("%s: %d", p, code)
		}
	}
}
