package signaling

import (
	"encoding/json"
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/relaysfu/relayd/relay"
	"github.com/relaysfu/relayd/rooms"
	"github.com/relaysfu/relayd/sfu"
)

// session is one client's logical session: who it is (its token's
// claims), the rooms member it joined as, the server requests it has been
// sent and not yet answered, and its outbox: every response and
// notification for the client, in order. Rooms tells it events through
// Notify (it is the member's rooms.Sink), which only turns each into a
// frame and queues it.
//
// Its connection (conn.go) is the transport: the WebSocket whose reader
// hands the session the client's messages and whose writer sends the
// outbox. A 1.0 session has exactly one connection and ends with it. A
// 1.1 session outlives a lost socket (hold.go) and is carried on by the
// connection that resumes it (resume.go): the new connection's session
// takes over its member, its seq and its replay.
type session struct {
	srv    *Server
	conn   *conn // the connection serving it
	claims *Claims
	log    *slog.Logger
	out    *outbox
	// resume is true when the socket was opened with resume= (PROTOCOL.md
	// 1.1 §5): a resume attempt, of the session whose resume token is
	// resumeWith. A join that resumes nothing is a fresh one (resumed:
	// false), but it never starts a broadcast.
	resume     bool
	resumeWith string

	// Owned by the connection's reader, which runs the handlers one
	// message at a time.
	joined  bool
	version string        // as served, set by join: "1.0" or "1.1"
	user    bool          // a user session: no room, invitations only
	member  *rooms.Member // set by join
	after   func()        // runs after the current response is queued
	curID   json.RawMessage

	// hmu guards the session's life across connections (hold.go,
	// resume.go, refresh.go). Nothing is called with it held.
	hmu           sync.Mutex
	state         holdState     // guarded by hmu
	canHold       bool          // guarded by hmu: joined as 1.1 (set once, at join)
	sessionID     string        // guarded by hmu
	resumeToken   string        // guarded by hmu: the one that resumes it now
	heldAt        time.Time     // guarded by hmu: when its socket was lost
	holdDone      chan struct{} // guarded by hmu: closed once the hold's effects have run
	grace         *time.Timer   // guarded by hmu: the hold's grace
	refresh       *time.Timer   // guarded by hmu: the next token.refresh
	refreshClaims *Claims       // guarded by hmu: the token the next refresh replaces

	mu        sync.Mutex
	nextID    int
	pending   map[string]string // our requests awaiting a response: id -> method
	lastOffer string            // id of the newest "offer" request
	// While a resume is served, the subscriber offers delivered are
	// taken apart (capturing), the last kept (captured): resume.go.
	capturing bool
	captured  string
}

func newSession(srv *Server, c *conn, cl *Claims) *session {
	return &session{
		srv: srv, conn: c, claims: cl,
		log:     srv.log.With("participant", cl.Identity(), "room", cl.Room),
		out:     newOutbox(),
		pending: map[string]string{},
	}
}

// end ends the session once its connection is gone: the member leaves
// (its relay stops, its tracks are unpublished) and nothing more is
// queued.
func (s *session) end() {
	s.forget()
	if s.member != nil {
		s.member.Close()
	}
	s.out.close()
}

// send queues a response frame; a client too slow to take it is
// disconnected.
func (s *session) send(frame []byte) { s.queue(&out{data: frame}, false) }

// queue queues m (an event: a notification, a server request or a close,
// which wait while a join is served); a client too slow to take it is
// disconnected.
func (s *session) queue(m *out, event bool) {
	if !s.out.push(m, event) {
		s.log.Warn("client too slow; closing", "queued", outQueue)
		s.conn.abort()
	}
}

// closeWith queues a close frame after everything already queued. The
// socket stops counting against its identity's cap at once (a session
// replaced by a newer one frees its place for the next).
func (s *session) closeWith(code int, reason string) {
	s.closing()
	s.conn.slot.release()
	if !s.out.push(&out{close: true, code: code, reason: reason}, true) {
		s.conn.abort()
	}
}

