package signaling

// Cluster mode (--redis): each room lives on one node, and every node
// serves every request. A request for a room on another node is bridged
// there: a WebSocket by bridge.go (frames copied both ways, so the client
// never knows), an HTTP API call by a reverse proxy. Lists are merged from
// every node. The media goes to the room's node directly: the SDP answer
// it writes carries its own ICE candidates. docs/cluster.md tells the
// whole story.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/relaysfu/relayd/sfu"
)

// Placement is what signaling needs of the cluster.
type Placement interface {
	// Route returns the base URL (http://host:port) of the node serving
	// room, or "" when it is this node or when no live node holds it (then
	// this node answers from the shared store). place gives a room without
	// a node one: it is being created.
	Route(ctx context.Context, room string, place bool) (string, error)
	// Peers returns the base URLs of the other live nodes.
	Peers(ctx context.Context) ([]string, error)
	// NodeID names this node (in the forwarding header).
	NodeID() string
}

// hdrForwarded marks a request one node forwards to another: it is served
// where it lands, never forwarded again (no loops while placements move).
const hdrForwarded = "X-Relayd-Forwarded-By"

// routeTimeout bounds a placement lookup (one Redis round trip).
const routeTimeout = 3 * time.Second

// clusterHandler routes the HTTP API: room requests to the room's node,
// list requests to every node. Without a cluster it is next itself.
func (s *Server) clusterHandler(next http.Handler) http.Handler {
	if s.cluster == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(hdrForwarded) != "" || !strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/v1/ws" {
			next.ServeHTTP(w, r)
			return
		}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // v1, rooms, {room}, ...
		switch {
		case len(parts) == 2 && parts[1] == "rooms" && r.Method == http.MethodPost:
			s.forwardByBody(w, r, next, func(b []byte) string {
				var in struct{ Name string }
				_ = json.Unmarshal(b, &in)
				return in.Name
			}, true)
		case len(parts) >= 3 && parts[1] == "rooms":
			s.forwardRoom(w, r, next, parts[2], false)
		case len(parts) == 2 && parts[1] == "relays" && r.Method == http.MethodPost:
			s.forwardByBody(w, r, next, func(b []byte) string {
				var in struct{ Source struct{ Room string } }
				_ = json.Unmarshal(b, &in)
				return in.Source.Room
			}, false)
		case len(parts) == 3 && parts[1] == "relays":
			if s.rooms.HasRelay(parts[2]) {
				next.ServeHTTP(w, r)
				return
			}
			s.forwardToOwner(w, r, next)
		case len(parts) == 2 && (parts[1] == "rooms" || parts[1] == "relays") && r.Method == http.MethodGet:
			s.mergeLists(w, r, next, parts[1])
		default: // tokens, invitations by id, users: the store is shared
			next.ServeHTTP(w, r)
		}
	})
}

// forwardRoom serves r on room's node.
func (s *Server) forwardRoom(w http.ResponseWriter, r *http.Request, next http.Handler, room string, place bool) {
	ctx, cancel := context.WithTimeout(r.Context(), routeTimeout)
	target, err := s.cluster.Route(ctx, room, place && ValidName(room))
	cancel()
	if err != nil {
		writeHTTPError(w, Errorf(CodeInternal, "cluster: %v", err))
		return
	}
	if target == "" {
		next.ServeHTTP(w, r)
		return
	}
	s.proxy(w, r, target)
}

// forwardByBody routes a POST by a room named in its JSON body.
func (s *Server) forwardByBody(w http.ResponseWriter, r *http.Request, next http.Handler, room func([]byte) string, place bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeHTTPError(w, Errorf(CodeTooMany, "request body over %d bytes", maxBody))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	name := room(b)
	if !ValidName(name) {
		next.ServeHTTP(w, r) // the handler says what is wrong
		return
	}
	s.forwardRoom(w, r, next, name, place)
}

