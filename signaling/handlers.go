package signaling

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

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

// inRoom refuses room methods to a user session (4003).
func (s *session) inRoom() *Error {
	if s.user || s.p == nil {
		return Errorf(CodeForbidden, "forbidden: a user session may only use invitation methods")
	}
	return nil
}

type joinResult struct {
	Participant  sfu.ParticipantInfo   `json:"participant"`
	Room         *sfu.RoomInfo         `json:"room"`
	Participants []sfu.ParticipantInfo `json:"participants"`
	Tracks       []sfu.TrackInfo       `json:"tracks"`
}

func (s *session) join(raw json.RawMessage) (any, *Error) {
	var params struct{}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	c := s.claims
	if c.Room == "" {
		s.joined, s.user = true, true
		s.srv.register(c.Identity(), s, true)
		s.observeJoin()
		return joinResult{
			Participant:  sfu.ParticipantInfo{Identity: c.Identity(), Name: c.Name, Role: sfu.RoleViewer, Tracks: []sfu.TrackInfo{}},
			Participants: []sfu.ParticipantInfo{},
			Tracks:       []sfu.TrackInfo{},
		}, nil
	}
	room := s.srv.localRoom(c.Room)
	role := sfu.RoleViewer
	if c.Role == "host" {
		role = sfu.RoleHost
		if room == nil {
			if err := s.srv.mayCreateRoom(c.Identity()); err != nil {
				return nil, err
			}
			r, err := s.srv.sfu.CreateRoom(c.Room, c.Identity(), "", "")
			if err != nil && !errors.Is(err, sfu.ErrRoomExists) {
				return nil, toError(err)
			}
			if err == nil {
				s.srv.persistRoom(r.Info(false))
			}
			room = r
		}
		if room.Host() != c.Identity() {
			return nil, Errorf(CodeForbidden, "forbidden: %s is not the host of room %s", c.Identity(), c.Room)
		}
	} else if room == nil {
		return nil, Errorf(CodeNotFound, "room %s not found", c.Room)
	}
	if s.srv.banned(c.Room, c.Identity()) {
		return nil, Errorf(CodeForbidden, "forbidden: %s is banned from room %s", c.Identity(), c.Room)
	}
	if room.Status().Ended() {
		return nil, Errorf(CodeConflict, "room %s has ended", c.Room)
	}
	if role == sfu.RoleViewer && s.srv.inv.IsCohost(c.Room, c.Identity()) {
		role = sfu.RoleCohost // joining later keeps an accepted invitation's role
	}
	p, st, err := room.Join(sfu.ParticipantParams{Identity: c.Identity(), Name: c.Name, Role: role, Events: s})
	if err != nil {
		return nil, toError(err)
	}
	s.p, s.joined = p, true
	s.part.Store(p)
	s.srv.bind(p, s)
	s.srv.register(c.Identity(), s, true)
	s.log = s.log.With("role", string(role))
	s.observeJoin()
	res := joinResult{Participant: st.Participant, Room: &st.Room, Participants: st.Participants, Tracks: st.Tracks}
	if res.Participants == nil {
		res.Participants = []sfu.ParticipantInfo{}
	}
	if res.Tracks == nil {
		res.Tracks = []sfu.TrackInfo{}
	}
	return res, nil
}

func (s *session) observeJoin() {
	s.srv.metrics.JoinLatency.Observe(time.Since(s.started).Seconds())
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
		return nil, toError(err)
	}
	if err := s.inRoom(); err != nil {
		return nil, err
	}
	if s.srv.cluster != nil && s.p.Role() == sfu.RoleViewer && s.srv.inv.IsCohost(s.p.Room().Name(), s.claims.Identity()) {
		// An invitation accepted through another node: its note on the
		// cluster channel may not be here yet, or was lost (pub/sub is
		// at most once). The shared store decides, as on one node.
		s.p.SetRole(sfu.RoleCohost)
	}
	var answered bool
	err := s.p.HandleOffer(*params.SDP, func(answer string) {
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
			return nil, toError(err)
		}
	}
	if err := s.inRoom(); err != nil {
		return nil, err
	}
	if end {
		return struct{}{}, nil
	}
	if err := s.p.AddICECandidate(sfu.Target(*params.Target), cand); err != nil {
		return nil, toError(err)
	}
	return struct{}{}, nil
}

func (s *session) leave(raw json.RawMessage) (any, *Error) {
	var params struct{}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	if err := s.inRoom(); err != nil {
		return nil, err
	}
	p := s.p
	s.after = func() {
		s.srv.relays.SourceGone(p)
		p.Leave()
		s.closeWith(1000, "left")
	}
	return struct{}{}, nil
}

func (s *session) roomStop(raw json.RawMessage) (any, *Error) {
	var params struct{}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	if err := s.inRoom(); err != nil {
		return nil, err
	}
	if s.p.Role() != sfu.RoleHost {
		return nil, Errorf(CodeForbidden, "forbidden: only the host may stop the room")
	}
	room := s.p.Room()
	s.after = func() { room.End(sfu.EndHostLeft) }
	return struct{}{}, nil
}
