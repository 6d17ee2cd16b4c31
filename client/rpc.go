package client

// JSON-RPC 2.0 over one WebSocket: request ids, responses, server
// notifications and server requests, raw frames and the close code.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

const (
	writeTimeout     = 10 * time.Second
	notifyBuffer     = 1024 // Notifications() channel
	rawBuffer        = 256  // Raw() channel
	backlogLimit     = 8192 // WaitNotification backlog
	clientReadLimit  = 16 << 20
	closeReplyWait   = time.Second
	closeCodeUnknown = websocket.CloseAbnormalClosure // 1006
)

// ErrClosed is returned (wrapped) by calls made on, or pending when, the
// WebSocket closes.
var ErrClosed = errors.New("client: connection closed")

// RPCError is a JSON-RPC error response (docs/protocol.md §7.10, §9.1).
// The HTTP API's error bodies carry the same object (see HTTPError).
type RPCError struct {
	// Code is a JSON-RPC code (-32700 to -32603) or one of relayd's (4001,
	// 4003, 4004, 4009, 4013, 4029): the Code* constants. Act on it.
	Code int `json:"code"`
	// Message is for people.
	Message string `json:"message"`
	// Data is the optional data member, as received.
	Data json.RawMessage `json:"data,omitempty"`
}

// Error returns "rpc error <code>: <message>".
func (e *RPCError) Error() string {
	return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message)
}

// ErrorCode returns the code of err if it is or wraps an *RPCError (a
// JSON-RPC error, or the error object of an *HTTPError), else 0.
func ErrorCode(err error) int {
	var re *RPCError
	if errors.As(err, &re) {
		return re.Code
	}
	return 0
}

// HTTPError is an HTTP error answer: Dial gets one when the server refuses
// the WebSocket upgrade (401 for a bad token, 403 for a refused Origin, 409
// while the server drains), and Admin's methods get one for every refused
// request.
type HTTPError struct {
	// Op is what was refused: "websocket upgrade", "POST /v1/rooms", ...
	Op string
	// Status is the HTTP status code.
	Status int
	// Body is the answer's body as received (at most 64 KiB).
	Body string
	// Err is the body's error object, {"error": {code, message}}, when it
	// has one (relayd's answers do); nil otherwise. Unwrap returns it, so
	// ErrorCode and errors.As see it.
	Err *RPCError
}

// newHTTPError reads the error object of a refusal's body, if it has one.
func newHTTPError(op string, status int, body []byte) *HTTPError {
	e := &HTTPError{Op: op, Status: status, Body: string(body)}
	var wrapped struct {
		Error *RPCError `json:"error"`
	}
	if json.Unmarshal(body, &wrapped) == nil && wrapped.Error != nil {
		e.Err = wrapped.Error
	}
	return e
}

// Error returns "<op> refused: HTTP <status>: <body>".
func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s refused: HTTP %d: %s", e.Op, e.Status, strings.TrimSpace(e.Body))
}

