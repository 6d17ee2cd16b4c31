// Package app is the composition root: it builds the whole server (stores,
// invitations, chat, sfu, relay and signaling, the web pages) from one
// Options, so the relayd binary and the end-to-end tests run the same stack.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/relaysfu/relayd/cluster"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/recorder"
	"github.com/relaysfu/relayd/relay"
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

	// RoomRetention is how long an ended room and its data are kept
	// (retention.go); 0: forever. RoomCreateRate is the rooms one
	// identity may create a minute; 0: no limit.
	RoomRetention  time.Duration
	RoomCreateRate int
	// MaxSocketsPerIdentity caps one identity's open WebSockets (0: none).
	MaxSocketsPerIdentity int
}

// App is a running server, without its listeners.
type App struct {
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
	hooks   *webhooks.Dispatcher
	logger  *slog.Logger
	rec     *recordings
	started sync.Map // rooms that have gone live: room.started once

	ret *retention // purges ended rooms (retention.go)

	// Cluster mode only.
	Cluster   *cluster.Cluster
	links     *relay.Links
	rateMu    sync.Mutex
	rateAt    time.Time
	rateTotal float64
}

// New builds and starts the server: stores opened, rooms restored, the
// invitation sweeper running (owned by the App, stopped by Close).
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
	api, mux, err := sfu.NewAPI(sfu.MediaConfig{
		UDPConn: o.UDPConn, ICELoopback: loopback, LoopbackOnly: o.LoopbackOnly, PublicIP: o.PublicIP,
		NoBatch: o.NoUDPBatch,
	})
	if err != nil {
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
	store, chats := st.inv, st.chat
	a.closers = append(a.closers, store, chats)

	a.hooks, err = webhooks.Open(webhooks.Config{
		URLs: o.WebhookURLs, Secret: o.Secret, Dir: o.DataDir, Logger: o.Logger,
		Redis: st.rdb, RedisPrefix: redisPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	a.rec = &recordings{
		dir: filepath.Join(o.DataDir, "recordings"), all: o.Record, sfu: func() *sfu.SFU { return a.SFU },
		emit: a.emit, log: o.Logger,
		on: map[string]bool{}, active: map[string]map[*sfu.Participant]*recorder.Recorder{},
	}

	maxCohosts := o.MaxCohosts
	if maxCohosts == 0 {
		maxCohosts = -1 // the Manager reads 0 as "default"; 0 here means none
	}
	var srv *signaling.Server // the hooks below run only once it is set
	inv := invitations.NewManager(invitations.Config{
		Store: store, TTL: o.InvitationTTL, MaxCohosts: maxCohosts, Logger: o.Logger, Metrics: a.Metrics,
		OnChange: func(i invitations.Invitation) {
			srv.InvitationChanged(i)
			if cl != nil {
				publishInvitation(cl, i, a.log().Error)
			}
			a.emit("invitation.updated", i.Room, map[string]any{"invitation": i, "status": i.Status})
		},
	})
	a.SFU = sfu.New(sfu.Config{
		API: api, ReconnectGrace: o.ReconnectGrace, Logger: o.Logger, Metrics: a.Metrics,
		IsCohost: inv.IsCohost,
		OnRoomStatus: func(info sfu.RoomInfo) {
			srv.RoomStatusChanged(info)
			a.roomStatus(info)
		},
		OnTrack: a.rec.onTrack,
		OnParticipant: func(r *sfu.Room, p sfu.ParticipantInfo, joined bool) {
			typ := "participant.left"
			if joined {
				typ = "participant.joined"
			}
			a.emit(typ, r.Name(), map[string]any{"identity": p.Identity, "role": p.Role})
		},
	})
	params := signaling.Params{
		SFU: a.SFU, Tokens: a.Tokens, Metrics: a.Metrics, Logger: o.Logger,
		AllowedOrigins: o.AllowedOrigins, AnyOrigin: o.Dev,
		MaxRelayDestinations: o.MaxRelayDestinations,
		Invitations:          inv, Store: store, Chat: chats,
		Recordings: a.rec, Events: a.emit, RoomCreateRate: o.RoomCreateRate,
		MaxSocketsPerIdentity: o.MaxSocketsPerIdentity,
	}
	if cl != nil {
		pl := placement{cl}
		a.links = relay.NewLinks(relay.LinkConfig{
			NodeID: cl.NodeID(), Secret: o.Secret, API: api.Publisher, Locate: pl.locate,
			SFU: a.SFU, Logger: o.Logger, Metrics: a.Metrics,
		})
		a.closers = append(a.closers, closerFunc(func() error { a.links.Close(); return nil }))
		params.Cluster, params.RelayRemote = pl, a.links
	}
	srv = signaling.NewServer(params)
	a.Signaling = srv
	if cl != nil {
		// Rooms are restored lazily, by the node they are placed on
		// (signaling's localRoom); a dead node's rooms are ended by the
		// node that cleans it up.
		a.startCluster(cl, inv, store, a.links)
	} else if err := srv.RestoreRooms(); err != nil {
		return nil, fmt.Errorf("restoring rooms: %w", err)
	}
	a.rec.repairCut() // recordings a kill left unfinished: before rooms are served
	ctx, stop := context.WithCancel(context.Background())
	a.stop, a.swept = stop, make(chan struct{})
	a.ret = &retention{keep: o.RoomRetention, sfu: a.SFU, store: store, chat: chats, recDir: a.rec.dir, log: o.Logger}
	go func() {
		defer close(a.swept)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.hooks.Run(ctx)
		}()
		wg.Go(func() { a.ret.run(ctx) })
		inv.Run(ctx)
		wg.Wait()
	}()
	a.Handler = a.routes(o)
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
		Rooms: func() any {
			rooms := []sfu.RoomInfo{}
			for _, r := range a.SFU.Rooms() {
				rooms = append(rooms, r.Info(false))
			}
			return rooms
		},
		Logger: o.Logger,
	})
	root := http.NewServeMux()
	for _, p := range []string{"/v1/", "/metrics", "/healthz", "/readyz"} {
		root.Handle(p, sig)
	}
	if a.links != nil {
		root.Handle("POST /internal/v1/links", a.links.Handler())
	}
	root.Handle("/", pages)
	return root
}

