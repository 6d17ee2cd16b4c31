// Command relayd is the SFU server: WebSocket signaling and the HTTP API on
// --listen, all media on one UDP port.
//
//	relayd --dev                  run with a generated secret, print links
//	relayd --secret S [flags]     run
//	relayd token --secret S --identity I [--room R] [--role host|viewer] [--admin] [--ttl 1h]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/sfu"
	"github.com/relaysfu/relayd/signaling"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "token" {
		os.Exit(runTokenCmd(os.Args[2:], os.Environ(), os.Stdout, os.Stderr))
	}
	cfg, err := LoadConfig(os.Args[1:], os.Environ())
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "relayd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "relayd:", err)
		os.Exit(1)
	}
}

// shutdownTimeout bounds the graceful shutdown: rooms ended, sessions told,
// HTTP drained.
const shutdownTimeout = 10 * time.Second

// run serves until ctx is cancelled, then shuts down gracefully: rooms end
// (participants get room.updated and a close), sessions close, the HTTP
// server drains, and the UDP socket closes. ready, when not nil, gets the
// HTTP address once the server accepts connections.
func run(ctx context.Context, cfg Config, stdout io.Writer, ready func(addr string)) error {
	log := newLogger(cfg, stdout)
	if cfg.Dev && cfg.Secret == "" {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		cfg.Secret = hex.EncodeToString(b)
	}
	udp, err := net.ListenPacket("udp4", net.JoinHostPort(cfg.UDPIP, strconv.Itoa(cfg.UDPPort)))
	if err != nil {
		return fmt.Errorf("media udp: %w", err)
	}
	defer udp.Close()
	// A media socket bound to a loopback address can only be reached over
	// loopback: offer those candidates even without --ice-loopback.
	loopback := cfg.ICELoopback
	if a, ok := udp.LocalAddr().(*net.UDPAddr); ok && a.IP.IsLoopback() {
		loopback = true
	}
	api, mux, err := sfu.NewAPI(sfu.MediaConfig{UDPConn: udp, ICELoopback: loopback, PublicIP: cfg.PublicIP})
	if err != nil {
		return err
	}
	defer mux.Close() // runs before udp.Close
	m := metrics.New()
	store, err := invitations.OpenBolt(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	defer store.Close()
	chats, err := chat.OpenBolt(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	defer chats.Close()
	maxCohosts := cfg.MaxCohosts
	if maxCohosts == 0 {
		maxCohosts = -1 // the Manager reads 0 as "default"; 0 here means no co-hosts
	}
	var srv *signaling.Server // the hooks below run only once it is set
	inv := invitations.NewManager(invitations.Config{
		Store: store, TTL: cfg.InvitationTTL, MaxCohosts: maxCohosts, Logger: log, Metrics: m,
		OnChange: func(i invitations.Invitation) { srv.InvitationChanged(i) },
	})
	s := sfu.New(sfu.Config{
		API: api, ReconnectGrace: cfg.ReconnectGrace, Logger: log, Metrics: m,
		IsCohost:     inv.IsCohost,
		OnRoomStatus: func(info sfu.RoomInfo) { srv.RoomStatusChanged(info) },
	})
	tokens := signaling.NewTokens([]byte(cfg.Secret))
	srv = signaling.NewServer(signaling.Params{
		SFU: s, Tokens: tokens, Metrics: m, Logger: log,
		AllowedOrigins: cfg.AllowedOrigins, AnyOrigin: cfg.Dev,
		MaxRelayDestinations: cfg.MaxRelayDestinations,
		Invitations:          inv, Store: store, Chat: chats,
	})
	if err := srv.RestoreRooms(); err != nil {
		return fmt.Errorf("restoring rooms: %w", err)
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		inv.Run(sweepCtx)
	}()
	defer func() {
		stopSweep()
		<-swept
	}()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	log.Info("relayd listening", "http", ln.Addr().String(), "udp", udp.LocalAddr().String())
	if cfg.Dev {
		printDev(stdout, tokens, cfg, ln.Addr().String())
	}
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	}
	log.Info("shutting down")
	srv.Drain()
	s.Close()
	srv.Close(shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	_ = w
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// printDev prints what a person needs to try the server at once.
func printDev(w io.Writer, tokens *signaling.Tokens, cfg Config, addr string) {
	admin, _ := tokens.Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: 24 * time.Hour})
	host, _ := tokens.Issue(signaling.TokenSpec{Identity: "alice", Room: "demo", Role: "host", Name: "Alice", TTL: 24 * time.Hour})
	viewer, _ := tokens.Issue(signaling.TokenSpec{Identity: "bob", Room: "demo", Role: "viewer", Name: "Bob", TTL: 24 * time.Hour})
	base := "http://" + addr
	fmt.Fprintf(w, `
relayd is running in --dev mode (never use it in production).

  secret:        %s
  admin token:   %s

  try the API:   curl -H "Authorization: Bearer %s" %s/v1/rooms
  host (alice):  ws://%s/v1/ws?token=%s
  viewer (bob):  ws://%s/v1/ws?token=%s
  metrics:       %s/metrics

`, cfg.Secret, admin, admin, base, addr, host, addr, viewer, base)
}
