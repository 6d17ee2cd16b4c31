package signaling

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/relaysfu/relayd/sfu"
)

// Socket limits (PROTOCOL.md "Errors").
const (
	maxFrame     = 65536 // bytes; a larger frame closes the socket with 1009
	requestRate  = 50    // requests per second per connection...
	requestBurst = 100   // ...with bursts of this many
	// outQueue bounds the messages waiting for a slow client. A join into
	// a busy room sends one notification per participant; 1024 is far
	// beyond what a live client lags by. A client that falls this far
	// behind is closed rather than buffered without end.
	outQueue = 1024
	// pingPeriod keeps NATs open and finds dead peers: a client that
	// answers no ping for pongWait is gone, and its participant leaves.
	pingPeriod   = 15 * time.Second
	pongWait     = 45 * time.Second
	writeTimeout = 10 * time.Second
)

// out is one frame to send, or the close that ends the session.
type out struct {
	data   []byte
	close  bool
	code   int
	reason string
}

// session is one WebSocket connection. Its reader goroutine (serve) runs the
// handlers one message at a time, so session state needs no lock except
// where sfu callbacks (Notify) touch it: those only enqueue frames.
//
// Goroutines: serve (the HTTP handler's own goroutine) and writeLoop,
// started and waited for by serve.
type session struct {
	srv         *Server
	conn        *websocket.Conn
	claims      *Claims
	log         *slog.Logger
	limiter     *rate.Limiter
	chatLimiter *rate.Limiter
	started     time.Time   // upgrade time, for the join latency metric
	joinBy      time.Time   // started + the join deadline: no join by then closes the socket
	slot        *socketSlot // the socket's place in its identity's count; released once closing

	// The outgoing queue: a slice that grows only while a burst waits
	// (a buffered channel of outQueue slots would cost 8 KB per idle
	// session), and a wake-up for the writer.
	outMu     sync.Mutex
	outQ      []*out // guarded by outMu
	outSpare  []*out // guarded by outMu: the writer's last batch, for reuse
	outWake   chan struct{}
	done      chan struct{} // closed when the writer must stop
	closeOnce sync.Once

	// reader-owned
	joined bool
	user   bool // a user session: no room, invitations only
	p      *sfu.Participant
	part   atomic.Pointer[sfu.Participant] // p, for other goroutines (Notify)
	after  func()                          // runs after the current response is queued
	curID  json.RawMessage                 // id of the request being served; nil for a notification

	mu        sync.Mutex
	nextID    int
	pending   map[string]string // our requests awaiting a response: id -> method
	lastOffer string            // id of the newest "offer" request
}

func newSession(srv *Server, conn *websocket.Conn, c *Claims) *session {
	now := time.Now()
	return &session{
		srv: srv, conn: conn, claims: c,
		log:         srv.log.With("participant", c.Identity(), "room", c.Room),
		limiter:     rate.NewLimiter(requestRate, requestBurst),
		chatLimiter: rate.NewLimiter(chatRate, chatBurst),
		started:     now,
		joinBy:      now.Add(srv.joinDeadline),
		outWake:     make(chan struct{}, 1),
		done:        make(chan struct{}),
		pending:     map[string]string{},
	}
}

// serve runs the session until the socket closes, then cleans up.
func (s *session) serve() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.writeLoop()
	}()
	s.conn.SetReadLimit(maxFrame)
	_ = s.conn.SetReadDeadline(s.readDeadline())
	s.conn.SetPongHandler(func(string) error {
		return s.conn.SetReadDeadline(s.readDeadline())
	})
	for {
		typ, frame, err := s.conn.ReadMessage()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				s.log.Info("frame over the limit; closing", "limit", maxFrame)
			case !s.joined && errors.As(err, &ne) && ne.Timeout():
				// Nothing else is sent: the close says why.
				s.log.Info("no join before the deadline; closing", "deadline", s.joinBy.Sub(s.started))
				s.slot.release()
				_ = s.conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(closeJoinDeadline, "join deadline passed"), time.Now().Add(time.Second))
			}
			break
		}
		if typ != websocket.TextMessage {
			s.send(encodeError(nullID, Errorf(CodeInvalidRequest, "invalid request: frames must be text")))
		} else {
			s.handle(frame)
		}
		_ = s.conn.SetReadDeadline(s.readDeadline())
	}
	s.slot.release()
	if s.joined {
		s.srv.register(s.claims.Identity(), s, false)
	}
	if s.p != nil {
		s.srv.relays.SourceGone(s.p)
		s.p.Leave()
		s.srv.bind(s.p, nil)
	}
	s.stop()
	wg.Wait()
	_ = s.conn.Close()
}

