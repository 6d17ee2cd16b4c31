package signaling

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/relaysfu/relayd/sfu"
)

// maxBody bounds HTTP API request bodies, like WebSocket frames.
const maxBody = 65536

// routes adds the HTTP API (PROTOCOL.md "HTTP API") to mux. Every route
// needs an admin token.
func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/tokens", s.admin(s.postToken))
	mux.HandleFunc("POST /v1/rooms", s.admin(s.postRoom))
	mux.HandleFunc("GET /v1/rooms", s.admin(s.listRooms))
	mux.HandleFunc("GET /v1/rooms/{room}", s.admin(s.getRoom))
	mux.HandleFunc("POST /v1/rooms/{room}/stop", s.admin(s.stopRoom))
}

type apiHandler func(r *http.Request) (status int, body any, err *Error)

// admin checks the bearer token (401 none or bad, 403 not admin), runs h
// and writes its JSON answer.
func (s *Server) admin(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" {
			writeHTTPError(w, Errorf(CodeUnauthenticated, "unauthenticated: Authorization: Bearer <admin token> required"))
			return
		}
		c, err := s.tokens.Verify(tok)
		if err != nil {
			writeHTTPError(w, Errorf(CodeUnauthenticated, "unauthenticated: %v", err))
			return
		}
		if !c.Admin {
			writeHTTPError(w, Errorf(CodeForbidden, "forbidden: an admin token is required"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		status, body, perr := h(r)
		if perr != nil {
			writeHTTPError(w, perr)
			return
		}
		writeJSON(w, status, body)
	}
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// decodeBody decodes a JSON body into dst: 413 when too large, 400 when
// not JSON or of the wrong types.
func decodeBody(r *http.Request, dst any) *Error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(CodeTooMany, "request body over %d bytes", maxBody)
		}
		return Errorf(CodeInvalidParams, "reading body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		b = []byte("{}")
	}
	if !json.Valid(b) {
		return Errorf(CodeParse, "body is not JSON")
	}
	return decodeParams(b, dst)
}

func (s *Server) postToken(r *http.Request) (int, any, *Error) {
	var in struct {
		Identity string          `json:"identity"`
		Room     string          `json:"room"`
		Role     string          `json:"role"`
		Name     string          `json:"name"`
		TTL      json.RawMessage `json:"ttl"`
	}
	if err := decodeBody(r, &in); err != nil {
		return 0, nil, err
	}
	if !ValidName(in.Identity) {
		return 0, nil, Errorf(CodeInvalidParams, "invalid params: identity must be 1-128 of [A-Za-z0-9_.:@-]")
	}
	if in.Room != "" && !ValidName(in.Room) {
		return 0, nil, Errorf(CodeInvalidParams, "invalid params: room must be 1-128 of [A-Za-z0-9_.:@-]")
	}
	if in.Room != "" && in.Role == "" {
		in.Role = "viewer"
	}
	if in.Role != "" && in.Role != "host" && in.Role != "viewer" {
		return 0, nil, Errorf(CodeInvalidParams, `invalid params: role must be "host" or "viewer"`)
	}
	ttl, perr := parseTTL(in.TTL)
	if perr != nil {
		return 0, nil, perr
	}
	tok, err := s.tokens.Issue(TokenSpec{Identity: in.Identity, Room: in.Room, Role: in.Role, Name: in.Name, TTL: ttl})
	if err != nil {
		return 0, nil, Errorf(CodeInvalidParams, "invalid params: %v", err)
	}
	scheme := "ws"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "wss"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: "/v1/ws", RawQuery: "token=" + url.QueryEscape(tok)}
	return http.StatusOK, map[string]string{"token": tok, "url": u.String()}, nil
}

// parseTTL accepts a Go duration string ("90m") or a number of seconds.
func parseTTL(raw json.RawMessage) (time.Duration, *Error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		d, err := time.ParseDuration(str)
		if err != nil || d <= 0 {
			return 0, Errorf(CodeInvalidParams, `invalid params: ttl must be a positive duration ("1h") or seconds`)
		}
		return d, nil
	}
	var secs float64
	if json.Unmarshal(raw, &secs) != nil || secs <= 0 {
		return 0, Errorf(CodeInvalidParams, `invalid params: ttl must be a positive duration ("1h") or seconds`)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

func (s *Server) postRoom(r *http.Request) (int, any, *Error) {
	var in struct {
		Name     string          `json:"name"`
		Host     string          `json:"host"`
		Title    string          `json:"title"`
		Metadata json.RawMessage `json:"metadata"`
		Record   bool            `json:"record"`
	}
	if err := decodeBody(r, &in); err != nil {
		return 0, nil, err
	}
	if !ValidName(in.Name) || !ValidName(in.Host) {
		return 0, nil, Errorf(CodeInvalidParams, "invalid params: name and host must be 1-128 of [A-Za-z0-9_.:@-]")
	}
	if cur := s.sfu.Room(in.Name); cur != nil && !cur.Status().Ended() {
		return 0, nil, Errorf(CodeConflict, "room %s exists", in.Name) // before the limit: nothing to count
	}
	if err := s.mayCreateRoom(in.Host); err != nil {
		return 0, nil, err
	}
	room, err := s.sfu.CreateRoom(in.Name, in.Host, in.Title, string(in.Metadata))
	if err != nil {
		if errors.Is(err, sfu.ErrRoomExists) {
			return 0, nil, Errorf(CodeConflict, "room %s exists", in.Name)
		}
		return 0, nil, toError(err)
	}
	s.persistRoom(room.Info(false))
	if in.Record && s.recordings != nil {
		s.recordings.SetRecording(room.Name(), true)
	}
	return http.StatusCreated, room.Info(false), nil
}

func (s *Server) listRooms(r *http.Request) (int, any, *Error) {
	status := r.URL.Query().Get("status")
	switch sfu.RoomStatus(status) {
	case "", sfu.StatusIdle, sfu.StatusLive, sfu.StatusWaitingReconnect, sfu.StatusEnded, sfu.StatusRecorded:
	default:
		return 0, nil, Errorf(CodeInvalidParams, "invalid params: status must be idle, live, waiting_reconnect, ended or recorded")
	}
	rooms := []sfu.RoomInfo{}
	for _, room := range s.sfu.Rooms() {
		info := room.Info(false)
		if status == "" || string(info.Status) == status {
			rooms = append(rooms, info)
		}
	}
	return http.StatusOK, map[string]any{"rooms": rooms}, nil
}

func (s *Server) getRoom(r *http.Request) (int, any, *Error) {
	room := s.localRoom(r.PathValue("room"))
	if room == nil {
		return 0, nil, Errorf(CodeNotFound, "room %s not found", r.PathValue("room"))
	}
	info := room.Info(true)
	if info.Participants == nil {
		info.Participants = []sfu.ParticipantInfo{}
	}
	return http.StatusOK, info, nil
}

func (s *Server) stopRoom(r *http.Request) (int, any, *Error) {
	room := s.localRoom(r.PathValue("room"))
	if room == nil {
		return 0, nil, Errorf(CodeNotFound, "room %s not found", r.PathValue("room"))
	}
	room.End(sfu.EndStoppedByAdmin)
	return http.StatusOK, room.Info(false), nil
}

// httpStatus maps a protocol code to its HTTP status.
func httpStatus(code int) int {
	switch code {
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeTooMany:
		return http.StatusRequestEntityTooLarge
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeInternal:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func writeHTTPError(w http.ResponseWriter, e *Error) {
	writeJSON(w, httpStatus(e.Code), map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func itoa(n int) string { return strconv.Itoa(n) }
