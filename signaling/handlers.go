package signaling

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/rooms"
	"github.com/relaysfu/relayd/sfu"
)

// handler serves one method. It validates params first (-32602), then
// permissions (4003), then state (4009), as the contract orders them.
type handler func(s *session, params json.RawMessage) (any, *Error)

// handlers are the client-to-server methods served so far. Methods of the
// contract that later work adds are answered -32601 until then.
var handlers = map[string]handler{
	"join":      (*session).join,
	"offer":     (*session).offer,
	"trickle":   (*session).trickle,
	"leave":     (*session).leave,
	"room.stop": (*session).roomStop,
}

// knownMethods are every method of the contract, for the metrics label.
var knownMethods = map[string]bool{
	"join": true, "offer": true, "trickle": true, "leave": true, "room.stop": true,
	"invitation.create": true, "invitation.list": true, "invitation.accept": true,
	"invitation.reject": true, "invitation.cancel": true, "cohost.remove": true, "stage.leave": true,
	"relay.start": true, "relay.update": true, "relay.stop": true, "relay.pause": true, "relay.resume": true,
	"chat.send": true, "chat.history": true, "chat.delete": true, "participant.kick": true,
	"room.record": true,
}

// dispatch finds and runs the handler of method.
func (s *session) dispatch(method string, params json.RawMessage) (any, *Error) {
	h, ok := handlers[method]
	if !ok {
		if knownMethods[method] {
			return nil, Errorf(CodeMethodNotFound, "method not found: %s is not implemented by this server yet", method)
		}
		return nil, Errorf(CodeMethodNotFound, "method not found: %q", method)
	}
	if method == "join" && s.joined {
		return nil, Errorf(CodeConflict, "already joined")
	}
	if method != "join" && !s.joined {
		return nil, Errorf(CodeConflict, "call join first")
	}
	return h(s, params)
}

// joinResult is join's result (PROTOCOL.md "Client to server", 1.1 §0
// and §5): the v1 fields, version and iceServers for every session, and
// the resume fields for 1.1 sessions.
type joinResult struct {
	Participant  sfu.ParticipantInfo   `json:"participant"`
	Room         *sfu.RoomInfo         `json:"room"`
	Participants []sfu.ParticipantInfo `json:"participants"`
	Tracks       []sfu.TrackInfo       `json:"tracks"`
	Version      string                `json:"version"`
	ICEServers   []ICEServer           `json:"iceServers"`
	*resumeFields
}

// resumeFields are a 1.1 join result's (PROTOCOL.md 1.1 §5). A fresh
// join's are resumed false, seq 0 (the result comes before any
// notification), gap false; a resume's (resume.go) say what it took over.
type resumeFields struct {
	SessionID   string `json:"sessionId"`
	ResumeToken string `json:"resumeToken"`
	Resumed     bool   `json:"resumed"`
	Seq         uint64 `json:"seq"`
	Gap         bool   `json:"gap"`
}

// joinParams are join's params: version (absent: "1.0") and lastSeq (a
// resume's: the last seq the client processed).
type joinParams struct {
	Version *string `json:"version"`
	LastSeq *int64  `json:"lastSeq"`
}

