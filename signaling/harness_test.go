package signaling

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/rooms"
	"github.com/relaysfu/relayd/sfu"
)

// testServer is a real relayd stack on loopback: sfu on an ephemeral UDP
// port with loopback-only ICE, rooms over bbolt stores, signaling on an
// httptest server.
type testServer struct {
	URL     string
	SFU     *sfu.SFU
	Rooms   *rooms.Rooms
	Srv     *Server
	Tokens  *Tokens
	Metrics *metrics.Metrics
	Inv     *invitations.Manager
	Store   invitations.Store
}

type serverOpts struct {
	grace      time.Duration
	isCohost   func(room, identity string) bool
	maxCohosts int
	dataDir    string
	createRate int              // --room-create-rate (0: no limit)
	createNow  func() time.Time // its clock (nil: time.Now)
	params     func(*Params)    // adjusts the server's Params
	noRecorder bool             // rooms without a data directory: no recorder
}

func newTestServer(t testing.TB, opts ...func(*serverOpts)) *testServer {
	t.Helper()
	o := serverOpts{grace: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api, mux, err := sfu.NewAPI(sfu.MediaConfig{UDPConn: udp, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	dir := o.dataDir
	if dir == "" {
		dir = t.TempDir()
	}
	store, err := invitations.OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	chats, err := chat.OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	tokens := NewTokens([]byte("test-secret-0123456789"))
	recDir := dir
	if o.noRecorder {
		recDir = ""
	}
	var rms *rooms.Rooms
	hostOf := func(room string) (string, bool) { return rms.HostOf(room) }
	rms, err = rooms.New(rooms.Config{
		Media:          sfu.Config{API: api, ReconnectGrace: o.grace, Metrics: m},
		Invitations:    invitations.Config{Store: store, MaxCohosts: o.maxCohosts, Metrics: m},
		Chat:           chats,
		AuthorizeRelay: RelayAuthorizer(tokens, hostOf),
		DataDir:        recDir,
		RoomCreateRate: o.createRate,
		Now:            o.createNow,
		IsCohost:       o.isCohost,
	})
	if err != nil {
		t.Fatal(err)
	}
	params := Params{Rooms: rms, Tokens: tokens, Metrics: m}
	if o.params != nil {
		o.params(&params)
	}
	srv := NewServer(params)
	ctx, cancel := context.WithCancel(context.Background())
	sweeper := make(chan struct{})
	go func() {
		defer close(sweeper)
		rms.Run(ctx)
	}()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		rms.Close()
		srv.Close(5 * time.Second)
		hs.Close()
		cancel()
		<-sweeper
		_ = store.Close()
		_ = chats.Close()
		_ = mux.Close()
		_ = udp.Close()
	})
	return &testServer{URL: hs.URL, SFU: rms.SFU(), Rooms: rms, Srv: srv, Tokens: tokens, Metrics: m, Inv: rms.Invitations(), Store: store}
}

// withCohosts stands in for accepted invitations: identity -> rooms.
func withCohosts(m map[string][]string) func(*serverOpts) {
	return func(o *serverOpts) {
		o.isCohost = func(room, identity string) bool {
			for _, r := range m[identity] {
				if r == room {
					return true
				}
			}
			return false
		}
	}
}

func withGrace(d time.Duration) func(*serverOpts) { return func(o *serverOpts) { o.grace = d } }

func (ts *testServer) token(t testing.TB, identity, room, role string) string {
	t.Helper()
	tok, err := ts.Tokens.Issue(TokenSpec{Identity: identity, Room: room, Role: role, Name: strings.ToUpper(identity), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (ts *testServer) adminToken(t testing.TB) string {
	t.Helper()
	tok, err := ts.Tokens.Issue(TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (ts *testServer) wsURL(token string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/ws?token=" + url.QueryEscape(token)
}

// rawConn is a bare WebSocket for tests of the wire format itself.
type rawConn struct {
	t *testing.T
	*websocket.Conn
}

func (ts *testServer) dialRaw(t *testing.T, token string) *rawConn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(ts.wsURL(token), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, status)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, Conn: c}
}

// rpcReply is a decoded response.
type rpcReply struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

// send writes one frame and returns the next response (notifications and
// server requests are skipped).
func (c *rawConn) send(frame string) rpcReply {
	c.t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return c.next()
}

func (c *rawConn) next() rpcReply {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		var r rpcReply
		if err := json.Unmarshal(b, &r); err != nil {
			c.t.Fatalf("server sent non-JSON %q", b)
		}
		if r.Method != "" {
			continue
		}
		return r
	}
}

// wantError checks a reply is the error code, with the id given.
func wantError(t *testing.T, r rpcReply, code int, id string) {
	t.Helper()
	if r.Error == nil {
		t.Fatalf("want error %d, got result %s", code, r.Result)
	}
	if r.Error.Code != code {
		t.Fatalf("want error %d, got %d %q", code, r.Error.Code, r.Error.Message)
	}
	if string(r.ID) != id {
		t.Fatalf("error id = %s, want %s", r.ID, id)
	}
}

func httpDo(t *testing.T, method, u, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
