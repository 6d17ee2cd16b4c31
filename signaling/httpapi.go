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

	"github.com/relaysfu/relayd/rooms"
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
	mux.HandleFunc("GET /v1/rooms/{room}", s.roomReader(s.getRoom))
	mux.HandleFunc("POST /v1/rooms/{room}/stop", s.admin(s.stopRoom))
	mux.HandleFunc("GET /v1/rooms/{room}/broadcasts", s.admin(s.listBroadcasts))
	mux.HandleFunc("GET /v1/rooms/{room}/chat", s.admin(s.roomChat))
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

// roomReader is admin for what a participant of the room may read too:
// it also takes a token of that room (any role: what a viewer of the room
// sees), as a bearer token or ?token= (so that a page or a <video> element
// can ask).
func (s *Server) roomReader(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" {
			tok = r.URL.Query().Get("token")
		}
		if tok == "" {
			writeHTTPError(w, Errorf(CodeUnauthenticated, "unauthenticated: an admin token or a token of the room is required"))
			return
		}
		c, err := s.tokens.Verify(tok)
		if err != nil {
			writeHTTPError(w, Errorf(CodeUnauthenticated, "unauthenticated: %v", err))
			return
		}
		if room := r.PathValue("room"); !c.Admin && c.Room != room {
			writeHTTPError(w, Errorf(CodeForbidden, "forbidden: a token of room %s or an admin token is required", room))
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
	info, err := s.rooms.CreateRoom(in.Name, in.Host, in.Title, in.Metadata, in.Record)
	if err != nil {
		return 0, nil, toError(err)
	}
	return http.StatusCreated, info, nil
}

func (s *Server) listRooms(r *http.Request) (int, any, *Error) {
	status := sfu.RoomStatus(r.URL.Query().Get("status"))
	switch status {
	case "", sfu.StatusIdle, sfu.StatusLive, sfu.StatusWaitingReconnect, sfu.StatusEnded, sfu.StatusRecorded:
	default:
		return 0, nil, Errorf(CodeInvalidParams, "invalid params: status must be idle, live, waiting_reconnect, ended or recorded")
	}
	return http.StatusOK, map[string]any{"rooms": s.rooms.List(status)}, nil
}

// roomWithParticipants is the room object of GET /v1/rooms/{room}, whose
// participants are always listed ([] when there are none: the room object
// elsewhere omits the list), with the current broadcast's finished
// recordings (an extension: docs/protocol.md §10.4).
type roomWithParticipants struct {
	sfu.RoomInfo
	Participants []sfu.ParticipantInfo `json:"participants"`
	Recordings   []rooms.RecordingInfo `json:"recordings"`
}

func (s *Server) getRoom(r *http.Request) (int, any, *Error) {
	info, err := s.rooms.RoomInfo(r.PathValue("room"), true)
	if err != nil {
		return 0, nil, toError(err)
	}
	out := roomWithParticipants{RoomInfo: info, Participants: info.Participants}
	if out.Participants == nil {
		out.Participants = []sfu.ParticipantInfo{}
	}
	if out.Recordings, err = s.rooms.Recordings(info.Name, info.BroadcastID); err != nil {
		return 0, nil, toError(err)
	}
	return http.StatusOK, out, nil
}

func (s *Server) listBroadcasts(r *http.Request) (int, any, *Error) {
	list, err := s.rooms.Broadcasts(r.PathValue("room"))
	if err != nil {
		return 0, nil, toError(err)
	}
	return http.StatusOK, map[string]any{"broadcasts": list}, nil
}

// roomChat: GET /v1/rooms/{room}/chat?broadcast=&before=&limit=, a
// broadcast's chat (default: the current one), paged like chat.history.
func (s *Server) roomChat(r *http.Request) (int, any, *Error) {
	q := r.URL.Query()
	limit := 0 // rooms' default
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, nil, Errorf(CodeInvalidParams, "invalid params: limit must be 1-%d", rooms.HistoryMax)
		}
		limit = n
	}
	msgs, err := s.rooms.Chat(r.PathValue("room"), q.Get("broadcast"), q.Get("before"), limit)
	if err != nil {
		return 0, nil, toError(err)
	}
	return http.StatusOK, map[string]any{"messages": msgs}, nil
}

func (s *Server) stopRoom(r *http.Request) (int, any, *Error) {
	info, err := s.rooms.StopRoom(r.PathValue("room"))
	if err != nil {
		return 0, nil, toError(err)
	}
	return http.StatusOK, info, nil
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
