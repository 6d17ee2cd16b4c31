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

func (s *session) relayStart(raw json.RawMessage) (any, *Error) {
	ts, perr := decodeTargets(raw)
	if perr != nil {
		return nil, perr
	}
	if len(ts) == 0 {
		return nil, Errorf(CodeInvalidParams, "invalid params: destinations must not be empty")
	}
	info, begin, err := s.member.RelayStart(ts)
	if err != nil {
		return nil, toError(err)
	}
	s.after = begin
	return info, nil
}

func (s *session) relayUpdate(raw json.RawMessage) (any, *Error) {
	ts, perr := decodeTargets(raw)
	if perr != nil {
		return nil, perr
	}
	return reply(s.member.RelayUpdate(ts))
}

func (s *session) relayStop(raw json.RawMessage) (any, *Error) {
	var params struct{}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	return reply(s.member.RelayStop())
}

func (s *session) relayPause(raw json.RawMessage) (any, *Error) {
	var params struct{}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	return reply(s.member.RelayPause())
}

func (s *session) relayResume(raw json.RawMessage) (any, *Error) {
	var params struct{}
	if err := decodeParams(raw, &params); err != nil {
		return nil, err
	}
	return reply(s.member.RelayResume())
}

// RelayAuthorizer returns the check of a relay destination rooms is given
// (rooms.Config.AuthorizeRelay): a token must be valid, for that room, and
// its sub is the identity the stream takes there; an admin target names
// its identity. A token with role host is valid only for the room's host,
// as at join: hostOf names a room's host (false: not a room of this node,
// whose own gate decides).
func RelayAuthorizer(tokens *Tokens, hostOf func(room string) (string, bool)) func(relay.Target) (string, relay.Error) {
	return func(t relay.Target) (string, relay.Error) { return authorizeTarget(tokens, hostOf, t) }
}

func authorizeTarget(tokens *Tokens, hostOf func(string) (string, bool), t relay.Target) (string, relay.Error) {
	if t.Token == "" {
		if !ValidName(t.Identity) {
			return "", relay.ErrFailedJoinDest
		}
		return t.Identity, relay.ErrNone
	}
	c, err := tokens.Verify(t.Token)
	if errors.Is(err, ErrTokenExpired) {
		return "", relay.ErrDestTokenExpired
	}
	if err != nil || c.Room != t.Room {
		return "", relay.ErrFailedJoinDest
	}
	if c.Role == "host" && hostOf != nil {
		if host, ok := hostOf(t.Room); ok && host != c.Identity() {
			return "", relay.ErrFailedJoinDest
		}
	}
	return c.Identity(), relay.ErrNone
}

// relayRoutes adds the admin relay API.
func (s *Server) relayRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/relays", s.admin(func(*http.Request) (int, any, *Error) {
		return http.StatusOK, map[string]any{"relays": s.rooms.ListRelays()}, nil
	}))
	mux.HandleFunc("POST /v1/relays", s.admin(s.postRelay))
	mux.HandleFunc("PUT /v1/relays/{id}", s.admin(s.putRelay))
	mux.HandleFunc("DELETE /v1/relays/{id}", s.admin(func(r *http.Request) (int, any, *Error) {
		info, err := s.rooms.StopRelay(r.PathValue("id"))
		if err != nil {
			return 0, nil, toError(err)
		}
		return http.StatusOK, info, nil
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
	info, err := s.rooms.StartRelay(in.Source.Room, in.Source.Identity, ts)
	if err != nil {
		return 0, nil, toError(err)
	}
	return http.StatusCreated, info, nil
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
	info, err := s.rooms.UpdateRelay(r.PathValue("id"), ts)
	if err != nil {
		return 0, nil, toError(err)
	}
	return http.StatusOK, info, nil
}