// readDeadline is when the socket is given up if nothing (not even a pong)
// comes: pongWait from now once joined, the join deadline before.
func (s *session) readDeadline() time.Time {
	if !s.joined {
		return s.joinBy
	}
	return time.Now().Add(pongWait)
}

// stop makes the writer finish.
func (s *session) stop() { s.closeOnce.Do(func() { close(s.done) }) }

// writeLoop sends queued frames and pings until stopped or until a close
// is queued.
func (s *session) writeLoop() {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	for {
		select {
		case <-s.outWake:
			batch := s.takeQueued()
			for _, m := range batch {
				if !s.write(m) {
					return
				}
			}
			s.recycle(batch)
		case <-ping.C:
			_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := s.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				_ = s.conn.Close()
				return
			}
		case <-s.done:
			return
		}
	}
}

// write sends one queued frame; false ends the writer.
func (s *session) write(m *out) bool {
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if m.close {
		_ = s.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(m.code, m.reason))
		// Unblock the reader: the peer may never answer the close.
		_ = s.conn.SetReadDeadline(time.Now().Add(time.Second))
		return false
	}
	if err := s.conn.WriteMessage(websocket.TextMessage, m.data); err != nil {
		_ = s.conn.Close()
		return false
	}
	return true
}

// takeQueued hands the writer everything queued so far, in order.
func (s *session) takeQueued() []*out {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	batch := s.outQ
	s.outQ, s.outSpare = s.outSpare[:0], nil
	return batch
}

// recycle keeps a written batch's array for the next one, unless a burst
// made it big: an idle session holds no more than a few slots.
func (s *session) recycle(batch []*out) {
	if cap(batch) > 16 {
		return
	}
	clear(batch)
	s.outMu.Lock()
	if s.outSpare == nil {
		s.outSpare = batch[:0]
	}
	s.outMu.Unlock()
}

// enqueue adds m for the writer; false when outQueue frames are already
// waiting (or the session is stopping).
func (s *session) enqueue(m *out) bool {
	select {
	case <-s.done:
		return true // stopping: nothing will be sent, and that is no fault
	default:
	}
	s.outMu.Lock()
	if len(s.outQ) >= outQueue {
		s.outMu.Unlock()
		return false
	}
	s.outQ = append(s.outQ, m)
	s.outMu.Unlock()
	select {
	case s.outWake <- struct{}{}:
	default: // the writer is already woken
	}
	return true
}

// send queues a frame; a client too slow to take it is disconnected.
func (s *session) send(frame []byte) {
	if !s.enqueue(&out{data: frame}) {
		s.log.Warn("client too slow; closing", "queued", outQueue)
		s.stop()
		_ = s.conn.Close()
	}
}

// closeWith queues a close frame after everything already queued. The
// socket stops counting against its identity's cap at once (a session
// replaced by a newer one frees its place for the next).
func (s *session) closeWith(code int, reason string) {
	s.slot.release()
	if !s.enqueue(&out{close: true, code: code, reason: reason}) {
		s.stop()
		_ = s.conn.Close()
	}
}

// request sends a server-to-client request and remembers its id.
func (s *session) request(method string, params any) {
	s.mu.Lock()
	s.nextID++
	id := "s" + strconv.Itoa(s.nextID) // never collides with a client's numeric ids
	s.pending[id] = method
	if method == "offer" {
		s.lastOffer = id
	}
	s.mu.Unlock()
	s.send(encodeRequest(id, method, params))
}

// keepOffer puts back the offer request id, whose response was refused
// without changing anything, so that a proper answer to it is still taken;
// unless a newer offer replaced it meanwhile.
func (s *session) keepOffer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == s.lastOffer {
		s.pending[id] = "offer"
	}
}

