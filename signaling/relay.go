package signaling

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/relaysfu/relayd/relay"
)

func init() {
	handlers["relay.start"] = (*session).relayStart
	handlers["relay.update"] = (*session).relayUpdate
	handlers["relay.stop"] = (*session).relayStop
	handlers["relay.pause"] = (*session).relayPause
	handlers["relay.resume"] = (*session).relayResume
}

// relayErr maps relay errors to protocol codes.
func relayErr(err error) *Error {
	switch {
	case errors.Is(err, relay.ErrNotFound):
		return Errorf(CodeNotFound, "%v", err)
	case errors.Is(err, relay.ErrConflict):
		return Errorf(CodeConflict, "%v", err)
	case errors.Is(err, relay.ErrTooMany):
		return Errorf(CodeTooMany, "%v", err)
	case errors.Is(err, relay.ErrInvalid):
		return Errorf(CodeInvalidParams, "invalid params: %v", err)
	case errors.Is(err, relay.ErrForbidden):
		return Errorf(CodeForbidden, "forbidden: %v", err)
	}
	return toError(err)
}

// decodeTargets validates {destinations: [{room, token}]}.
func decodeTargets(raw json.RawMessage) ([]relay.Target, *Error) {
	var params struct {
		Destinations *[]struct {
			Room  *string `json:"room"`
			Token *string `json:"token"`
		} `json:"destinations"`
	}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	if params.Destinations == nil {
		return nil, Errorf(CodeInvalidParams, "invalid params: destinations is required")
	}
	ts := []relay.Target{}
	for i, d := range *params.Destinations {
		if d.Room == nil || !ValidName(*d.Room) {
			return nil, Errorf(CodeInvalidParams, "invalid params: destinations[%d].room must be 1-128 of [A-Za-z0-9_.:@-]", i)
		}
		if d.Token == nil || *d.Token == "" {
			return nil, Errorf(CodeInvalidParams, "invalid params: destinations[%d].token is required", i)
		}
		ts = append(ts, relay.Target{Room: *d.Room, Token: *d.Token})
	}
	return ts, nil
}

// relayNotify sends relay notifications to this session (and relay.state
// to the webhooks).
func (s *session) relayNotify(method string, params any) {
	s.send(encodeNotification(method, params))
	if method == "relay.state" {
		s.srv.emit("relay.state", s.claims.Room, params)
	}
}

func (s *session) relayStart(raw json.RawMessage) (any, *Error) {
	ts, perr := decodeTargets(raw)
	if perr != nil {
		return nil, perr
	}
	if len(ts) == 0 {
		return nil, Errorf(CodeInvalidParams, "invalid params: destinations must not be empty")
	}
	if err := s.inRoom(); err != nil {
		return nil, err
	}
	r, err := s.srv.relays.Start(s.p, ts, s.relayNotify)
	if err != nil {
		return nil, relayErr(err)
	}
	s.after = r.Begin
	return r.Info(), nil
}

// myRelay returns the caller's relay (4004 when none).
func (s *session) myRelay(raw json.RawMessage) (*relay.Relay, *Error) {
	var params struct{}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	if err := s.inRoom(); err != nil {
		return nil, err
	}
	r := s.srv.relays.Of(s.p)
	if r == nil {
		return nil, Errorf(CodeNotFound, "no relay of yours is running")
	}
	return r, nil
}

func (s *session) relayUpdate(raw json.RawMessage) (any, *Error) {
	ts, perr := decodeTargets(raw)
	if perr != nil {
		return nil, perr
	}
	if err := s.inRoom(); err != nil {
		return nil, err
	}
	r := s.srv.relays.Of(s.p)
	if r == nil {
		return nil, Errorf(CodeNotFound, "no relay of yours is running")
	}
	info, err := r.Update(ts)
	if err != nil {
		return nil, relayErr(err)
	}
	return info, nil
}

func (s *session) relayStop(raw json.RawMessage) (any, *Error) {
	r, err := s.myRelay(raw)
	if err != nil {
		return nil, err
	}
	return r.Stop(), nil
}

func (s *session) relayPause(raw json.RawMessage) (any, *Error) {
	r, perr := s.myRelay(raw)
	if perr != nil {
		return nil, perr
	}
	info, err := r.Pause()
	if err != nil {
		return nil, relayErr(err)
	}
	return info, nil
}

