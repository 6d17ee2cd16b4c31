package signaling

import (
	"errors"
	"net/http"
	"os"
	"time"
)

// RecordingInfo is one finished recording as GET /v1/rooms/{room}/recordings
// lists it.
type RecordingInfo struct {
	Name        string    `json:"name"` // the file name, for the download URL
	Participant string    `json:"participant"`
	Size        int64     `json:"size"`      // bytes
	Duration    float64   `json:"duration"`  // seconds
	Tracks      []string  `json:"tracks"`    // "audio/opus", "video/VP8"
	StartedAt   time.Time `json:"startedAt"` // first media written
	URL         string    `json:"url"`       // where to download it
	// Cut: the server was killed while recording; the file was repaired
	// at its next start. It ends up to a few seconds before the kill
	// (what was still buffered was lost).
	Cut bool `json:"cut"`
}

// Recordings is what the HTTP API needs of the recorder (app implements it).
type Recordings interface {
	// SetRecording turns recording of a room on or off (for tracks
	// published from then on).
	SetRecording(room string, on bool)
	// List returns a room's finished recordings.
	List(room string) ([]RecordingInfo, error)
	// Path returns the file of a room's recording, os.ErrNotExist if none.
	Path(room, name string) (string, error)
}

func (s *Server) recordingRoutes(mux *http.ServeMux) {
	if s.recordings == nil {
		return
	}
	mux.HandleFunc("POST /v1/rooms/{room}/record", s.admin(func(r *http.Request) (int, any, *Error) {
		var in struct {
			On *bool `json:"on"`
		}
		if err := decodeBody(r, &in); err != nil {
			return 0, nil, err
		}
		room := s.sfu.Room(r.PathValue("room"))
		if room == nil {
			return 0, nil, Errorf(CodeNotFound, "room %s not found", r.PathValue("room"))
		}
		on := in.On == nil || *in.On
		s.recordings.SetRecording(room.Name(), on)
		return http.StatusOK, map[string]any{"room": room.Name(), "recording": on}, nil
	}))
	mux.HandleFunc("GET /v1/rooms/{room}/recordings", s.admin(func(r *http.Request) (int, any, *Error) {
		room := s.sfu.Room(r.PathValue("room"))
		if room == nil {
			return 0, nil, Errorf(CodeNotFound, "room %s not found", r.PathValue("room"))
		}
		list, err := s.recordings.List(room.Name())
		if err != nil {
			return 0, nil, Errorf(CodeInternal, "internal error")
		}
		if list == nil {
			list = []RecordingInfo{}
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
		path, err := s.recordings.Path(room, r.PathValue("name"))
		if errors.Is(err, os.ErrNotExist) {
			writeHTTPError(w, Errorf(CodeNotFound, "recording not found"))
			return
		}
		if err != nil {
			writeHTTPError(w, Errorf(CodeInternal, "internal error"))
			return
		}
		w.Header().Set("Content-Type", "video/webm")
		http.ServeFile(w, r, path)
	})
}

// emit sends an event to the webhooks, if any are configured.
func (s *Server) emit(typ, room string, data any) {
	if s.events != nil {
		s.events(typ, room, data)
	}
}
