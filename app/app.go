// Package app is the composition root: it builds the whole server (the
// stores, the webhook outbox, rooms, which builds the sfu and the relays,
// signaling, the web pages, and in cluster mode the cluster's glue) from
// one Options, so the relayd binary and the end-to-end tests run the same
// stack. It holds no rule of its own: those are rooms'.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/cluster"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/relay"
	"github.com/relaysfu/relayd/rooms"
	"github.com/relaysfu/relayd/sfu"
	"github.com/relaysfu/relayd/signaling"
	"github.com/relaysfu/relayd/web"
	"github.com/relaysfu/relayd/webhooks"
)

// Options configure the server; cmd/relayd fills them from its flags.
type Options struct {
	Secret  []byte
	UDPConn net.PacketConn // the one media socket; the App does not close it
	// ICELoopback offers loopback candidates (always on when UDPConn is
	// bound to a loopback address: those are the only ones that work).
	ICELoopback bool
	// LoopbackOnly restricts ICE to loopback (hermetic tests).
	LoopbackOnly         bool
	PublicIP             string
	DataDir              string
	MaxCohosts           int // 0: no co-hosts
	MaxRelayDestinations int
	ReconnectGrace       time.Duration
	InvitationTTL        time.Duration
	AllowedOrigins       []string
	Dev                  bool     // any origin; the demo pages' token endpoint
	Record               bool     // record every room (else per room, via the API)
	WebhookURLs          []string // webhook receivers
	Logger               *slog.Logger

	// Cluster mode (docs/cluster.md): Redis is the redis:// URL; the stores
	// move there and the node joins the others. Advertise is this node's
	// base URL as other nodes reach it (http://host:port); NodeID names
	// it (default: random).
	Redis     string
	Advertise string
	NodeID    string

	// NoUDPBatch sends each media packet with its own sendto.
	NoUDPBatch bool
	// NoDirectSend sends subscribers' media through pion's write path
	// instead of the direct send path (sfu/directsend.go).
	NoDirectSend bool

	// RoomRetention is how long an ended room and its data are kept
	// (retention.go); 0: forever. RoomCreateRate is the rooms one
	// identity may create a minute; 0: no limit.
	RoomRetention  time.Duration
	RoomCreateRate int
	// MaxSocketsPerIdentity caps one identity's open WebSockets (0: none).
	MaxSocketsPerIdentity int

	// TCPListener, when set, carries passive ICE-TCP (--tcp-port); the
	// App closes it. TURN, when set, runs the embedded TURN server
	// (traversal.go).
	TCPListener net.Listener
	TURN        *TURNOptions
}

// App is a running server, without its listeners.
type App struct {
	Rooms     *rooms.Rooms
	SFU       *sfu.SFU
	Signaling *signaling.Server
	Tokens    *signaling.Tokens
	Metrics   *metrics.Metrics
	// Handler serves everything: /v1/ and the probes (signaling), the SDK
	// and the demo pages (web).
	Handler http.Handler

	closers []io.Closer
	stop    context.CancelFunc
	swept   chan struct{}
	logger  *slog.Logger
	store   invitations.Store
	chats   chat.Store

	// hooks is the webhook outbox; emit holds hooksMu (read) while it
	// writes, closeHooks (write) closes it: an event is in the outbox, or
	// refused after the close, never half way.
	hooksMu     sync.RWMutex
	hooks       *webhooks.Dispatcher
	hooksClosed bool // guarded by hooksMu

	draining  sync.Once   // Drain's work, once
	closing   atomic.Bool // the API refuses requests (Drain)
	callbacks gate        // callbacks of the cluster's goroutines

	// Cluster mode only.
	Cluster *cluster.Cluster
	rate    packetRate // the packets/s a node reports
}

