package signaling

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/relaysfu/relayd/invitations"
)

func init() {
	handlers["invitation.create"] = (*session).invitationCreate
	handlers["invitation.list"] = (*session).invitationList
	handlers["invitation.accept"] = (*session).invitationAccept
	handlers["invitation.reject"] = (*session).invitationReject
	handlers["invitation.cancel"] = (*session).invitationCancel
	handlers["cohost.remove"] = (*session).cohostRemove
	handlers["stage.leave"] = (*session).stageLeave
}

type userParams struct {
	User *string `json:"user"`
}

func decodeUser(raw json.RawMessage) (string, *Error) {
	var p userParams
	if err := decodeParams(raw, &p); err != nil {
		return "", err
	}
	if p.User == nil || !ValidName(*p.User) {
		return "", Errorf(CodeInvalidParams, "invalid params: user must be 1-128 of [A-Za-z0-9_.:@-]")
	}
	return *p.User, nil
}

func decodeID(raw json.RawMessage) (string, *Error) {
	var p struct {
		ID *string `json:"id"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return "", err
	}
	if p.ID == nil || *p.ID == "" {
		return "", Errorf(CodeInvalidParams, "invalid params: id is required")
	}
	return *p.ID, nil
}

// decodeStatus checks an invitation status filter ("" none).
func decodeStatus(st string) (invitations.Status, *Error) {
	s := invitations.Status(st)
	if s != "" && !s.Valid() {
		return "", Errorf(CodeInvalidParams, "invalid params: unknown status %q", st)
	}
	return s, nil
}

// reply answers a call into rooms: its result, or its error's code.
func reply[T any](v T, err error) (any, *Error) {
	if err != nil {
		return nil, toError(err)
	}
	return v, nil
}

// done answers {} for a call into rooms that has no result.
func done(err error) (any, *Error) {
	if err != nil {
		return nil, toError(err)
	}
	return struct{}{}, nil
}

func (s *session) invitationCreate(raw json.RawMessage) (any, *Error) {
	user, perr := decodeUser(raw)
	if perr != nil {
		return nil, perr
	}
	return reply(s.member.InvitationCreate(user))
}

func (s *session) invitationList(raw json.RawMessage) (any, *Error) {
	var p struct {
		Status *string `json:"status"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	var st invitations.Status
	if p.Status != nil {
		var perr *Error
		if st, perr = decodeStatus(*p.Status); perr != nil {
			return nil, perr
		}
	}
	list, err := s.member.InvitationList(st)
	if err != nil {
		return nil, toError(err)
	}
	return map[string]any{"invitations": list}, nil
}

func (s *session) invitationAccept(raw json.RawMessage) (any, *Error) {
	id, perr := decodeID(raw)
	if perr != nil {
		return nil, perr
	}
	return reply(s.member.InvitationAccept(id))
}

func (s *session) invitationReject(raw json.RawMessage) (any, *Error) {
	id, perr := decodeID(raw)
	if perr != nil {
		return nil, perr
	}
	return reply(s.member.InvitationReject(id))
}

func (s *session) invitationCancel(raw json.RawMessage) (any, *Error) {
	id, perr := decodeID(raw)
	if perr != nil {
		return nil, perr
	}
	return reply(s.member.InvitationCancel(id))
}

func (s *session) cohostRemove(raw json.RawMessage) (any, *Error) {
	user, perr := decodeUser(raw)
	if perr != nil {
		return nil, perr
	}
	return done(s.member.CohostRemove(user))
}

func (s *session) stageLeave(raw json.RawMessage) (any, *Error) {
	var p struct{}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	return done(s.member.StageLeave())
}

// invitationRoutes adds the invitations HTTP API for app back ends.
func (s *Server) invitationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/rooms/{room}/invitations", s.admin(func(r *http.Request) (int, any, *Error) {
		st, perr := decodeStatus(r.URL.Query().Get("status"))
		if perr != nil {
			return 0, nil, perr
		}
		list, err := s.rooms.RoomInvitations(r.PathValue("room"), st, r.URL.Query().Get("broadcast"))
		if err != nil {
			return 0, nil, toError(err)
		}
		return http.StatusOK, map[string]any{"invitations": list}, nil
	}))
	mux.HandleFunc("POST /v1/rooms/{room}/invitations", s.admin(func(r *http.Request) (int, any, *Error) {
		var in userParams
		if err := decodeBody(r, &in); err != nil {
			return 0, nil, err
		}
		if in.User == nil || !ValidName(*in.User) {
			return 0, nil, Errorf(CodeInvalidParams, "invalid params: user must be 1-128 of [A-Za-z0-9_.:@-]")
		}
		inv, created, err := s.rooms.Invite(r.PathValue("room"), *in.User)
		if err != nil {
			return 0, nil, toError(err)
		}
		if created {
			return http.StatusCreated, inv, nil
		}
		return http.StatusOK, inv, nil
	}))
	mux.HandleFunc("GET /v1/users/{user}/invitations", s.admin(func(r *http.Request) (int, any, *Error) {
		if !ValidName(r.PathValue("user")) {
			return 0, nil, Errorf(CodeInvalidParams, "invalid params: bad user")
		}
		st, perr := decodeStatus(r.URL.Query().Get("status"))
		if perr != nil {
			return 0, nil, perr
		}
		list, err := s.rooms.UserInvitations(r.PathValue("user"), st)
		if err != nil {
			return 0, nil, toError(err)
		}
		return http.StatusOK, map[string]any{"invitations": list}, nil
	}))
	// Accept or reject as the invitee, or cancel as the host, on the app
	// back end's behalf.
	mux.HandleFunc("POST /v1/invitations/{id}/{action}", s.admin(func(r *http.Request) (int, any, *Error) {
		inv, err := s.rooms.ActOnInvitation(r.PathValue("id"), strings.ToLower(r.PathValue("action")))
		if err != nil {
			return 0, nil, toError(err)
		}
		return http.StatusOK, inv, nil
	}))
}
