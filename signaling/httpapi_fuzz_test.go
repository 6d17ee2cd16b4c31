package signaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/invitations"
)

// apiRoutes are the HTTP API's writes, for FuzzHTTPAPI; "%s" is the fuzzed
// path argument, after {room} and {inv} are replaced by the input's own
// room and invitation.
var apiRoutes = []struct{ method, path string }{
	{"POST", "/v1/rooms"},
	{"POST", "/v1/tokens"},
	{"POST", "/v1/rooms/%s/invitations"},
	{"POST", "/v1/invitations/%s"}, // {id}/{action}
	{"POST", "/v1/relays"},
	{"PUT", "/v1/relays/%s"},
	{"POST", "/v1/rooms/%s/stop"},
	{"DELETE", "/v1/relays/%s"},
}

// FuzzHTTPAPI sends arbitrary bodies (and path arguments) to the HTTP API's
// writes, through the server's real handler, with an admin token (or, for
// a few inputs, none or a viewer's). Each input gets its own room {room},
// hosted by alice, with a pending invitation {inv} for bob; the host of
// room fzsrc is connected all along, so that a relay can start from it
// (into {room}). A relay an input starts is stopped after it.
//
// Invariants: nothing panics; the answer is a JSON success (2xx), or a 4xx
// JSON error whose code maps to that status; never a 5xx; after an error
// no room, invitation or relay was created and the input's room and
// invitation are as they were; a success did what it says.
func FuzzHTTPAPI(f *testing.F) {
	for _, s := range []struct {
		route     uint8
		arg, body string
	}{
		{0, "", `{"name":"show2","host":"alice","title":"The show","metadata":{"k":"v"}}`},
		{0, "", `{"name":"{room}","host":"alice"}`},
		{0, "", `{"name":"a b","host":"alice"}`},
		{0, "", `{"name":"x","host":"alice","record":true}`},
		{0, "", `{"name":"x","host":"alice","metadata":[1,2]}`},
		{0, "", `{"name":5}`},
		{1, "", `{"identity":"alice","room":"{room}","role":"host","name":"Alice","ttl":"1h"}`},
		{1, "", `{"identity":"bob","room":"{room}","ttl":3600}`},
		{1, "", `{"identity":"carol"}`},
		{1, "", `{"identity":"carol","role":"cohost"}`},
		{1, "", `{"identity":"carol","ttl":-1}`},
		{1, "", `{"identity":"carol","ttl":"9999999h"}`},
		{1, "", `{"identity":"carol","ttl":1e300}`},
		{2, "{room}", `{"user":"carol"}`},
		{2, "{room}", `{"user":"bob"}`},
		{2, "{room}", `{"user":"alice"}`},
		{2, "nope", `{"user":"carol"}`},
		{2, "{room}", `{}`},
		{3, "{inv}/accept", ``},
		{3, "{inv}/reject", `{}`},
		{3, "{inv}/cancel", ``},
		{3, "{inv}/ACCEPT", ``},
		{3, "{inv}/explode", ``},
		{3, "inv_nope/accept", ``},
		{4, "", `{"source":{"room":"{room}","identity":"alice"},"destinations":[{"room":"r2","identity":"alice"}]}`},
		{4, "", `{"source":{"room":"fzsrc","identity":"sam"},"destinations":[{"room":"{room}","identity":"sam"}]}`},
		{4, "", `{"source":{"room":"fzsrc","identity":"sam"},"destinations":[{"room":"{room}","identity":"sam"},{"room":"nope","identity":"sam"}]}`},
		{4, "", `{"source":{"room":"fzsrc","identity":"sam"},"destinations":[{"room":"fzsrc","identity":"sam"}]}`},
		{4, "", `{"source":{"room":"fzsrc","identity":"sam"},"destinations":[{"room":"{room}","identity":"sam"},{"room":"{room}","identity":"x"}]}`},
		{4, "", `{"source":{"room":"fzsrc","identity":"sam"},"destinations":[{"room":"a"},{"room":"b"},{"room":"c"},{"room":"d"},{"room":"e"}]}`},
		{4, "", `{"source":{"room":"{room}"},"destinations":[]}`},
		{5, "rl_1", `{"destinations":[{"room":"r2","identity":"alice"}]}`},
		{6, "{room}", ``},
		{7, "rl_1", ``},
		{0x40, "", `{"name":"y","host":"alice"}`}, // no token
		{0x80, "", `{"name":"y","host":"alice"}`}, // a viewer's token
		{0, "", `{"name":"x","host":"alice"}` + strings.Repeat(" ", maxBody)},
		{0, "", `not json`},
		{0, "", ``},
		{1, "", `[]`},
	} {
		f.Add(s.route, s.arg, []byte(s.body))
	}

	dir := fuzzDataDir(f)
	ts := newTestServer(f, func(o *serverOpts) { o.dataDir = dir })
	h := ts.Srv.Handler()
	relaySource(f, ts, "sam", "fzsrc")
	tokens := map[uint8]string{0: "Bearer " + ts.adminToken(f), 1: "", 2: "Bearer " + ts.token(f, "bob", "x", "viewer")}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, route uint8, arg string, body []byte) {
		r := apiRoutes[int(route&0x3f)%len(apiRoutes)]
		auth := tokens[(route>>6)%3]
		room := fmt.Sprintf("fzapi%d", n.Add(1))
		if _, err := ts.SFU.CreateRoom(room, "alice", "", ""); err != nil {
			t.Fatal(err)
		}
		inv, _, err := ts.Inv.Create(room, "alice", "alice", "bob")
		if err != nil {
			t.Fatal(err)
		}
		fill := strings.NewReplacer("{room}", room, "{inv}", inv.ID)
		path := r.path
		if strings.Contains(path, "%s") {
			segs := strings.SplitN(fill.Replace(arg), "/", 2)
			for i := range segs {
				segs[i] = url.PathEscape(segs[i])
			}
			path = fmt.Sprintf(path, strings.Join(segs, "/"))
		}
		body = []byte(fill.Replace(string(body)))

		before := apiState(t, ts, room, inv.ID)
		req := httptest.NewRequest(r.method, "http://relayd.test"+path, bytes.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		after := apiState(t, ts, room, inv.ID)
		for _, rl := range ts.Rooms.Relays().List() {
			if r := ts.Rooms.Relays().Get(rl.ID); r != nil {
				r.Stop()
			}
		}

		status := w.Code
		what := fmt.Sprintf("%s %s %q", r.method, path, body)
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			switch status {
			case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
				// The mux's own answer to a path that is no route, or
				// not a clean one (an argument with a slash, an empty
				// segment, dot segments).
				if before != after {
					t.Fatalf("%s: no route, yet %+v became %+v", what, before, after)
				}
				return
			}
			t.Fatalf("%s: %d with Content-Type %q: %s", what, status, ct, w.Body.Bytes())
		}
		if status >= 200 && status < 300 {
			var out any
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("%s: %d with a body that is not JSON: %q", what, status, w.Body.Bytes())
			}
			checkAPISuccess(t, ts, r.path, what, body, w.Body.Bytes(), before, after)
			return
		}
		var e struct {
			Error *Error `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Message == "" {
			t.Fatalf("%s: %d with body %q: want {\"error\": {code, message}}", what, status, w.Body.Bytes())
		}
		if status < 400 || status >= 500 || httpStatus(e.Error.Code) != status {
			t.Fatalf("%s: status %d for error %d %q", what, status, e.Error.Code, e.Error.Message)
		}
		if goTypeInMessage(e.Error.Message) {
			t.Fatalf("%s: error %q names a Go type", what, e.Error.Message)
		}
		if before != after {
			t.Fatalf("%s: answered %d %q, yet %+v became %+v", what, status, e.Error.Message, before, after)
		}
	})
}

// apiView is what an HTTP API write can change: the counts of open rooms
// and of relays, the invitation transitions committed, and the input's own
// room and invitation.
type apiView struct {
	rooms, relays, transitions int
	roomStatus                 string
	invStatus                  invitations.Status
}

var invStatuses = []invitations.Status{
	invitations.StatusPending, invitations.StatusAccepted, invitations.StatusRejected, invitations.StatusCancelled,
	invitations.StatusExpired, invitations.StatusRemoved, invitations.StatusLeft,
}

func apiState(t *testing.T, ts *testServer, room, invID string) apiView {
	t.Helper()
	// Rooms open, from the gauge: counting ts.SFU.Rooms() sorts them all,
	// which made each input slower than the last.
	v := apiView{relays: len(ts.Rooms.Relays().List())}
	for _, st := range []string{"idle", "live", "waiting_reconnect"} {
		v.rooms += int(testutil.ToFloat64(ts.Metrics.Rooms.WithLabelValues(st)))
	}
	for _, st := range invStatuses {
		v.transitions += int(testutil.ToFloat64(ts.Metrics.Invitations.WithLabelValues(string(st))))
	}
	if r := ts.SFU.Room(room); r != nil {
		v.roomStatus = string(r.Status())
	}
	inv, err := ts.Inv.Get(invID)
	if err != nil {
		t.Fatal(err)
	}
	v.invStatus = inv.Status
	return v
}

// checkAPISuccess checks that a 2xx answer did what it says.
func checkAPISuccess(t *testing.T, ts *testServer, route, what string, body, answer []byte, before, after apiView) {
	t.Helper()
	switch route {
	case "/v1/rooms":
		var info struct{ Name, Host string }
		_ = json.Unmarshal(answer, &info)
		if r := ts.SFU.Room(info.Name); r == nil || r.Host() != info.Host || after.rooms != before.rooms+1 {
			t.Fatalf("%s: answered %s, rooms %d -> %d", what, answer, before.rooms, after.rooms)
		}
	case "/v1/tokens":
		var in struct{ Identity, Room, Role string }
		_ = json.Unmarshal(body, &in)
		var out struct{ Token string }
		_ = json.Unmarshal(answer, &out)
		c, err := ts.Tokens.Verify(out.Token)
		if err != nil {
			t.Fatalf("%s: the token issued does not verify: %v", what, err)
		}
		if c.Identity() != in.Identity || c.Room != in.Room || c.Admin || (in.Role != "" && c.Role != in.Role) {
			t.Fatalf("%s: issued %+v", what, c)
		}
	case "/v1/rooms/%s/invitations":
		var inv invitations.Invitation
		_ = json.Unmarshal(answer, &inv)
		if got, err := ts.Inv.Get(inv.ID); err != nil || got.Status != inv.Status {
			t.Fatalf("%s: answered %s, stored %+v (%v)", what, answer, got, err)
		}
	case "/v1/invitations/%s":
		var inv invitations.Invitation
		_ = json.Unmarshal(answer, &inv)
		if got, err := ts.Inv.Get(inv.ID); err != nil || got.Status != inv.Status || got.Status == invitations.StatusPending {
			t.Fatalf("%s: answered %s, stored %+v (%v)", what, answer, got, err)
		}
	}
}

// relaySource connects identity as the host of room for the whole fuzz
// run, reading (and dropping) what the server sends it.
func relaySource(f *testing.F, ts *testServer, identity, room string) {
	c, _, err := websocket.DefaultDialer.Dial(ts.wsURL(ts.token(f, identity, room, "host")), nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"join"}`)); err != nil {
		f.Fatal(err)
	}
	joined := make(chan bool, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				if first {
					joined <- false
				}
				return
			}
			if first {
				first = false
				joined <- strings.Contains(string(b), `"result"`)
			}
		}
	}()
	f.Cleanup(func() {
		_ = c.Close()
		<-done
	})
	if !<-joined {
		f.Fatalf("%s could not join %s", identity, room)
	}
}