// New builds and starts the server: stores opened, rooms restored, the
// background work (invitation expiry, retention, webhook delivery)
// running, owned by the App and stopped by Close.
func New(o Options) (a *App, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a = &App{Metrics: metrics.New(), Tokens: signaling.NewTokens(o.Secret), logger: o.Logger}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	loopback := o.ICELoopback
	if ua, ok := o.UDPConn.LocalAddr().(*net.UDPAddr); ok && ua.IP.IsLoopback() {
		loopback = true
	}
	turn, err := startTURN(o, loopback, a.Metrics)
	if err != nil {
		if o.TCPListener != nil {
			_ = o.TCPListener.Close()
		}
		return nil, err
	}
	mc := sfu.MediaConfig{
		UDPConn: o.UDPConn, ICELoopback: loopback, LoopbackOnly: o.LoopbackOnly, PublicIP: o.PublicIP,
		NoBatch: o.NoUDPBatch, NoDirect: o.NoDirectSend, TCPListener: o.TCPListener,
	}
	if turn != nil {
		a.closers = append(a.closers, turn)
		mc.RelayTransport = turn.TransportOf
	}
	api, mux, err := sfu.NewAPI(mc)
	if err != nil {
		if o.TCPListener != nil {
			_ = o.TCPListener.Close()
		}
		return nil, err
	}
	a.closers = append(a.closers, mux)
	cl, err := openCluster(o)
	if err != nil {
		return nil, err
	}
	if cl != nil {
		a.Cluster = cl
		a.closers = append(a.closers, cl) // closed last: the stores use its client
	}
	st, err := openStores(o, cl)
	if err != nil {
		return nil, err
	}
	a.store, a.chats = st.inv, st.chat
	a.closers = append(a.closers, st.inv, st.chat)

	a.hooks, err = webhooks.Open(webhooks.Config{
		URLs: o.WebhookURLs, Secret: o.Secret, Dir: o.DataDir, Logger: o.Logger,
		Redis: st.rdb, RedisPrefix: redisPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}

	maxCohosts := o.MaxCohosts
	if maxCohosts == 0 {
		maxCohosts = -1 // the Manager reads 0 as "default"; 0 here means none
	}
	rc := rooms.Config{
		Media: sfu.Config{API: api, ReconnectGrace: o.ReconnectGrace, Logger: o.Logger, Metrics: a.Metrics},
		Invitations: invitations.Config{
			Store: st.inv, TTL: o.InvitationTTL, MaxCohosts: maxCohosts, Logger: o.Logger, Metrics: a.Metrics,
		},
		Chat:                 st.chat,
		Webhooks:             emitter{a},
		AuthorizeRelay:       signaling.RelayAuthorizer(a.Tokens, a.roomHost),
		MaxRelayDestinations: o.MaxRelayDestinations,
		DataDir:              o.DataDir,
		RecordAll:            o.Record,
		Retention:            o.RoomRetention,
		RoomCreateRate:       o.RoomCreateRate,
	}
	params := signaling.Params{
		Tokens: a.Tokens, Metrics: a.Metrics, Logger: o.Logger,
		AllowedOrigins: o.AllowedOrigins, AnyOrigin: o.Dev,
		MaxSocketsPerIdentity: o.MaxSocketsPerIdentity,
		ICEServers:            iceServersFor(turn, o.ReconnectGrace),
	}
	if cl != nil {
		pl := placement{cl: cl, log: o.Logger}
		rc.Cluster, params.Cluster = pl, pl
		// The pipes to other nodes share the media port (the contract's
		// one UDP port): a conn of its ICE mux.
		linkConn, err := api.MuxConn(relay.LinkUfrag)
		if err != nil {
			return nil, fmt.Errorf("relay links: %w", err)
		}
		rc.Links = &relay.LinkConfig{NodeID: cl.NodeID(), Secret: o.Secret, Locate: pl.locate, Conn: linkConn}
	}
	if a.Rooms, err = rooms.New(rc); err != nil {
		return nil, fmt.Errorf("restoring rooms: %w", err)
	}
	a.SFU = a.Rooms.SFU()
	if l := a.Rooms.Links(); l != nil {
		a.closers = append(a.closers, closerFunc(func() error { l.Close(); return nil }))
	}
	params.Rooms = a.Rooms
	a.Signaling = signaling.NewServer(params)
	if cl != nil {
		a.startCluster(cl)
	}
	ctx, stop := context.WithCancel(context.Background())
	a.stop, a.swept = stop, make(chan struct{})
	go func() {
		defer close(a.swept)
		var wg sync.WaitGroup
		wg.Go(func() { a.hooks.Run(ctx) })
		a.Rooms.Run(ctx)
		wg.Wait()
	}()
	a.Handler = a.refuseWhileClosing(a.routes(o))
	return a, nil
}

// routes sends /v1/ and the probes to signaling, everything else (the JS
// SDK, the demo pages, and under Dev the token endpoint) to web.
func (a *App) routes(o Options) http.Handler {
	sig := a.Signaling.Handler()
	pages := web.Handler(web.Options{
		Dev: o.Dev,
		MintToken: func(identity, room, role string) (string, error) {
			return a.Tokens.Issue(signaling.TokenSpec{Identity: identity, Room: room, Role: role, Name: identity, TTL: 12 * time.Hour})
		},
		Rooms:  func() any { return a.Rooms.List("") },
		Logger: o.Logger,
	})
	root := http.NewServeMux()
	for _, p := range []string{"/v1/", "/metrics", "/healthz", "/readyz"} {
		root.Handle(p, sig)
	}
	if l := a.Rooms.Links(); l != nil {
		root.Handle("POST /internal/v1/links", l.Handler())
	}
	root.Handle("/", pages)
	return root
}

// emit hands an event to the webhooks (a durable outbox: it survives a
// restart); with no --webhook-url nothing is stored. After the outbox is
// closed (the last steps of Shutdown) nothing can emit any more: an event
// then is a bug in the shutdown order, logged and dropped.
func (a *App) emit(typ, room string, data any) {
	a.hooksMu.RLock()
	defer a.hooksMu.RUnlock()
	if a.hooksClosed {
		a.log().Error("webhook event after the outbox closed: dropped", "type", typ, "room", room)
		return
	}
	if _, err := a.hooks.Emit(typ, room, data); err != nil {
		a.log().Error("webhook event", "type", typ, "room", room, "err", err)
	}
}

// closeHooks closes the outbox once no emit is under way; emit refuses
// from then on.
func (a *App) closeHooks() {
	a.hooksMu.Lock()
	defer a.hooksMu.Unlock()
	if a.hooks != nil && !a.hooksClosed {
		_ = a.hooks.Close()
	}
	a.hooksClosed = true
}

// emitter hands rooms' webhook events to the App's outbox.
type emitter struct{ a *App }

func (e emitter) Emit(typ, room string, data any) { e.a.emit(typ, room, data) }

func (a *App) log() *slog.Logger { return a.logger }

// roomHost names a room's host for the relay's check of host tokens
// (signaling.RelayAuthorizer); relays run only once a.Rooms is set.
func (a *App) roomHost(room string) (string, bool) {
	if a.Rooms == nil {
		return "", false
	}
	return a.Rooms.HostOf(room)
}

// The shutdown, in this order and nowhere else (cmd/relayd's run calls
// Drain, then Shutdown with its HTTP server's Shutdown):
//
//  1. Drain: stop accepting. New sessions and API requests are refused
//     (/healthz, /readyz, which answers 503, and /metrics still answer);
//     every session is told server.draining.
//  2. End every room at once (server_shutdown). Each End returns after its
//     effects: the room record stored, its invitations cancelled (stored,
//     told, and published to the other nodes), its relays stopped, its
//     webhook in the outbox. Then the recordings are finalized (a room goes
//     recorded, recording.completed is in the outbox).
//  3. Close the sessions (1001 for those not in a room), waiting for them.
//  4. Stop the HTTP server (the caller's): the requests under way finish.
//  5. Stop the background loops: callbacks of the cluster's goroutines are
//     refused (those running are waited for), the invitation sweeper and
//     the webhook delivery stop.
//  6. Close the stores and clients: the webhook outbox (undelivered events
//     stay in it for the next start), the relay links, the invitation and
//     chat stores, the cluster membership (which closes the Redis client)
//     and the media mux.
//
// Nothing of the App runs after Shutdown returns.

// Drain is step 1: from now on new sessions and API requests are refused
// and /readyz answers 503; every session is told server.draining, with the
// time by which the server will have stopped. Calling it again does
// nothing.
func (a *App) Drain(deadline time.Time) {
	a.draining.Do(func() {
		a.closing.Store(true)
		a.Signaling.Drain()
		a.Signaling.Broadcast("server.draining", map[string]any{"deadline": deadline.UTC()})
	})
}

// Shutdown runs the steps above (Drain first if it was not called). ctx
// bounds the waits for sessions (3) and HTTP requests (4): past it they
// are closed; the rooms' effects (2) and the closing steps (5, 6) are
// always waited for, since what they do must not be lost. stopHTTP may be
// nil (tests serving a.Handler with httptest close it themselves).
func (a *App) Shutdown(ctx context.Context, stopHTTP func(context.Context) error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now()
	}
	a.Drain(deadline) // done already when called from cmd/relayd
	a.log().Info("shutdown: ending every room")
	a.Rooms.Close()
	a.log().Info("shutdown: closing sessions")
	a.Signaling.Shutdown(ctx)
	if stopHTTP != nil {
		if err := stopHTTP(ctx); err != nil {
			a.log().Warn("shutdown: HTTP requests cut short", "err", err)
		}
	}
	a.log().Info("shutdown: stopping background work and closing the stores")
	a.closeAll()
}