// Unwrap returns the body's error object (nil if it had none).
func (e *HTTPError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// Notification is a server notification (a message with a method and no id).
type Notification struct {
	Method string          // NotifyParticipantJoined, ...
	Params json.RawMessage // decode with Decode into the method's params type
	// Seq is params.seq in a 1.1 session (§4.5): 1 for the first
	// notification after the join result, +1 each; 0 for trickle and in a
	// 1.0 session.
	Seq uint64
}

// Decode unmarshals the notification's params into v.
func (n Notification) Decode(v any) error {
	return json.Unmarshal(n.Params, v)
}

// wsURL turns http(s)://host:port[/prefix] into ws(s)://host:port[/prefix]/v1/ws?token=...
// ws:// and wss:// are accepted as they are. An empty token sends no token
// parameter at all.
func wsURL(baseURL, token string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", fmt.Errorf("client: bad base URL %q: %w", baseURL, err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("client: bad base URL %q: scheme must be http, https, ws or wss", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/ws"
	q := url.Values{}
	if token != "" {
		q.Set("token", token)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

type rpcResponse struct {
	result json.RawMessage
	err    *RPCError
}

// wireMessage is any inbound JSON-RPC message.
type wireMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

type outRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      int64  `json:"id"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

type outNotification struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

type outResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *RPCError       `json:"error,omitempty"`
}

// Call sends a JSON-RPC request and waits for its response. params nil is
// sent as {}. result may be nil. A JSON-RPC error is returned as *RPCError; a
// socket that closes first gives an error wrapping ErrClosed. Ids are numbers
// counting from 1. If ctx ends first the response, when it comes, is dropped.
func (c *Client) Call(ctx context.Context, method string, params any, result any) error {
	return c.call(ctx, method, params, result, nil)
}

// call is Call with a hook run right after the request frame was written
// (used to release trickle candidates only once the offer is on the wire).
func (c *Client) call(ctx context.Context, method string, params any, result any, afterSend func()) error {
	return c.callID(ctx, c.nextID.Add(1), method, params, result, afterSend)
}

// callID is call with the request id taken already (a resume's join,
// whose result the socket's reader must recognize).
func (c *Client) callID(ctx context.Context, id int64, method string, params any, result any, afterSend func()) error {
	if params == nil {
		params = struct{}{}
	}
	ch := make(chan rpcResponse, 1)
	c.pendMu.Lock()
	c.pending[id] = ch
	c.pendMu.Unlock()

	ws := c.ws.Load()
	if err := c.writeJSON(outRequest{JSONRPC: "2.0", ID: id, Method: method, Params: params}); err != nil {
		c.pendMu.Lock()
		delete(c.pending, id)
		c.pendMu.Unlock()
		return err
	}
	if afterSend != nil {
		afterSend()
	}
	c.log.Debug("rpc call", "id", id, "method", method)

	select {
	case resp := <-ch:
		if resp.err != nil {
			return resp.err
		}
		if result != nil {
			if err := json.Unmarshal(resp.result, result); err != nil {
				return fmt.Errorf("client: decoding %s result: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.abandon(id)
		return ctx.Err()
	case <-ws.closed:
		// A response that raced with the close is still good.
		select {
		case resp := <-ch:
			if resp.err != nil {
				return resp.err
			}
			if result != nil {
				return json.Unmarshal(resp.result, result)
			}
			return nil
		default:
		}
		c.abandon(id)
		return c.closedErr()
	}
}

func (c *Client) abandon(id int64) {
	c.pendMu.Lock()
	if _, ok := c.pending[id]; ok {
		delete(c.pending, id)
		c.abandoned[id] = struct{}{}
	}
	c.pendMu.Unlock()
}

func (c *Client) closedErr() error {
	return fmt.Errorf("%w (code %d)", ErrClosed, c.CloseCode())
}

// Notify sends a notification (no id). params nil is sent as {}.
func (c *Client) Notify(method string, params any) error {
	if params == nil {
		params = struct{}{}
	}
	return c.writeJSON(outNotification{JSONRPC: "2.0", Method: method, Params: params})
}

// SendRaw writes one text frame exactly as given (bad-input tests). Responses
// to it arrive on Raw() (their ids match no pending Call).
func (c *Client) SendRaw(frame []byte) error {
	return c.writeFrame(frame)
}

// Notifications returns every server notification in arrival order. The
// channel holds 1024; when it is full the oldest is dropped (see
// DroppedNotifications), so the reader never blocks. It is an independent
// view: WaitNotification does not take notifications from it, nor it from
// WaitNotification. It is never closed; select on Closed() as well.
func (c *Client) Notifications() <-chan Notification { return c.notifCh }

// LastSeq returns the seq of the last sequenced notification received (a
// 1.1 session's, §4.5), 0 before the first: what a resume sends as
// lastSeq.
func (c *Client) LastSeq() uint64 { return c.lastSeq.Load() }

// DroppedNotifications counts notifications dropped from the Notifications()
// channel and from the WaitNotification backlog because they were full.
func (c *Client) DroppedNotifications() int { return int(c.notifDropped.Load()) }

// Raw returns responses whose id matched no pending Call (answers to SendRaw
// frames, id:null errors, batch answers) and frames that are not JSON-RPC.
// Holds 256; when full the oldest is dropped. Never closed.
func (c *Client) Raw() <-chan json.RawMessage { return c.rawCh }

// Closed is closed when the WebSocket has closed (either side).
// After a Resume it is the new socket's.
func (c *Client) Closed() <-chan struct{} { return c.ws.Load().closed }

// CloseCode returns the close code received from the server (1000, 1009,
// 4003, ...), 1005 for a close frame without a code, 1006 if the connection
// ended without a close frame, and 0 while the socket is open.
func (c *Client) CloseCode() int { return int(c.ws.Load().code.Load()) }

// WaitNotification waits for a notification with that method for which
// match(params) is true (match nil = any) and returns it. It looks at the
// notifications received since Dial in arrival order (an earlier one wins)
// and removes only the one it returns: the others stay for later waits, so
// tests can wait for several events in any order. match runs in the
// caller's goroutine, with no lock of the client held: it may take its
// time and use the client. It returns ctx's error, or an error wrapping
// ErrClosed when the socket has closed and no received notification
// matches.
func (c *Client) WaitNotification(ctx context.Context, method string, match func(json.RawMessage) bool) (Notification, error) {
	for {
		c.backlogMu.Lock()
		var candidates []backlogEntry
		for _, e := range c.backlog {
			if e.n.Method == method {
				candidates = append(candidates, e)
			}
		}
		wake := c.backlogWake
		c.backlogMu.Unlock()
		closed := c.Closed()

		for _, e := range candidates {
			if (match == nil || match(e.n.Params)) && c.takeBacklog(e.seq) {
				return e.n, nil
			}
			// Not it, or another waiter took it first.
		}

		select {
		case <-wake:
		case <-ctx.Done():
			return Notification{}, fmt.Errorf("waiting for %q: %w", method, ctx.Err())
		case <-closed:
			if closed != c.Closed() {
				continue // resumed on a new socket
			}
			// The reader has stopped: one last look, then give up.
			c.backlogMu.Lock()
			stale := c.backlogWake == wake
			c.backlogMu.Unlock()
			if stale {
				return Notification{}, fmt.Errorf("waiting for %q: %w", method, c.closedErr())
			}
		}
	}
}

// backlogEntry is a notification kept for WaitNotification, numbered in
// arrival order.
type backlogEntry struct {
	seq uint64
	n   Notification
}

// takeBacklog removes the entry seq from the backlog, and reports whether
// it was still there.
func (c *Client) takeBacklog(seq uint64) bool {
	c.backlogMu.Lock()
	defer c.backlogMu.Unlock()
	i, found := slices.BinarySearchFunc(c.backlog, seq, func(e backlogEntry, seq uint64) int { return cmp.Compare(e.seq, seq) })
	if found {
		c.backlog = slices.Delete(c.backlog, i, i+1)
	}
	return found
}

// WaitEvent is WaitNotification with the params decoded into T (the method's
// params type: RoomEvent for NotifyRoomUpdated, ...): it waits for a
// notification of that method whose params decode into T and for which
// match is true (nil: any), and returns the decoded params.
//
//	ev, err := client.WaitEvent(ctx, c, client.NotifyRelayState, func(ev client.RelayStateEvent) bool {
//		return ev.State == "running"
//	})
func WaitEvent[T any](ctx context.Context, c *Client, method string, match func(T) bool) (T, error) {
	var got T
	_, err := c.WaitNotification(ctx, method, func(p json.RawMessage) bool {
		var v T
		if json.Unmarshal(p, &v) != nil || (match != nil && !match(v)) {
			return false
		}
		got = v
		return true
	})
	return got, err
}

func (c *Client) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("client: encoding message: %w", err)
	}
	return c.writeFrame(b)
}

func (c *Client) writeFrame(b []byte) error {
	ws := c.ws.Load()
	select {
	case <-ws.closed:
		return c.closedErr()
	default:
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = ws.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := ws.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		select {
		case <-ws.closed:
			return c.closedErr()
		default:
		}
		return fmt.Errorf("client: write: %w", err)
	}
	return nil
}

// readLoop owns the socket's read side until it fails.
func (c *Client) readLoop(ws *wsock) {
	defer c.wg.Done()
	code := closeCodeUnknown
	for {
		_, data, err := ws.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = ce.Code
			}
			c.log.Debug("websocket closed", "code", code, "err", err)
			break
		}
		c.dispatch(ws, data)
	}
	ws.code.Store(int32(code))
	if c.ws.Load() == ws {
		c.pendMu.Lock()
		c.pending = map[int64]chan rpcResponse{} // waiters see ws.closed
		c.pendMu.Unlock()
	}
	close(ws.closed)
}

func (c *Client) dispatch(ws *wsock, data []byte) {
	trimmed := bytes.TrimSpace(data)
	var m wireMessage
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &m) != nil {
		c.pushRaw(data)
		return
	}
	hasID := len(m.ID) > 0 && string(m.ID) != "null"
	switch {
	case m.Method != "" && hasID:
		c.serverRequest(m)
	case m.Method != "":
		n := Notification{Method: m.Method, Params: m.Params}
		var p struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal(m.Params, &p) == nil && p.Seq != 0 {
			if p.Seq <= ws.dedup {
				return // replayed, and seen already
			}
			n.Seq = p.Seq
			c.lastSeq.Store(p.Seq)
		}
		if n.Method == NotifyTokenRefresh {
			c.tokenRefreshed(n)
		}
		c.sim.observe(n) // simulcast.go: own track ids, publisher.layers
		c.pushNotification(n)
	default:
		c.resumeResult(ws, m)
		c.response(m, data)
	}
}

func (c *Client) response(m wireMessage, data []byte) {
	id, err := strconv.ParseInt(string(m.ID), 10, 64)
	if err != nil {
		c.pushRaw(data)
		return
	}
	c.pendMu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	_, abandoned := c.abandoned[id]
	delete(c.abandoned, id)
	c.pendMu.Unlock()
	switch {
	case ok:
		ch <- rpcResponse{result: m.Result, err: m.Error}
	case abandoned:
		c.log.Debug("dropping response to abandoned call", "id", id)
	default:
		c.pushRaw(data)
	}
}

// serverRequest handles a request from the server. "offer" goes to the
// signaling worker (it is answered there); anything else is refused.
func (c *Client) serverRequest(m wireMessage) {
	if m.Method == "offer" {
		c.enqueueSignal(signal{id: m.ID, method: m.Method, params: m.Params})
		return
	}
	c.reply(m.ID, nil, &RPCError{Code: CodeMethodNotFound, Message: "method not found: " + m.Method})
}

func (c *Client) reply(id json.RawMessage, result any, rerr *RPCError) {
	if rerr == nil && result == nil {
		result = struct{}{}
	}
	if err := c.writeJSON(outResponse{JSONRPC: "2.0", ID: id, Result: result, Error: rerr}); err != nil {
		c.log.Debug("reply failed", "id", string(id), "err", err)
	}
}

func (c *Client) pushNotification(n Notification) {
	if n.Method == NotifyTrickle {
		c.enqueueSignal(signal{method: n.Method, params: n.Params})
	}
	// The public channel: drop the oldest when full.
	for {
		select {
		case c.notifCh <- n:
		default:
			select {
			case <-c.notifCh:
				c.notifDropped.Add(1)
			default:
			}
			continue
		}
		break
	}
	// The WaitNotification backlog.
	c.backlogMu.Lock()
	if len(c.backlog) >= backlogLimit {
		c.backlog = c.backlog[1:]
		c.notifDropped.Add(1)
	}
	c.backlogSeq++
	c.backlog = append(c.backlog, backlogEntry{seq: c.backlogSeq, n: n})
	close(c.backlogWake)
	c.backlogWake = make(chan struct{})
	c.backlogMu.Unlock()
}

func (c *Client) pushRaw(data []byte) {
	msg := json.RawMessage(bytes.Clone(data))
	for {
		select {
		case c.rawCh <- msg:
			return
		default:
			select {
			case <-c.rawCh:
			default:
			}
		}
	}
}
