package signaling

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/rooms"
)

// Params are a Server's dependencies.
type Params struct {
	// Rooms owns the rooms and their rules; signaling is its transport.
	Rooms          *rooms.Rooms
	Tokens         *Tokens
	Metrics        *metrics.Metrics
	Logger         *slog.Logger
	AllowedOrigins []string // WebSocket origins allowed besides the server's own
	AnyOrigin      bool     // --dev: allow every origin
	// Cluster, when set, is cluster mode: requests for rooms on other
	// nodes are bridged there (cluster.go, bridge.go).
	Cluster Placement
	// MaxSocketsPerIdentity is --max-sockets-per-identity: the WebSockets
	// one token sub may hold open at once (0: no cap). sockets.go.
	MaxSocketsPerIdentity int
	// JoinDeadline is how long a socket has to join (0: DefaultJoinDeadline).
	JoinDeadline time.Duration
	// ICEServers, when set, gives the iceServers of a session's join result
	// (PROTOCOL.md 1.1 §4: the TURN servers); nil: none ([]).
	ICEServers func(*Claims) []ICEServer
}

// Server serves the WebSocket signaling and the HTTP API: it decodes,
// calls rooms, and encodes; in cluster mode it bridges and forwards.
type Server struct {
	rooms    *rooms.Rooms
	tokens   *Tokens
	metrics  *metrics.Metrics
	log      *slog.Logger
	origins  map[string]bool
	anyOrig  bool
	upgrader websocket.Upgrader
	draining atomic.Bool
	cluster  Placement
	sockets  *socketCounter // live sockets per identity (sockets.go)
	// joinDeadline is how long a socket has to join.
	joinDeadline time.Duration
	iceFn        func(*Claims) []ICEServer // Params.ICEServers
	resumables   *resumables               // sessions a resume may take over (resume.go)

	mu       sync.Mutex
	bridges  map[*websocket.Conn]bool // guarded by mu: bridged clients
	sessions map[*session]bool        // guarded by mu
	wg       sync.WaitGroup           // one per live session
}

// NewServer makes a Server.
func NewServer(p Params) *Server {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		rooms: p.Rooms, tokens: p.Tokens, metrics: p.Metrics, log: p.Logger,
		origins: map[string]bool{}, anyOrig: p.AnyOrigin,
		sessions:   map[*session]bool{},
		cluster:    p.Cluster,
		bridges:    map[*websocket.Conn]bool{},
		sockets:    newSocketCounter(p.MaxSocketsPerIdentity),
		iceFn:      p.ICEServers,
		resumables: newResumables(),
	}
	s.joinDeadline = p.JoinDeadline
	if s.joinDeadline <= 0 {
		s.joinDeadline = DefaultJoinDeadline
	}
	for _, o := range p.AllowedOrigins {
		s.origins[strings.TrimRight(strings.ToLower(o), "/")] = true
	}
	// Signaling is a few frames a minute per session once joined: write
	// buffers come from a pool only while a frame is written, and the
	// read buffer is small (a 64 KiB frame is read in pieces). A session
	// costs ~5 KB less than with 4 KiB buffers of its own.
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     s.checkOrigin,
	}
	return s
}

// Handler returns the HTTP routes: /v1/ws, the HTTP API, /metrics,
// /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", s.serveWS)
	s.routes(mux)
	s.relayRoutes(mux)
	s.invitationRoutes(mux)
	s.recordingRoutes(mux)
	s.participantRoutes(mux)
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return s.clusterHandler(mux)
}

// checkOrigin allows non-browser clients (no Origin), the server's own
// origin, --allowed-origins, and anything under --dev.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.anyOrig {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return s.origins[strings.TrimRight(strings.ToLower(origin), "/")]
}