// Close is Shutdown with at most timeout for the sessions, and no HTTP
// server of its own.
func (a *App) Close(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a.Shutdown(ctx, nil)
}

// closeAll is steps 5 and 6 (and what New undoes when it fails).
func (a *App) closeAll() {
	a.callbacks.shut()
	if a.stop != nil {
		a.stop()
		<-a.swept
		a.stop = nil
	}
	a.closeHooks()
	for i := len(a.closers) - 1; i >= 0; i-- {
		_ = a.closers[i].Close()
	}
	a.closers = nil
}

// refuseWhileClosing answers API requests with 409 (4009, as a WebSocket
// is refused) once Drain has been called; the probes and /metrics still
// answer, and so do /v1/ws (refused by signaling itself) and the pages.
func (a *App) refuseWhileClosing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.closing.Load() && r.URL.Path != "/v1/ws" &&
			(strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/internal/")) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"error":{"code":4009,"message":"server is shutting down"}}`+"\n")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// gate admits callbacks from goroutines the App does not own (the
// cluster's heartbeat, watch and pub/sub loops) until shut; shut refuses
// new ones and returns once those under way have returned. (Unlike an
// RWMutex's read lock, a callback may pass it again from inside: no
// waiting writer blocks it.)
type gate struct {
	mu     sync.Mutex
	closed bool // guarded by mu
	wg     sync.WaitGroup
}

// run runs f unless the gate is shut; ok is false when it did not.
func (g *gate) run(f func()) (ok bool) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.wg.Add(1) // under mu, before shut can start waiting
	g.mu.Unlock()
	defer g.wg.Done()
	f()
	return true
}

func (g *gate) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
