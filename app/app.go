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
	"time"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/sfu"
	"github.com/relaysfu/relayd/signaling"
	"github.com/relaysfu/relayd/web"
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
	Dev                  bool // any origin; the demo pages' token endpoint
	Logger               *slog.Logger
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
}

// New builds and starts the server: stores opened, rooms restored, the
// invitation sweeper running (owned by the App, stopped by Close).
func New(o Options) (a *App, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a = &App{Metrics: metrics.New(), Tokens: signaling.NewTokens(o.Secret)}
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
	})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, mux)
	store, err := invitations.OpenBolt(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	a.closers = append(a.closers, store)
	chats, err := chat.OpenBolt(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	a.closers = append(a.closers, chats)

	maxCohosts := o.MaxCohosts
	if maxCohosts == 0 {
		maxCohosts = -1 // the Manager reads 0 as "default"; 0 here means none
	}
	var srv *signaling.Server // the hooks below run only once it is set
	inv := invitations.NewManager(invitations.Config{
		Store: store, TTL: o.InvitationTTL, MaxCohosts: maxCohosts, Logger: o.Logger, Metrics: a.Metrics,
		OnChange: func(i invitations.Invitation) { srv.InvitationChanged(i) },
	})
	a.SFU = sfu.New(sfu.Config{
		API: api, ReconnectGrace: o.ReconnectGrace, Logger: o.Logger, Metrics: a.Metrics,
		IsCohost:     inv.IsCohost,
		OnRoomStatus: func(info sfu.RoomInfo) { srv.RoomStatusChanged(info) },
	})
	srv = signaling.NewServer(signaling.Params{
		SFU: a.SFU, Tokens: a.Tokens, Metrics: a.Metrics, Logger: o.Logger,
		AllowedOrigins: o.AllowedOrigins, AnyOrigin: o.Dev,
		MaxRelayDestinations: o.MaxRelayDestinations,
		Invitations:          inv, Store: store, Chat: chats,
	})
	a.Signaling = srv
	if err := srv.RestoreRooms(); err != nil {
		return nil, fmt.Errorf("restoring rooms: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	a.stop, a.swept = stop, make(chan struct{})
	go func() {
		defer close(a.swept)
		inv.Run(ctx)
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
	root.Handle("/", pages)
	return root
}

// Close ends every room (participants are told), closes every session
// (waiting at most timeout), stops the sweeper and closes the stores.
func (a *App) Close(timeout time.Duration) {
	a.Signaling.Drain()
	a.SFU.Close()
	a.Signaling.Close(timeout)
	a.closeAll()
}

func (a *App) closeAll() {
	if a.stop != nil {
		a.stop()
		<-a.swept
		a.stop = nil
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		_ = a.closers[i].Close()
	}
	a.closers = nil
}
