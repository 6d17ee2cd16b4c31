package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echoServer answers "echo" with {id, params}, "fail" with 4003 and data,
// "slow" after 300 ms, "notify3" with three notifications then {}, "bye" by
// closing with 4003, "drop" by cutting the TCP connection, and "ping"
// notifications with a "pong" notification.
func echoServer(t *testing.T) *fakeServer {
	return newFakeServer(t, func(fc *fakeConn) {
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			m, err := fc.read()
			if err != nil {
				return
			}
			switch m.Method {
			case "echo":
				fc.result(t, m.ID, map[string]any{"id": m.ID, "params": m.Params})
			case "fail":
				fc.send(t, map[string]any{"jsonrpc": "2.0", "id": m.ID,
					"error": map[string]any{"code": 4003, "message": "forbidden", "data": map[string]int{"x": 1}}})
			case "slow":
				wg.Add(1)
				go func(id json.RawMessage) {
					defer wg.Done()
					time.Sleep(300 * time.Millisecond)
					fc.result(t, id, map[string]string{"late": "yes"})
				}(m.ID)
			case "notify3":
				fc.notify(t, "a", map[string]int{"n": 1})
				fc.notify(t, "b", map[string]int{"n": 2})
				fc.notify(t, "a", map[string]int{"n": 3})
				fc.result(t, m.ID, map[string]any{})
			case "bye":
				fc.closeWith(4003)
			case "drop":
				_ = fc.ws.UnderlyingConn().Close()
				return
			case "ping":
				fc.notify(t, "pong", m.Params)
			case "flood":
				for i := range 1100 {
					fc.notify(t, "f", map[string]int{"i": i})
				}
				fc.result(t, m.ID, map[string]any{})
			default:
				if strings.HasPrefix(strings.TrimSpace(string(m.raw)), "[") {
					fc.sendRaw([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch"}}`))
					continue
				}
				if len(m.ID) > 0 {
					fc.fail(t, m.ID, CodeMethodNotFound, "unknown")
				}
			}
		}
	})
}

func TestDialHTTPError(t *testing.T) {
	fs := echoServer(t)
	for _, token := range []string{"bad", ""} {
		c, err := Dial(testCtx(t, 5*time.Second), fs.URL, token, Options{})
		if c != nil {
			_ = c.Close()
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || !strings.Contains(he.Body, "4001") {
			t.Fatalf("token %q: want *HTTPError 401, got %v", token, err)
		}
	}
	if q := fs.request().URL.RawQuery; q != "" {
		t.Errorf("empty token should send no query, got %q", q)
	}
}

func TestDialURLAndHeader(t *testing.T) {
	fs := echoServer(t)
	c := dialTest(t, fs.URL+"/", Options{Header: http.Header{"Origin": {"http://example.test"}}})
	r := fs.request()
	if r.URL.Path != "/v1/ws" || r.URL.Query().Get("token") != "good" {
		t.Errorf("got %s", r.URL)
	}
	if o := r.Header.Get("Origin"); o != "http://example.test" {
		t.Errorf("Origin = %q", o)
	}
	if c.CloseCode() != 0 {
		t.Errorf("CloseCode while open = %d", c.CloseCode())
	}
	if _, err := wsURL("ftp://x", "t"); err == nil {
		t.Error("ftp scheme accepted")
	}
	if u, _ := wsURL("https://h:1/pre", "a b"); u != "wss://h:1/pre/v1/ws?token=a+b" {
		t.Errorf("wsURL = %s", u)
	}
}

func TestCallResultsErrorsAndIDs(t *testing.T) {
	fs := echoServer(t)
	c := dialTest(t, fs.URL, Options{})
	ctx := testCtx(t, 5*time.Second)

	var r struct {
		ID     json.RawMessage `json:"id"`
		Params json.RawMessage `json:"params"`
	}
	if err := c.Call(ctx, "echo", map[string]int{"k": 7}, &r); err != nil {
		t.Fatal(err)
	}
	if string(r.ID) != "1" || string(r.Params) != `{"k":7}` {
		t.Errorf("first call: id %s params %s", r.ID, r.Params)
	}
	if err := c.Call(ctx, "echo", nil, &r); err != nil {
		t.Fatal(err)
	}
	if string(r.ID) != "2" || string(r.Params) != `{}` {
		t.Errorf("nil params: id %s params %s", r.ID, r.Params)
	}

	err := c.Call(ctx, "fail", nil, nil)
	var re *RPCError
	if !errors.As(err, &re) || re.Code != 4003 || re.Message != "forbidden" || string(re.Data) != `{"x":1}` {
		t.Fatalf("want RPCError 4003, got %#v", err)
	}
	if ErrorCode(err) != CodeForbidden || ErrorCode(errors.New("x")) != 0 {
		t.Error("ErrorCode")
	}

	// Concurrent calls get distinct ids and their own results.
	const n = 50
	ids := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r struct {
				ID     int `json:"id"`
				Params struct {
					I int `json:"i"`
				} `json:"params"`
			}
			if err := c.Call(ctx, "echo", map[string]int{"i": i}, &r); err != nil {
				t.Error(err)
				return
			}
			if r.Params.I != i {
				t.Errorf("call %d got result of %d", i, r.Params.I)
			}
			ids[i] = r.ID
		}()
	}
	wg.Wait()
	sort.Ints(ids)
	for i, id := range ids {
		if id != i+4 {
			t.Fatalf("ids not 4..%d: %v", n+3, ids)
		}
	}
}

