package signaling

import (
	"encoding/json"
	"net/http"
)

func init() { handlers["room.record"] = (*session).roomRecord }

// roomRecord: room.record {on} turns recording of the host's room on or
// off and returns the room (whose recording says so). A server that
// records nothing (no data directory) has no such method: -32601.
func (s *session) roomRecord(raw json.RawMessage) (any, *Error) {
	if !s.srv.rooms.HasRecorder() {
		return nil, Errorf(CodeMethodNotFound, "method not found: this server records nothing")
	}
	var p struct {
		On *bool `json:"on"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	if p.On == nil {
		return nil, Errorf(CodeInvalidParams, "invalid params: on (true or false) is required")
	}
	return reply(s.member.Record(*p.On))
}

// recordingRoutes adds the recordings API: turning a room's recording on or
// off, listing its recordings, downloading one.
func (s *Server) recordingRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/rooms/{room}/record", s.admin(func(r *http.Request) (int, any, *Error) {
		var in struct {
			On *bool `json:"on"`
		}
		if err := decodeBody(r, &in); err != nil {
			return 0, nil, err
		}
		room, on := r.PathValue("room"), in.On == nil || *in.On
		if _, err := s.rooms.SetRecording(room, on); err != nil {
			return 0, nil, toError(err)
		}
		return http.StatusOK, map[string]any{"room": room, "recording": on}, nil
	}))
	// The list takes an admin token or a token of the room (a viewer's
	// page lists what it may then download), and ?broadcast=ID.
	mux.HandleFunc("GET /v1/rooms/{room}/recordings", s.roomReader(func(r *http.Request) (int, any, *Error) {
		list, err := s.rooms.Recordings(r.PathValue("room"), r.URL.Query().Get("broadcast"))
		if err != nil {
			return 0, nil, toError(err)
		}
		return http.StatusOK, map[string]any{"recordings": list}, nil
	}))
	// A download takes an admin token or a token of that room, as a
	// bearer token or ?token=, so a <video> element can play it.
	mux.HandleFunc("GET /v1/rooms/{room}/recordings/{name}", func(w http.ResponseWriter, r *http.Request) {
		room := r.PathValue("room")
		tok := bearer(r)
		if tok == "" {
			tok = r.URL.Query().Get("token")
		}
		c, err := s.tokens.Verify(tok)
		if err != nil {
			writeHTTPError(w, Errorf(CodeUnauthenticated, "unauthenticated: %v", err))
			return
		}
		if !c.Admin && c.Room != room {
			writeHTTPError(w, Errorf(CodeForbidden, "forbidden: a token of room %s or an admin token is required", room))
			return
		}
		path, err := s.rooms.RecordingPath(room, r.PathValue("name"))
		if err != nil {
			writeHTTPError(w, toError(err))
			return
		}
		w.Header().Set("Content-Type", "video/webm")
		http.ServeFile(w, r, path)
	})
}
