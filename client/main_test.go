package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeServer is a tiny JSON-RPC WebSocket server on 127.0.0.1 for tests.
type fakeServer struct {
	*httptest.Server
	mu       sync.Mutex
	lastRq   *http.Request
	handlers sync.WaitGroup // upgraded connections (httptest does not wait for hijacked ones)
}

// fakeConn is the server side of one WebSocket.
type fakeConn struct {
	ws *websocket.Conn
	mu sync.Mutex
}

func (f *fakeConn) send(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Errorf("marshal: %v", err)
		return
	}
	f.sendRaw(b)
}

func (f *fakeConn) sendRaw(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.ws.WriteMessage(websocket.TextMessage, b)
}

func (f *fakeConn) closeWith(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
}

// inMsg is any message the fake server reads.
type inMsg struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
	raw    []byte
}

func (f *fakeConn) read() (inMsg, error) {
	_, b, err := f.ws.ReadMessage()
	if err != nil {
		return inMsg{}, err
	}
	var m inMsg
	_ = json.Unmarshal(b, &m)
	m.raw = b
	return m, nil
}

func (f *fakeConn) result(t testing.TB, id json.RawMessage, result any) {
	f.send(t, map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
}

func (f *fakeConn) fail(t testing.TB, id json.RawMessage, code int, msg string) {
	f.send(t, map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}})
}

func (f *fakeConn) notify(t testing.TB, method string, params any) {
	f.send(t, map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

// newFakeServer serves /v1/ws: requests without token "good" get 401, the
// others are upgraded and handed to handle, which owns the connection until
// it returns.
func newFakeServer(t *testing.T, handle func(*fakeConn)) *fakeServer {
	t.Helper()
	fs := &fakeServer{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/ws", func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		fs.lastRq = r
		fs.mu.Unlock()
		if r.URL.Query().Get("token") != "good" {
			http.Error(w, `{"error":{"code":4001,"message":"bad token"}}`, http.StatusUnauthorized)
			return
		}
		// Counted under mu (before the 101 goes out) so the cleanup's
		// Wait is ordered after it, also for the race detector.
		fs.mu.Lock()
		fs.handlers.Add(1)
		fs.mu.Unlock()
		defer fs.handlers.Done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		handle(&fakeConn{ws: ws})
	})
	fs.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		fs.Close()
		fs.mu.Lock()
		fs.mu.Unlock() //nolint:staticcheck // orders the handlers' Add before Wait
		fs.handlers.Wait()
	})
	return fs
}

func (fs *fakeServer) request() *http.Request {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.lastRq
}

func dialTest(t *testing.T, url string, opts Options) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, "good", opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
