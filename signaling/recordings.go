package signaling

import (
	"net/http"
)

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
		if err := s.rooms.SetRecording(room, on); err != nil {
			return 0, nil, toError(err)
		}
		return http.StatusOK, map[string]any{"room": room, "recording": on}, nil
	}))
	mux.HandleFunc("GET /v1/rooms/{room}/recordings", s.admin(func(r *http.Request) (int, any, *Error) {
		list, err := s.rooms.Recordings(r.PathValue("room"))
		if err != nil {
			return 0, nil, toError(err)
		}
		return http.StatusOK, map[string]any{"recordings": list}, nil
	}))
	// A download takes an admin token or a viewer (or host) token of that
	// room, as a bearer token or ?token=, so a <video> element can play it.
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