// serveWS checks the token and upgrades; the session then runs in this
// goroutine.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeHTTPError(w, Errorf(CodeConflict, "server is shutting down"))
		return
	}
	tok := r.URL.Query().Get("token")
	if tok == "" {
		tok = bearer(r)
	}
	if tok == "" {
		writeHTTPError(w, Errorf(CodeUnauthenticated, "unauthenticated: token missing"))
		return
	}
	claims, err := s.tokens.Verify(tok)
	if err != nil {
		writeHTTPError(w, Errorf(CodeUnauthenticated, "unauthenticated: %v", err))
		return
	}
	if !s.checkOrigin(r) {
		writeHTTPError(w, Errorf(CodeForbidden, "forbidden: origin %q not allowed", r.Header.Get("Origin")))
		return
	}
	slot, ok := s.sockets.acquire(claims.Identity(), claims.Room)
	if !ok {
		s.log.Debug("socket refused: identity at its cap", "participant", claims.Identity(), "room", claims.Room, "max", s.sockets.max)
		writeHTTPError(w, Errorf(CodeRateLimited, "rate limited: %s has %d sockets open, the most allowed", claims.Identity(), s.sockets.max))
		return
	}
	// The slot is the session goroutine's once admit started one;
	// until then, and if it did not, the handler gives it back.
	serving := false
	defer func() {
		if !serving {
			slot.release()
		}
	}()
	routed := false
	if routed, serving = s.routeWS(w, r, claims, slot.release); routed {
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := newConn(s, ws, claims)
	c.slot = slot
	c.sess.resume = r.URL.Query().Has("resume")
	c.sess.resumeWith = r.URL.Query().Get("resume")
	serving = s.admit(ws, func(on bool) {
		if on {
			s.sessions[c.sess] = true
		} else {
			delete(s.sessions, c.sess)
		}
	}, c.serve, slot.release)
}

// admit serves a new connection: serve runs in a goroutine of its own,
// registered with register(true) (under mu) until it returns, then done
// runs; unless the server is draining: then the connection is closed with
// 1001 and admit reports false (done is not run: the caller's). The HTTP handler
// returns meanwhile, so net/http lets go of what it kept for the
// connection (its 4 KiB read and write buffers, the request): ~10 KiB
// per socket for as long as a session lasts.
func (s *Server) admit(conn *websocket.Conn, register func(on bool), serve, done func()) bool {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"))
		_ = conn.Close()
		return false
	}
	register(true)
	s.wg.Add(1)
	s.mu.Unlock()
	s.metrics.WSConnections.Inc()
	go func() {
		defer func() {
			s.metrics.WSConnections.Dec()
			s.mu.Lock()
			register(false)
			s.mu.Unlock()
			done()
			s.wg.Done()
		}()
		serve()
	}()
	return true
}

// count records one handled request in the metrics.
func (s *Server) count(method string, code int) {
	if !knownMethods[method] {
		method = "unknown"
	}
	c := "0"
	if code != 0 {
		c = itoa(code)
	}
	s.metrics.RPCRequests.WithLabelValues(method, c).Inc()
}

// Broadcast sends a notification to every session (each frames it: a 1.1
// session's has its seq).
// Held sessions (hold.go) get it too, for their replay; a session a
// resume took over does not (its successor does).
func (s *Server) Broadcast(method string, params any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		if !sess.moved() {
			sess.notify(method, params)
		}
	}
	for _, sess := range s.resumables.all() {
		if !s.sessions[sess] {
			sess.notify(method, params)
		}
	}
}

// Drain refuses new sessions (and /readyz says so) from now on.
func (s *Server) Drain() { s.draining.Store(true) }

// Close is Shutdown waiting at most timeout.
func (s *Server) Close(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.Shutdown(ctx)
}

// Shutdown closes every session still open (with 1001, going away) and
// bridged connection, and waits until they have cleaned up; once ctx is
// done it closes their connections and waits for that. Call it after
// rooms has ended the rooms, so room participants were told why.
func (s *Server) Shutdown(ctx context.Context) {
	s.Drain()
	s.mu.Lock()
	for sess := range s.sessions {
		sess.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
	for conn := range s.bridges {
		closeConn(conn, websocket.CloseGoingAway, "server shutting down")
		_ = conn.Close()
	}
	s.mu.Unlock()
	// Held sessions have no connection to close: they end now (their
	// rooms have ended already; a user session's member leaves).
	for _, sess := range s.resumables.all() {
		sess.closing()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for sess := range s.sessions {
			_ = sess.conn.ws.Close()
		}
		s.mu.Unlock()
		<-done
	}
}