func (s *session) relayResume(raw json.RawMessage) (any, *Error) {
	r, perr := s.myRelay(raw)
	if perr != nil {
		return nil, perr
	}
	info, err := r.Resume()
	if err != nil {
		return nil, relayErr(err)
	}
	return info, nil
}

// authorizeTarget checks a relay destination: a token must be valid, for
// that room; an admin target names its identity.
func (s *Server) authorizeTarget(t relay.Target) (string, relay.Error) {
	if t.Token == "" {
		if !ValidName(t.Identity) {
			return "", relay.ErrFailedJoinDest
		}
		return t.Identity, relay.ErrNone
	}
	c, err := s.tokens.Verify(t.Token)
	if errors.Is(err, ErrTokenExpired) {
		return "", relay.ErrDestTokenExpired
	}
	if err != nil || c.Room != t.Room {
		return "", relay.ErrFailedJoinDest
	}
	return c.Identity(), relay.ErrNone
}

// relayRoutes adds the admin relay API.
func (s *Server) relayRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/relays", s.admin(func(*http.Request) (int, any, *Error) {
		return http.StatusOK, map[string]any{"relays": s.relays.List()}, nil
	}))
	mux.HandleFunc("POST /v1/relays", s.admin(s.postRelay))
	mux.HandleFunc("PUT /v1/relays/{id}", s.admin(s.putRelay))
	mux.HandleFunc("DELETE /v1/relays/{id}", s.admin(func(r *http.Request) (int, any, *Error) {
		rl := s.relays.Get(r.PathValue("id"))
		if rl == nil {
			return 0, nil, Errorf(CodeNotFound, "relay %s not found", r.PathValue("id"))
		}
		return http.StatusOK, rl.Stop(), nil
	}))
}

type adminDest struct {
	Room     *string `json:"room"`
	Identity *string `json:"identity"`
}

func adminTargets(ds *[]adminDest) ([]relay.Target, *Error) {
	if ds == nil {
		return nil, Errorf(CodeInvalidParams, "invalid params: destinations is required")
	}
	ts := []relay.Target{}
	for i, d := range *ds {
		if d.Room == nil || !ValidName(*d.Room) || d.Identity == nil || !ValidName(*d.Identity) {
			return nil, Errorf(CodeInvalidParams, "invalid params: destinations[%d] needs room and identity", i)
		}
		ts = append(ts, relay.Target{Room: *d.Room, Identity: *d.Identity})
	}
	return ts, nil
}

func (s *Server) postRelay(r *http.Request) (int, any, *Error) {
	var in struct {
		Source *struct {
			Room     string `json:"room"`
			Identity string `json:"identity"`
		} `json:"source"`
		Destinations *[]adminDest `json:"destinations"`
	}
	if err := decodeBody(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Source == nil || !ValidName(in.Source.Room) || !ValidName(in.Source.Identity) {
		return 0, nil, Errorf(CodeInvalidParams, "invalid params: source needs room and identity")
	}
	ts, perr := adminTargets(in.Destinations)
	if perr != nil {
		return 0, nil, perr
	}
	room := s.sfu.Room(in.Source.Room)
	if room == nil {
		return 0, nil, Errorf(CodeNotFound, "room %s not found", in.Source.Room)
	}
	p := room.Participant(in.Source.Identity)
	sess := s.sessionOf(p)
	if p == nil || sess == nil {
		return 0, nil, Errorf(CodeNotFound, "%s is not connected to room %s", in.Source.Identity, in.Source.Room)
	}
	rl, err := s.relays.Start(p, ts, sess.relayNotify)
	if err != nil {
		return 0, nil, relayErr(err)
	}
	rl.Begin()
	return http.StatusCreated, rl.Info(), nil
}

func (s *Server) putRelay(r *http.Request) (int, any, *Error) {
	var in struct {
		Destinations *[]adminDest `json:"destinations"`
	}
	if err := decodeBody(r, &in); err != nil {
		return 0, nil, err
	}
	ts, perr := adminTargets(in.Destinations)
	if perr != nil {
		return 0, nil, perr
	}
	rl := s.relays.Get(r.PathValue("id"))
	if rl == nil {
		return 0, nil, Errorf(CodeNotFound, "relay %s not found", r.PathValue("id"))
	}
	info, err := rl.Update(ts)
	if err != nil {
		return 0, nil, relayErr(err)
	}
	return http.StatusOK, info, nil
}