// request sends a server-to-client request and remembers its id. The id
// is taken and the frame queued under one lock, so requests go out in the
// order of their ids.
func (s *session) request(method string, params any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := "s" + strconv.Itoa(s.nextID) // never collides with a client's numeric ids
	s.pending[id] = method
	if method == "offer" {
		s.lastOffer = id
	}
	s.queue(&out{data: encodeRequest(id, method, params)}, true)
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

// Notify implements rooms.Sink: an event for the member's client becomes
// a frame in the outbox.
func (s *session) Notify(ev rooms.Event) {
	switch e := ev.(type) {
	case sfu.SubscriberOffer:
		if s.captureOffer(e.SDP) {
			return
		}
		s.request("offer", map[string]string{"sdp": e.SDP})
	case sfu.ICECandidate:
		s.notify("trickle", trickleParams{Target: string(e.Target), Candidate: e.Candidate})
	case sfu.ParticipantJoined:
		s.notify("participant.joined", map[string]any{"participant": e.Participant})
	case sfu.ParticipantLeft:
		s.notify("participant.left", map[string]any{"participant": e.Participant})
	case sfu.ParticipantUpdated:
		s.notify("participant.updated", map[string]any{"participant": e.Participant})
	case sfu.TrackPublished:
		s.notify("track.published", map[string]any{"track": e.Track})
	case sfu.TrackUnpublished:
		s.notify("track.unpublished", map[string]any{"track": e.Track})
	case sfu.RoomUpdated:
		s.notify("room.updated", map[string]any{"room": e.Room})
	case sfu.TrackMuted:
		s.notify("track.muted", trackMutedParams{TrackID: e.Track.ID, Muted: e.Track.Muted, By: e.By})
	case sfu.SessionEnded:
		// The room ended, a newer session took over, or a kick: the
		// member's relay has stopped, its relay.state is queued before.
		s.closeWith(e.Code, e.Reason)
	case rooms.InvitationUpdated:
		s.notify("invitation.updated", map[string]any{"invitation": e.Invitation})
	case rooms.RelayState:
		s.notify("relay.state", relayStateParams{StateParams: e.StateParams, Destinations: e.Destinations})
	case rooms.RelayEvent:
		s.notify("relay.event", e.EventParams)
	case rooms.ChatMessage:
		s.notify("chat.message", map[string]any{"message": e.Message})
	case rooms.ChatDeleted:
		s.notify("chat.deleted", map[string]any{"id": e.ID})
	case rooms.TrackStream:
		s.notify("track.stream", trackStreamParams{TrackID: e.TrackID, State: e.State, Reason: string(e.Reason)})
	default:
		if s.notifyAdaptation(ev) {
			return
		}
		s.log.Error("an event signaling does not know: dropped", "event", ev)
	}
}

// relayStateParams are relay.state's params: the contract's, and the
// relay's destinations (an extension: docs/protocol.md §6.7).
type relayStateParams struct {
	relay.StateParams
	Destinations []relay.DestInfo `json:"destinations"`
}

// notify queues a notification; the outbox frames it (with its seq in a
// 1.1 session).
func (s *session) notify(method string, params any) {
	b, err := json.Marshal(params)
	if err != nil {
		s.log.Error("a notification that cannot be encoded: dropped", "method", method, "err", err)
		return
	}
	s.queue(&out{method: method, params: b}, true)
}

// handleCall serves one request (id set) or notification (id nil) from
// the client.
func (s *session) handleCall(method string, id json.RawMessage, params json.RawMessage) {
	s.curID = id
	result, err := s.safeDispatch(method, params)
	code := 0
	if err != nil {
		code = err.Code
	}
	s.srv.count(method, code)
	if id != nil && result != responded {
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
	if !ok || method != "offer" || s.member == nil || s.user {
		return
	}
	if m.Error != nil && string(m.Error) != "null" {
		s.member.SubscriberOfferFailed()
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
	if err := s.member.SubscriberAnswer(res.SDP); err != nil {
		if errors.Is(err, rooms.ErrInvalid) {
			s.keepOffer(id)
		}
		s.send(encodeError(m.ID, toError(err)))
	}
}
