package signaling

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/sfu"
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

// invErr maps invitations errors to protocol codes.
func invErr(err error) *Error {
	switch {
	case errors.Is(err, invitations.ErrNotFound):
		return Errorf(CodeNotFound, "%v", err)
	case errors.Is(err, invitations.ErrForbidden):
		return Errorf(CodeForbidden, "forbidden: %v", err)
	case errors.Is(err, invitations.ErrConflict):
		return Errorf(CodeConflict, "%v", err)
	case errors.Is(err, invitations.ErrStageFull):
		return Errorf(CodeTooMany, "stage full: %v", err)
	case errors.Is(err, invitations.ErrInvalid):
		return Errorf(CodeInvalidParams, "invalid params: %v", err)
	}
	return toError(err)
}

// InvitationChanged is the invitations Manager's OnChange: it tells the
// host and every session of the invitee, and applies the role change in
// the room (accepted: co-host, live; removed or left: viewer again, with its
// publisher PC closed so its tracks stop at once).
func (s *Server) InvitationChanged(inv invitations.Invitation) {
	frame := encodeNotification("invitation.updated", map[string]any{"invitation": inv})
	for _, sess := range s.sessionsOf(inv.Host, inv.User) {
		sess.send(frame)
	}
	room := s.sfu.Room(inv.Room)
	if room == nil {
		return
	}
	p := room.Participant(inv.User)
	if p == nil {
		return
	}
	switch inv.Status {
	case invitations.StatusAccepted:
		if p.Role() == sfu.RoleViewer {
			p.SetRole(sfu.RoleCohost)
		}
	case invitations.StatusRemoved, invitations.StatusLeft:
		if p.Role() == sfu.RoleCohost && !s.inv.IsCohost(inv.Room, inv.User) {
			p.SetRole(sfu.RoleViewer)
		}
	}
}

// RoomChanged takes the sfu's room changes signaling acts on: a status
// change (RoomStatusChanged), and a relay source's track changes, which
// the relay follows.
func (s *Server) RoomChanged(c sfu.RoomChange) {
	switch c := c.(type) {
	case sfu.RoomStatusChanged:
		s.RoomStatusChanged(c.Info)
	case sfu.TrackChanged:
		s.relays.TrackChanged(c.Participant, c.Track, c.Published)
	}
}

// RoomStatusChanged is called for each sfu.RoomStatusChanged: it persists the room record
// and, when the room ends, stops its participants' relays, cancels its
// pending invitations and ends every co-host's stage. (Room.End runs it
// before telling participants room.updated "ended", their last
// notification.)
func (s *Server) RoomStatusChanged(info sfu.RoomInfo) {
	s.persistRoom(info)
	if info.Status == sfu.StatusEnded {
		for _, p := range s.endedParticipants(info.Name) {
			s.relays.SourceGone(p)
		}
		s.releaseRoom(info.Name)
		s.roomEnded(info.Name)
		if _, err := s.inv.EndRoom(info.Name); err != nil {
			s.log.Error("ending the room's invitations", "room", info.Name, "err", err)
		}
	}
}

// endedParticipants returns the joined participants of the ended room
// name.
func (s *Server) endedParticipants(name string) []*sfu.Participant {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*sfu.Participant
	for p := range s.byPart {
		if r := p.Room(); r.Name() == name && r.Status().Ended() {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) persistRoom(info sfu.RoomInfo) {
	err := s.store.PutRoom(invitations.RoomRecord{
		Name: info.Name, Host: info.Host, Title: info.Title, Metadata: info.Metadata,
		Status: string(info.Status), CreatedAt: info.CreatedAt, StartedAt: info.StartedAt, EndedAt: info.EndedAt,
		EndReason: string(info.EndReason),
	})
	if err != nil {
		s.log.Error("persisting the room", "room", info.Name, "err", err)
	}
}

// RestoreRooms registers the stored rooms after a restart: rooms that were
// live are ended (and stored so). Invitations are kept exactly as they
// were: nothing a client was told changes.
func (s *Server) RestoreRooms() error {
	recs, err := s.store.ListRooms()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		r := s.sfu.RestoreRoom(roomInfoOf(rec))
		if info := r.Info(false); string(info.Status) != rec.Status || string(info.EndReason) != rec.EndReason {
			s.persistRoom(info)
		}
	}
	return nil
}

// sessionsOf returns every joined session of the identities.
func (s *Server) sessionsOf(identities ...string) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	seen := map[*session]bool{}
	for _, id := range identities {
		for sess := range s.byIdentity[id] {
			if !seen[sess] {
				seen[sess] = true
				out = append(out, sess)
			}
		}
	}
	return out
}