// Notify implements sfu.EventSink: turn a room event into a frame.
func (s *session) Notify(ev sfu.Event) {
	switch e := ev.(type) {
	case sfu.SubscriberOffer:
		s.request("offer", map[string]string{"sdp": e.SDP})
	case sfu.ICECandidate:
		s.send(encodeNotification("trickle", trickleParams{Target: string(e.Target), Candidate: e.Candidate}))
	case sfu.ParticipantJoined:
		s.send(encodeNotification("participant.joined", map[string]any{"participant": e.Participant}))
	case sfu.ParticipantLeft:
		s.send(encodeNotification("participant.left", map[string]any{"participant": e.Participant}))
	case sfu.ParticipantUpdated:
		s.send(encodeNotification("participant.updated", map[string]any{"participant": e.Participant}))
	case sfu.TrackPublished:
		s.send(encodeNotification("track.published", map[string]any{"track": e.Track}))
	case sfu.TrackUnpublished:
		s.send(encodeNotification("track.unpublished", map[string]any{"track": e.Track}))
	case sfu.RoomUpdated:
		s.send(encodeNotification("room.updated", map[string]any{"room": e.Room}))
	case sfu.SessionEnded:
		// The room ended (or a newer session took over): stop this
		// participant's relay first, so its relay.state reaches the
		// client before the close.
		if p := s.part.Load(); p != nil {
			s.srv.relays.SourceGone(p)
		}
		s.closeWith(e.Code, e.Reason)
	}
}

// handle serves one frame.
func (s *session) handle(frame []byte) {
	m, id, perr := parse(frame)
	if perr != nil {
		s.send(encodeError(id, perr))
		return
	}
	if m.Method == nil {
		s.handleResponse(m)
		return
	}
	isRequest := m.ID != nil
	var method string
	_ = json.Unmarshal(m.Method, &method)
	if isRequest && !s.limiter.Allow() {
		s.srv.count(method, CodeRateLimited)
		s.send(encodeError(id, Errorf(CodeRateLimited, "rate limited: at most %d requests per second", requestRate)))
		return
	}
	s.curID = nil
	if isRequest {
		s.curID = id
	}
	result, err := s.safeDispatch(method, m.Params)
	code := 0
	if err != nil {
		code = err.Code
	}
	s.srv.count(method, code)
	if isRequest && result != responded {
		if err != nil {
			s.send(encodeError(id, err))
		} else {
			s.send(encodeResult(id, result))
		}
	}
	if f := s.after; f != nil {
		s.after = nil
		f()
	}
}

// safeDispatch runs the handler; a bug that panics answers -32603 and is
// logged with its stack, instead of taking the server down.
func (s *session) safeDispatch(method string, params json.RawMessage) (result any, err *Error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("handler panic", "method", method, "panic", v, "stack", string(debug.Stack()))
			result, err = nil, Errorf(CodeInternal, "internal error")
		}
	}()
	return s.dispatch(method, params)
}

// responded is what a handler returns when it has sent its result itself
// (respond), because something must follow the result on the socket.
var responded = &struct{ responded bool }{}

// respond sends the result of the request being served now.
func (s *session) respond(result any) {
	if s.curID != nil {
		s.send(encodeResult(s.curID, result))
	}
}

// handleResponse takes the client's response to one of our requests.
func (s *session) handleResponse(m *message) {
	var id string
	if json.Unmarshal(m.ID, &id) != nil {
		return
	}
	s.mu.Lock()
	method, ok := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if !ok || method != "offer" || s.p == nil {
		return
	}
	if m.Error != nil && string(m.Error) != "null" {
		s.p.SubscriberOfferFailed()
		return
	}
	// A malformed answer gets -32602 and changes nothing (PROTOCOL.md "Bad
	// SDP"): the offer is still out, and may still be answered.
	var res struct {
		SDP string `json:"sdp"`
	}
	if err := decodeParams(m.Result, &res); err != nil || res.SDP == "" {
		s.keepOffer(id)
		s.send(encodeError(m.ID, Errorf(CodeInvalidParams, "invalid params: the offer's result must be {sdp: string}")))
		return
	}
	if err := s.p.SetSubscriberAnswer(res.SDP); err != nil {
		if errors.Is(err, sfu.ErrBadSDP) {
			s.keepOffer(id)
		}
		s.send(encodeError(m.ID, toError(err)))
	}
}