// emit hands an event to the webhooks (a durable outbox: it survives a
// restart); with no --webhook-url nothing is stored.
func (a *App) emit(typ, room string, data any) {
	if _, err := a.hooks.Emit(typ, room, data); err != nil {
		a.log().Error("webhook event", "type", typ, "room", room, "err", err)
	}
}

func (a *App) log() *slog.Logger { return a.logger }

// roomStatus emits room.started (once per room) and room.ended, and has a
// room's recordings finalized when it ends.
func (a *App) roomStatus(info sfu.RoomInfo) {
	switch info.Status {
	case sfu.StatusLive:
		if _, seen := a.started.LoadOrStore(info.Name, true); !seen {
			a.emit("room.started", info.Name, map[string]any{"host": info.Host})
		}
	case sfu.StatusEnded:
		a.started.Delete(info.Name)
		a.emit("room.ended", info.Name, map[string]any{})
		a.rec.roomEnded(info.Name)
	}
}

// Close ends every room (participants are told), closes every session
// (waiting at most timeout), lets recordings finish, stops the sweeper and
// the webhook dispatcher (undelivered events stay in the outbox) and
// closes the stores.
func (a *App) Close(timeout time.Duration) {
	a.Signaling.Drain()
	a.SFU.Close()
	a.Signaling.Close(timeout)
	a.rec.wait()
	a.closeAll()
}

func (a *App) closeAll() {
	if a.stop != nil {
		a.stop()
		<-a.swept
		a.stop = nil
	}
	if a.hooks != nil {
		_ = a.hooks.Close()
		a.hooks = nil
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		_ = a.closers[i].Close()
	}
	a.closers = nil
}