// forwardToOwner finds the node holding a relay that is not here.
func (s *Server) forwardToOwner(w http.ResponseWriter, r *http.Request, next http.Handler) {
	peers, err := s.cluster.Peers(r.Context())
	if err != nil || len(peers) == 0 {
		next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	for _, p := range peers {
		res, err := s.peerRequest(r, p, body)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		_ = res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			continue
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(b)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	next.ServeHTTP(w, r)
}

// mergeLists answers GET /v1/rooms and /v1/relays with every node's
// entries; rooms only the store knows (their node died) are added, ended.
func (s *Server) mergeLists(w http.ResponseWriter, r *http.Request, next http.Handler, kind string) {
	rec := &bufferedResponse{header: http.Header{}}
	next.ServeHTTP(rec, r)
	if rec.status != http.StatusOK {
		rec.flush(w)
		return
	}
	var mine map[string][]json.RawMessage
	if json.Unmarshal(rec.body.Bytes(), &mine) != nil {
		rec.flush(w)
		return
	}
	all := mine[kind]
	peers, _ := s.cluster.Peers(r.Context())
	for _, p := range peers {
		res, err := s.peerRequest(r, p, nil)
		if err != nil {
			continue // a node that just died: its rooms are ended in the store soon
		}
		var theirs map[string][]json.RawMessage
		if res.StatusCode == http.StatusOK {
			_ = json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(&theirs)
		}
		_ = res.Body.Close()
		all = append(all, theirs[kind]...)
	}
	if kind == "rooms" {
		all = s.addStoredRooms(dedupeRooms(all), r.URL.Query().Get("status"))
	}
	writeJSON(w, http.StatusOK, map[string]any{kind: all})
}

// dedupeRooms keeps one entry per room name. An ended room may be listed by
// more than one node (each node that served a request for it after its
// placement was released restores it from the store, ended); a room that
// is not ended is on one node only, and wins.
func dedupeRooms(list []json.RawMessage) []json.RawMessage {
	at := map[string]int{}
	out := list[:0:0]
	for _, raw := range list {
		var r struct{ Name, Status string }
		if json.Unmarshal(raw, &r) != nil {
			out = append(out, raw)
			continue
		}
		i, seen := at[r.Name]
		switch {
		case !seen:
			at[r.Name] = len(out)
			out = append(out, raw)
		case !sfu.RoomStatus(r.Status).Ended():
			out[i] = raw
		}
	}
	return out
}

// addStoredRooms adds the rooms no live node reported: those of dead nodes,
// which the store has as ended.
func (s *Server) addStoredRooms(list []json.RawMessage, status string) []json.RawMessage {
	seen := map[string]bool{}
	for _, raw := range list {
		var r struct{ Name string }
		if json.Unmarshal(raw, &r) == nil {
			seen[r.Name] = true
		}
	}
	extra, err := s.rooms.Stored(sfu.RoomStatus(status), seen)
	if err != nil {
		return list
	}
	for _, info := range extra {
		b, _ := json.Marshal(info)
		list = append(list, b)
	}
	return list
}

// peerRequest repeats r on a peer node, marked as forwarded.
func (s *Server) peerRequest(r *http.Request, base string, body []byte) (*http.Response, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hdrForwarded, s.cluster.NodeID())
	return peerClient.Do(req)
}

// peerClient talks to other nodes: loopback or a private network, so a
// short timeout says a node is gone.
var peerClient = &http.Client{Timeout: 5 * time.Second}

// proxy serves r on the node at target.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request, target string) {
	u, err := url.Parse(target)
	if err != nil {
		writeHTTPError(w, Errorf(CodeInternal, "cluster: bad node URL %q", target))
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(hdrForwarded, s.cluster.NodeID())
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeHTTPError(w, Errorf(CodeInternal, "cluster: the room's node did not answer: %v", err))
		},
	}
	rp.ServeHTTP(w, r)
}

// bufferedResponse captures a handler's answer to merge it.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(s int) {
	if b.status == 0 {
		b.status = s
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedResponse) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
