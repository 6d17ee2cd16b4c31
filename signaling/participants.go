package signaling

// Mute and operators' control of participants (PROTOCOL.md 1.1 §7):
// track.mute, and the HTTP API's participants list, kick and mute. The
// rules are rooms' (rooms/mute.go, rooms/admin.go).

import (
	"encoding/json"
	"net/http"
)

func init() {
	handlers["track.mute"] = (*session).trackMute
	knownMethods["track.mute"] = true
}

// trackMute: track.mute {trackId, muted} -> the track object.
func (s *session) trackMute(raw json.RawMessage) (any, *Error) {
	var p struct {
		TrackID *string `json:"trackId"`
		Muted   *bool   `json:"muted"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	if p.TrackID == nil || *p.TrackID == "" {
		return nil, Errorf(CodeInvalidParams, "invalid params: trackId is required")
	}
	if p.Muted == nil {
		return nil, Errorf(CodeInvalidParams, "invalid params: muted is required (true or false)")
	}
	return reply(s.member.TrackMute(*p.TrackID, *p.Muted))
}

// trackMutedParams are track.muted's params.
type trackMutedParams struct {
	TrackID string `json:"trackId"`
	Muted   bool   `json:"muted"`
	By      string `json:"by"`
}

// trackStreamParams are track.stream's params.
type trackStreamParams struct {
	TrackID string `json:"trackId"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
}

// participantRoutes adds the participants of a room to the HTTP API
// (admin only): GET .../participants (an extension), POST
// .../participants/{identity}/kick and /mute.
func (s *Server) participantRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/rooms/{room}/participants", s.admin(s.listParticipants))
	mux.HandleFunc("POST /v1/rooms/{room}/participants/{identity}/kick", s.admin(s.kickParticipant))
	mux.HandleFunc("POST /v1/rooms/{room}/participants/{identity}/mute", s.admin(s.muteParticipant))
}

func (s *Server) listParticipants(r *http.Request) (int, any, *Error) {
	ps, err := s.rooms.Participants(r.PathValue("room"))
	if err != nil {
		return 0, nil, toError(err)
	}
	return http.StatusOK, map[string]any{"participants": ps}, nil
}

// pathIdentity is the {identity} of a participant route, checked.
func pathIdentity(r *http.Request) (string, *Error) {
	id := r.PathValue("identity")
	if !ValidName(id) {
		return "", Errorf(CodeInvalidParams, "invalid params: identity must be 1-128 of [A-Za-z0-9_.:@-]")
	}
	return id, nil
}

// kickParticipant: POST .../participants/{identity}/kick {ban?} -> {}.
func (s *Server) kickParticipant(r *http.Request) (int, any, *Error) {
	var in struct {
		Ban bool `json:"ban"`
	}
	if err := decodeBody(r, &in); err != nil {
		return 0, nil, err
	}
	id, perr := pathIdentity(r)
	if perr != nil {
		return 0, nil, perr
	}
	if err := s.rooms.KickParticipant(r.PathValue("room"), id, in.Ban); err != nil {
		return 0, nil, toError(err)
	}
	return http.StatusOK, struct{}{}, nil
}

// muteParticipant: POST .../participants/{identity}/mute {trackId?,
// kind?} -> {tracks}.
func (s *Server) muteParticipant(r *http.Request) (int, any, *Error) {
	var in struct {
		TrackID *string `json:"trackId"`
		Kind    *string `json:"kind"`
	}
	if err := decodeBody(r, &in); err != nil {
		return 0, nil, err
	}
	id, perr := pathIdentity(r)
	if perr != nil {
		return 0, nil, perr
	}
	var trackID, kind string
	if in.TrackID != nil {
		if trackID = *in.TrackID; trackID == "" {
			return 0, nil, Errorf(CodeInvalidParams, "invalid params: trackId must not be empty")
		}
	}
	if in.Kind != nil {
		if kind = *in.Kind; kind != "audio" && kind != "video" {
			return 0, nil, Errorf(CodeInvalidParams, `invalid params: kind must be "audio" or "video"`)
		}
	}
	tracks, err := s.rooms.MuteParticipant(r.PathValue("room"), id, trackID, kind)
	if err != nil {
		return 0, nil, toError(err)
	}
	return http.StatusOK, map[string]any{"tracks": tracks}, nil
}