func TestNotificationsAndBacklog(t *testing.T) {
	fs := echoServer(t)
	c := dialTest(t, fs.URL, Options{})
	ctx := testCtx(t, 5*time.Second)
	if err := c.Call(ctx, "notify3", nil, nil); err != nil {
		t.Fatal(err)
	}
	n := func(want int) func(json.RawMessage) bool {
		return func(p json.RawMessage) bool {
			var v struct{ N int }
			return json.Unmarshal(p, &v) == nil && v.N == want
		}
	}
	// Out of order: the later "a" first, then "b", then the earlier "a".
	got, err := c.WaitNotification(ctx, "a", n(3))
	if err != nil || string(got.Params) != `{"n":3}` {
		t.Fatalf("a3: %v %s", err, got.Params)
	}
	if got, err = c.WaitNotification(ctx, "b", nil); err != nil || string(got.Params) != `{"n":2}` {
		t.Fatalf("b: %v %s", err, got.Params)
	}
	if got, err = c.WaitNotification(ctx, "a", nil); err != nil || string(got.Params) != `{"n":1}` {
		t.Fatalf("a1: %v %s", err, got.Params)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.WaitNotification(short, "a", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("consumed notification seen again: %v", err)
	}

	// The channel is an independent view with all three in order.
	for _, want := range []string{`a{"n":1}`, `b{"n":2}`, `a{"n":3}`} {
		select {
		case got := <-c.Notifications():
			if got.Method+string(got.Params) != want {
				t.Fatalf("channel: got %s%s want %s", got.Method, got.Params, want)
			}
		case <-ctx.Done():
			t.Fatal("channel empty")
		}
	}

	// A waiter that starts before the notification arrives.
	done := make(chan error, 1)
	go func() {
		got, err := c.WaitNotification(ctx, "pong", nil)
		if err == nil && string(got.Params) != `{"x":"y"}` {
			err = fmt.Errorf("pong params %s", got.Params)
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := c.Notify("ping", map[string]string{"x": "y"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var p struct{ X string }
	if err := got.Decode(&p); err != nil {
		t.Fatal(err)
	}
}

func TestNotificationsOverflowDropsOldest(t *testing.T) {
	fs := echoServer(t)
	c := dialTest(t, fs.URL, Options{})
	if err := c.Call(testCtx(t, 5*time.Second), "flood", nil, nil); err != nil {
		t.Fatal(err)
	}
	if d := c.DroppedNotifications(); d != 1100-notifyBuffer {
		t.Errorf("dropped = %d", d)
	}
	first := <-c.Notifications()
	if string(first.Params) != fmt.Sprintf(`{"i":%d}`, 1100-notifyBuffer) {
		t.Errorf("oldest kept = %s", first.Params)
	}
	if len(c.Notifications()) != notifyBuffer-1 {
		t.Errorf("len = %d", len(c.Notifications()))
	}
}

func TestRawFrames(t *testing.T) {
	fs := echoServer(t)
	c := dialTest(t, fs.URL, Options{})
	ctx := testCtx(t, 5*time.Second)
	next := func() string {
		select {
		case m := <-c.Raw():
			return string(m)
		case <-ctx.Done():
			t.Fatal("no raw frame")
			return ""
		}
	}
	if err := c.SendRaw([]byte(`[{"jsonrpc":"2.0","id":1,"method":"echo"}]`)); err != nil {
		t.Fatal(err)
	}
	if got := next(); !strings.Contains(got, `"id":null`) || !strings.Contains(got, "-32600") {
		t.Errorf("batch answer: %s", got)
	}
	if err := c.SendRaw([]byte(`{"jsonrpc":"2.0","id":"abc","method":"nope"}`)); err != nil {
		t.Fatal(err)
	}
	if got := next(); !strings.Contains(got, `"id":"abc"`) || !strings.Contains(got, "-32601") {
		t.Errorf("string id answer: %s", got)
	}
	if err := c.SendRaw([]byte(`{"jsonrpc":"2.0","id":999,"method":"echo","params":{}}`)); err != nil {
		t.Fatal(err)
	}
	if got := next(); !strings.Contains(got, `"result"`) {
		t.Errorf("unmatched numeric id: %s", got)
	}
}

func TestCallTimeoutDropsLateResponse(t *testing.T) {
	fs := echoServer(t)
	c := dialTest(t, fs.URL, Options{})
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Call(short, "slow", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline, got %v", err)
	}
	// The late response must not show up as raw; the next call still works.
	time.Sleep(400 * time.Millisecond)
	select {
	case m := <-c.Raw():
		t.Fatalf("late response on Raw: %s", m)
	default:
	}
	if err := c.Call(testCtx(t, 5*time.Second), "echo", nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestServerRequests(t *testing.T) {
	answers := make(chan inMsg, 4)
	fs := newFakeServer(t, func(fc *fakeConn) {
		fc.send(t, map[string]any{"jsonrpc": "2.0", "id": "s1", "method": "mystery", "params": map[string]any{}})
		fc.send(t, map[string]any{"jsonrpc": "2.0", "id": 7, "method": "offer", "params": map[string]any{"sdp": "garbage"}})
		fc.send(t, map[string]any{"jsonrpc": "2.0", "id": 8, "method": "offer"})
		for {
			m, err := fc.read()
			if err != nil {
				return
			}
			answers <- m
		}
	})
	c := dialTest(t, fs.URL, Options{})
	ctx := testCtx(t, 5*time.Second)
	want := map[string]int{`"s1"`: CodeMethodNotFound, `7`: CodeInvalidParams, `8`: CodeInvalidParams}
	for range 3 {
		select {
		case m := <-answers:
			code, ok := want[string(m.ID)]
			if !ok || m.Error == nil || m.Error.Code != code {
				t.Errorf("answer %s", m.raw)
			}
			delete(want, string(m.ID))
		case <-ctx.Done():
			t.Fatalf("missing answers: %v", want)
		}
	}
	if c.SubscriberOffers() != 0 {
		t.Error("bad offers counted")
	}
}

func TestCloseCodes(t *testing.T) {
	fs := echoServer(t)
	ctx := testCtx(t, 5*time.Second)

	c := dialTest(t, fs.URL, Options{})
	waitErr := make(chan error, 1)
	go func() {
		_, err := c.WaitNotification(ctx, "never", nil)
		waitErr <- err
	}()
	err := c.Call(ctx, "bye", nil, nil)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("pending call: want ErrClosed, got %v", err)
	}
	<-c.Closed()
	if c.CloseCode() != 4003 {
		t.Errorf("CloseCode = %d, want 4003", c.CloseCode())
	}
	if err := <-waitErr; !errors.Is(err, ErrClosed) {
		t.Errorf("WaitNotification: %v", err)
	}
	if err := c.Notify("x", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Notify after close: %v", err)
	}

	c2 := dialTest(t, fs.URL, Options{})
	if err := c2.Call(ctx, "drop", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("want ErrClosed, got %v", err)
	}
	if c2.CloseCode() != websocket.CloseAbnormalClosure {
		t.Errorf("CloseCode = %d, want 1006", c2.CloseCode())
	}

	c3 := dialTest(t, fs.URL, Options{})
	if err := c3.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c3.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c3.CloseCode() != websocket.CloseNormalClosure {
		t.Errorf("own close: code %d", c3.CloseCode())
	}
	if err := c3.Call(ctx, "echo", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Close: %v", err)
	}
}

func TestOptionsExclusive(t *testing.T) {
	api, err := NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Dial(context.Background(), "http://127.0.0.1:1", "good", Options{API: api, ReceiveDrop: func(uint16) bool { return false }})
	if err == nil {
		t.Fatal("API + ReceiveDrop accepted")
	}
}

// WaitNotification runs match outside its lock: a match may take its time,
// and even use the client, while the reader goes on receiving (here the
// "pong" the match's "ping" causes, then the answer to its call).
func TestWaitNotificationMatchUnlocked(t *testing.T) {
	fs := echoServer(t)
	c := dialTest(t, fs.URL, Options{})
	ctx := testCtx(t, 10*time.Second)
	if err := c.Call(ctx, "notify3", nil, nil); err != nil {
		t.Fatal(err)
	}
	var callErr error
	got, err := c.WaitNotification(ctx, "a", func(json.RawMessage) bool {
		if callErr = c.Notify("ping", map[string]int{"from": 1}); callErr != nil {
			return false
		}
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		callErr = c.Call(short, "echo", nil, nil)
		return callErr == nil
	})
	if err != nil || callErr != nil || string(got.Params) != `{"n":1}` {
		t.Fatalf("got %s, %v; the match's call: %v", got.Params, err, callErr)
	}
	if _, err := c.WaitNotification(ctx, "pong", nil); err != nil {
		t.Fatal(err)
	}
}

// WaitEvent decodes the params, skips those that do not decode into its
// type, and takes only the one it returns.
func TestWaitEvent(t *testing.T) {
	fs := echoServer(t)
	c := dialTest(t, fs.URL, Options{})
	ctx := testCtx(t, 5*time.Second)
	if err := c.Call(ctx, "notify3", nil, nil); err != nil {
		t.Fatal(err)
	}
	type n struct{ N int }
	if v, err := WaitEvent(ctx, c, "a", func(v n) bool { return v.N == 3 }); err != nil || v.N != 3 {
		t.Fatalf("a3: %+v, %v", v, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if v, err := WaitEvent[struct{ N string }](short, c, "b", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("params of another type matched: %+v, %v", v, err)
	}
	if v, err := WaitEvent[n](ctx, c, "a", nil); err != nil || v.N != 1 {
		t.Fatalf("a1: %+v, %v", v, err)
	}
	if v, err := WaitEvent[n](ctx, c, "b", nil); err != nil || v.N != 2 {
		t.Fatalf("b: %+v, %v", v, err)
	}
}
