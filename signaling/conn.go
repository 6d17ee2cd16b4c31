package signaling

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// Socket limits (PROTOCOL.md "Errors").
const (
	maxFrame     = 65536 // bytes; a larger frame closes the socket with 1009
	requestRate  = 50    // requests per second per connection...
	requestBurst = 100   // ...with bursts of this many; the notifications a
	// client sends (trickle, mostly) have a budget of their own of the same
	// size: over it they are dropped (a notification has no answer to carry
	// 4029), and they never use up the requests' budget.
	// pingPeriod keeps NATs open and finds dead peers: a client that
	// answers no ping for pongWait is gone, and its participant leaves.
	pingPeriod   = 15 * time.Second
	pongWait     = 45 * time.Second
	writeTimeout = 10 * time.Second
)

// conn is one WebSocket serving a session: the transport. Its reader (the
// HTTP handler's goroutine, serve) reads frames, holds the client to the
// request rate and hands each message to its session; its writer
// (writeLoop) sends the session's outbox, in order, and pings.
//
// Goroutines: serve and writeLoop, started and waited for by serve.
type conn struct {
	srv     *Server
	ws      *websocket.Conn
	sess    *session
	log     *slog.Logger
	limiter *rate.Limiter // the requests'
	notes   *rate.Limiter // the notifications'
	started time.Time     // upgrade time, for the join latency metric
	joinBy  time.Time     // started + the join deadline: no join by then closes the socket
	slot    *socketSlot   // the socket's place in its identity's count; released once closing

	done      chan struct{} // closed when the writer must stop
	closeOnce sync.Once
}

func newConn(srv *Server, ws *websocket.Conn, c *Claims) *conn {
	now := time.Now()
	cn := &conn{
		srv: srv, ws: ws,
		log:     srv.log.With("participant", c.Identity(), "room", c.Room),
		limiter: rate.NewLimiter(requestRate, requestBurst),
		notes:   rate.NewLimiter(requestRate, requestBurst),
		started: now,
		joinBy:  now.Add(srv.joinDeadline),
		done:    make(chan struct{}),
	}
	cn.sess = newSession(srv, cn, c)
	return cn
}

// serve runs the connection until the socket closes, then ends its
// session.
func (c *conn) serve() {
	var wg sync.WaitGroup
	wg.Go(c.writeLoop)
	c.ws.SetReadLimit(maxFrame)
	_ = c.ws.SetReadDeadline(c.readDeadline())
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(c.readDeadline())
	})
	for {
		typ, frame, err := c.ws.ReadMessage()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				c.log.Info("frame over the limit; closing", "limit", maxFrame)
			case !c.sess.joined && errors.As(err, &ne) && ne.Timeout():
				// Nothing else is sent: the close says why.
				c.log.Info("no join before the deadline; closing", "deadline", c.joinBy.Sub(c.started))
				c.slot.release()
				_ = c.ws.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(closeJoinDeadline, "join deadline passed"), time.Now().Add(time.Second))
			}
			break
		}
		if typ != websocket.TextMessage {
			c.sess.send(encodeError(nullID, Errorf(CodeInvalidRequest, "invalid request: frames must be text")))
		} else {
			c.handle(frame)
		}
		_ = c.ws.SetReadDeadline(c.readDeadline())
	}
	c.slot.release()
	c.sess.socketLost()
	c.stop()
	wg.Wait()
	_ = c.ws.Close()
}

// handle parses one frame and hands it to the session: a response to one
// of its requests, or a request or notification within the rate (50 a
// second, bursts of 100: PROTOCOL.md "Errors"). A request over the rate
// is answered 4029; a notification over it is dropped (it has no answer)
// and counted, as every message is.
func (c *conn) handle(frame []byte) {
	if c.sess.moved() {
		return // a resume took the session over: this socket is closing
	}
	m, id, perr := parse(frame)
	if perr != nil {
		c.sess.send(encodeError(id, perr))
		return
	}
	if m.Method == nil {
		c.sess.handleResponse(m)
		return
	}
	isRequest := m.ID != nil
	var method string
	_ = json.Unmarshal(m.Method, &method)
	limiter := c.notes
	if isRequest {
		limiter = c.limiter
	}
	if !limiter.Allow() {
		c.srv.count(method, CodeRateLimited)
		if isRequest {
			c.sess.send(encodeError(id, Errorf(CodeRateLimited, "rate limited: at most %d requests per second", requestRate)))
		}
		return
	}
	if !isRequest {
		id = nil
	}
	c.sess.handleCall(method, id, m.Params)
}

// readDeadline is when the socket is given up if nothing (not even a pong)
// comes: pongWait from now once joined, the join deadline before.
func (c *conn) readDeadline() time.Time {
	if !c.sess.joined {
		return c.joinBy
	}
	return time.Now().Add(pongWait)
}

// stop makes the writer finish.
func (c *conn) stop() { c.closeOnce.Do(func() { close(c.done) }) }

// abort drops the connection at once (a client too slow to read): what
// its session queues from now on is not written (a 1.1 session's
// notifications are still kept for a resume).
func (c *conn) abort() {
	c.sess.out.detach()
	c.stop()
	_ = c.ws.Close()
}

// writeLoop sends the session's outbox and pings until stopped or until
// a close is sent.
func (c *conn) writeLoop() {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	out := c.sess.out
	for {
		select {
		case <-out.wake:
			batch := out.take()
			for _, m := range batch {
				if !c.write(m) {
					return
				}
			}
			out.recycle(batch)
		case <-ping.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				_ = c.ws.Close()
				return
			}
		case <-c.done:
			return
		}
	}
}

// write sends one frame; false ends the writer.
func (c *conn) write(m *out) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if m.close {
		_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(m.code, m.reason))
		// Unblock the reader: the peer may never answer the close.
		_ = c.ws.SetReadDeadline(time.Now().Add(time.Second))
		return false
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, m.data); err != nil {
		_ = c.ws.Close()
		return false
	}
	return true
}