func (s *session) join(raw json.RawMessage) (any, *Error) {
	var params joinParams
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	version, perr := servedVersion(params.Version)
	if perr != nil {
		return nil, perr
	}
	if params.LastSeq != nil && *params.LastSeq < 0 {
		return nil, Errorf(CodeInvalidParams, "invalid params: lastSeq must be an integer >= 0")
	}
	c := s.claims
	// Events wait until the result is queued: it comes first (the
	// subscriber offer of a room with tracks, too), and seq 1 follows it.
	s.out.hold()
	s.after = func() {
		s.out.release(s.version == v11)
		if s.version == v11 {
			s.scheduleRefresh(c, s.conn.started)
		}
	}
	// A 1.1 join on a resume= socket takes over the session R names, if
	// it can (resume.go); otherwise it is a fresh join (resumed: false),
	// lastSeq ignored (1.1 §5, §11: a failed resume falls back softly).
	if s.resume && version == v11 {
		if res, perr, done := s.resumeJoin(c, version, params.LastSeq); done {
			return res, perr
		}
	}
	m, j, err := s.srv.rooms.Join(rooms.JoinRequest{
		Identity: c.Identity(), Name: c.Name, Room: c.Room, Host: c.Role == "host",
		V11: version == v11, Resume: s.resume,
	}, s)
	if err != nil {
		return nil, toError(err)
	}
	s.member, s.joined, s.user, s.version = m, true, c.Room == "", version
	s.srv.metrics.JoinLatency.Observe(time.Since(s.conn.started).Seconds())
	res := joinResult{
		Participant: j.Participant, Room: j.Room, Participants: j.Participants, Tracks: j.Tracks,
		Version: version, ICEServers: s.srv.iceServers(c),
	}
	if version == v11 {
		res.resumeFields = s.resumable()
	}
	return res, nil
}

func (s *session) offer(raw json.RawMessage) (any, *Error) {
	var params struct {
		SDP *string `json:"sdp"`
	}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	if params.SDP == nil || *params.SDP == "" {
		return nil, Errorf(CodeInvalidParams, "invalid params: sdp is required")
	}
	if err := sfu.ValidateSDP(*params.SDP); err != nil {
		return nil, Errorf(CodeInvalidParams, "%v", err)
	}
	var answered bool
	err := s.member.Offer(*params.SDP, func(answer string) {
		// Sent from inside HandleOffer, before any server candidate.
		s.respond(map[string]string{"sdp": answer})
		answered = true
	})
	if err != nil {
		return nil, toError(err)
	}
	if !answered {
		return nil, Errorf(CodeInternal, "internal error: no answer")
	}
	return responded, nil
}

// trickleParams are the params of "trickle", both ways.
type trickleParams struct {
	Target    string                   `json:"target"`
	Candidate *webrtc.ICECandidateInit `json:"candidate"`
}

func (s *session) trickle(raw json.RawMessage) (any, *Error) {
	var params struct {
		Target    *string         `json:"target"`
		Candidate json.RawMessage `json:"candidate"`
	}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	if params.Target == nil || (*params.Target != string(sfu.TargetPublisher) && *params.Target != string(sfu.TargetSubscriber)) {
		return nil, Errorf(CodeInvalidParams, `invalid params: target must be "publisher" or "subscriber"`)
	}
	if params.Candidate == nil {
		return nil, Errorf(CodeInvalidParams, "invalid params: candidate is required (null ends the candidates)")
	}
	var cand webrtc.ICECandidateInit
	end := string(params.Candidate) == "null"
	if !end {
		if params.Candidate[0] != '{' {
			return nil, Errorf(CodeInvalidParams, "invalid params: candidate must be an RTCIceCandidateInit object or null")
		}
		if err := decodeParams(params.Candidate, &cand); err != nil {
			err.Message = strings.Replace(err.Message, "invalid params: ", "invalid params: candidate.", 1)
			return nil, err
		}
		if err := sfu.ValidateCandidate(cand); err != nil {
			return nil, Errorf(CodeInvalidParams, "%v", err)
		}
	}
	if err := s.member.Trickle(sfu.Target(*params.Target), cand, end); err != nil {
		return nil, toError(err)
	}
	return struct{}{}, nil
}

func (s *session) leave(raw json.RawMessage) (any, *Error) {
	var params struct{}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	then, err := s.member.Leave()
	if err != nil {
		return nil, toError(err)
	}
	s.after = func() {
		then()
		s.closeWith(1000, "left")
	}
	return struct{}{}, nil
}

func (s *session) roomStop(raw json.RawMessage) (any, *Error) {
	var params struct{}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	then, err := s.member.StopRoom()
	if err != nil {
		return nil, toError(err)
	}
	s.after = then
	return struct{}{}, nil
}