func (s *Server) register(identity string, sess *session, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.byIdentity[identity]
	if !on {
		delete(set, sess)
		if len(set) == 0 {
			delete(s.byIdentity, identity)
		}
		return
	}
	if set == nil {
		set = map[*session]bool{}
		s.byIdentity[identity] = set
	}
	set[sess] = true
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

// hostOnly refuses anyone but the room's host (4003).
func (s *session) hostOnly() *Error {
	if s.user || s.p == nil || s.p.Role() != sfu.RoleHost {
		return Errorf(CodeForbidden, "forbidden: only the room's host may do this")
	}
	return nil
}

func (s *session) invitationCreate(raw json.RawMessage) (any, *Error) {
	user, perr := decodeUser(raw)
	if perr != nil {
		return nil, perr
	}
	if err := s.hostOnly(); err != nil {
		return nil, err
	}
	room := s.p.Room()
	if room.Status().Ended() {
		return nil, Errorf(CodeConflict, "room has ended")
	}
	inv, _, err := s.srv.inv.Create(room.Name(), room.Host(), s.claims.Identity(), user)
	if err != nil {
		return nil, invErr(err)
	}
	return inv, nil
}

func (s *session) invitationList(raw json.RawMessage) (any, *Error) {
	var p struct {
		Status *string `json:"status"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	var f invitations.Filter
	if p.Status != nil && *p.Status != "" {
		f.Status = invitations.Status(*p.Status)
		if !f.Status.Valid() {
			return nil, Errorf(CodeInvalidParams, "invalid params: unknown status %q", *p.Status)
		}
	}
	if !s.user && s.p != nil && s.p.Role() == sfu.RoleHost {
		f.Room = s.p.Room().Name()
	} else {
		f.User = s.claims.Identity()
	}
	list, err := s.srv.inv.List(f)
	if err != nil {
		return nil, invErr(err)
	}
	return map[string]any{"invitations": list}, nil
}

// answerable checks that the invitation exists and its room has not ended
// (in cluster mode the room may live on another node).
func (srv *Server) answerable(id string) *Error {
	inv, err := srv.inv.Get(id)
	if err != nil {
		return invErr(err)
	}
	return srv.roomOpen(inv.Room)
}

func (s *session) invitationAccept(raw json.RawMessage) (any, *Error) {
	id, perr := decodeID(raw)
	if perr != nil {
		return nil, perr
	}
	if err := s.srv.answerable(id); err != nil {
		return nil, err
	}
	inv, err := s.srv.inv.Accept(id, s.claims.Identity())
	if err != nil {
		return nil, invErr(err)
	}
	return inv, nil
}

func (s *session) invitationReject(raw json.RawMessage) (any, *Error) {
	id, perr := decodeID(raw)
	if perr != nil {
		return nil, perr
	}
	inv, err := s.srv.inv.Reject(id, s.claims.Identity())
	if err != nil {
		return nil, invErr(err)
	}
	return inv, nil
}

func (s *session) invitationCancel(raw json.RawMessage) (any, *Error) {
	id, perr := decodeID(raw)
	if perr != nil {
		return nil, perr
	}
	inv, err := s.srv.inv.Cancel(id, s.claims.Identity())
	if err != nil {
		return nil, invErr(err)
	}
	return inv, nil
}

func (s *session) cohostRemove(raw json.RawMessage) (any, *Error) {
	user, perr := decodeUser(raw)
	if perr != nil {
		return nil, perr
	}
	if err := s.hostOnly(); err != nil {
		return nil, err
	}
	if _, err := s.srv.inv.Remove(s.p.Room().Name(), s.claims.Identity(), user); err != nil {
		return nil, invErr(err)
	}
	return struct{}{}, nil
}

func (s *session) stageLeave(raw json.RawMessage) (any, *Error) {
	var p struct{}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	if s.user || s.p == nil || s.p.Role() != sfu.RoleCohost {
		return nil, Errorf(CodeForbidden, "forbidden: only a co-host may leave the stage")
	}
	if _, err := s.srv.inv.Leave(s.p.Room().Name(), s.claims.Identity()); err != nil {
		return nil, invErr(err)
	}
	return struct{}{}, nil
}

// invitationRoutes adds the invitations HTTP API for app back ends.
func (s *Server) invitationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/rooms/{room}/invitations", s.admin(func(r *http.Request) (int, any, *Error) {
		room := s.localRoom(r.PathValue("room"))
		if room == nil {
			return 0, nil, Errorf(CodeNotFound, "room %s not found", r.PathValue("room"))
		}
		return s.listInvitations(r, invitations.Filter{Room: room.Name()})
	}))
	mux.HandleFunc("POST /v1/rooms/{room}/invitations", s.admin(func(r *http.Request) (int, any, *Error) {
		var in userParams
		if err := decodeBody(r, &in); err != nil {
			return 0, nil, err
		}
		if in.User == nil || !ValidName(*in.User) {
			return 0, nil, Errorf(CodeInvalidParams, "invalid params: user must be 1-128 of [A-Za-z0-9_.:@-]")
		}
		room := s.localRoom(r.PathValue("room"))
		if room == nil {
			return 0, nil, Errorf(CodeNotFound, "room %s not found", r.PathValue("room"))
		}
		if room.Status().Ended() {
			return 0, nil, Errorf(CodeConflict, "room has ended")
		}
		inv, created, err := s.inv.Create(room.Name(), room.Host(), room.Host(), *in.User)
		if err != nil {
			return 0, nil, invErr(err)
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
		return s.listInvitations(r, invitations.Filter{User: r.PathValue("user")})
	}))
	mux.HandleFunc("POST /v1/invitations/{id}/{action}", s.admin(s.actOnInvitation))
}

func (s *Server) listInvitations(r *http.Request, f invitations.Filter) (int, any, *Error) {
	if st := r.URL.Query().Get("status"); st != "" {
		f.Status = invitations.Status(st)
		if !f.Status.Valid() {
			return 0, nil, Errorf(CodeInvalidParams, "invalid params: unknown status %q", st)
		}
	}
	list, err := s.inv.List(f)
	if err != nil {
		return 0, nil, invErr(err)
	}
	return http.StatusOK, map[string]any{"invitations": list}, nil
}

// actOnInvitation accepts or rejects as the invitee, or cancels as the
// host, on the app back end's behalf.
func (s *Server) actOnInvitation(r *http.Request) (int, any, *Error) {
	id, action := r.PathValue("id"), strings.ToLower(r.PathValue("action"))
	inv, err := s.inv.Get(id)
	if err != nil {
		return 0, nil, invErr(err)
	}
	switch action {
	case "accept":
		if perr := s.answerable(id); perr != nil {
			return 0, nil, perr
		}
		inv, err = s.inv.Accept(id, inv.User)
	case "reject":
		inv, err = s.inv.Reject(id, inv.User)
	case "cancel":
		inv, err = s.inv.Cancel(id, inv.Host)
	default:
		return 0, nil, Errorf(CodeNotFound, "no such action %q", action)
	}
	if err != nil {
		return 0, nil, invErr(err)
	}
	return http.StatusOK, inv, nil
}
