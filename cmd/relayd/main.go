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
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/relaysfu/relayd/app"
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
	setGCPercent()
	// SIGTERM drains (joins refused, rooms told, up to --drain-timeout);
	// SIGINT, or a second signal, stops at once.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	drain := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		if <-sigs == syscall.SIGTERM {
			close(drain)
			<-sigs
		}
		stop()
	}()
	if err := run(ctx, cfg, os.Stdout, nil, drain); err != nil {
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
//
// Closing drain first drains: new sessions are refused and /readyz says so,
// every session gets a server.draining notification, and rooms may finish
// for up to --drain-timeout (ctx cancelled cuts it short); then the same
// shutdown.
func run(ctx context.Context, cfg Config, stdout io.Writer, ready func(addr string), drain <-chan struct{}) error {
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
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	advertise := cfg.Advertise
	if advertise == "" {
		advertise = "http://" + ln.Addr().String()
	}
	a, err := app.New(app.Options{
		Secret: []byte(cfg.Secret), UDPConn: udp, ICELoopback: cfg.ICELoopback, PublicIP: cfg.PublicIP,
		DataDir: cfg.DataDir, MaxCohosts: cfg.MaxCohosts, MaxRelayDestinations: cfg.MaxRelayDestinations,
		ReconnectGrace: cfg.ReconnectGrace, InvitationTTL: cfg.InvitationTTL,
		AllowedOrigins: cfg.AllowedOrigins, Dev: cfg.Dev, Logger: log,
		Record: cfg.Record, WebhookURLs: cfg.WebhookURLs,
		Redis: cfg.Redis, Advertise: advertise, NodeID: cfg.NodeID, NoUDPBatch: !cfg.UDPBatch,
		RoomRetention: cfg.RoomRetention, RoomCreateRate: cfg.RoomCreateRate,
		MaxSocketsPerIdentity: cfg.MaxSocketsPerIdentity,
	})
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	log.Info("relayd listening", "http", ln.Addr().String(), "udp", udp.LocalAddr().String())
	if cfg.Dev {
		printDev(stdout, a.Tokens, cfg, ln.Addr().String())
	}
	if ready != nil {
		ready(ln.Addr().String())
	}

	stopAdmin, err := startAdmin(cfg.AdminListen, log)
	if err != nil {
		return err
	}
	defer stopAdmin()

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-drain:
		drainRooms(ctx, a.Signaling, a.SFU, cfg.DrainTimeout, log)
	}
	log.Info("shutting down")
	a.Close(shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// drainRooms refuses new sessions, tells every session the server is
// going away, and waits until no room is live (or waiting for its host), at
// most timeout.
func drainRooms(ctx context.Context, srv *signaling.Server, s *sfu.SFU, timeout time.Duration, log *slog.Logger) {
	deadline := time.Now().Add(timeout)
	log.Info("draining", "timeout", timeout)
	srv.Drain()
	srv.Broadcast("server.draining", map[string]any{"deadline": deadline.UTC()})
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		active := 0
		for _, r := range s.Rooms() {
			if st := r.Status(); st == sfu.StatusLive || st == sfu.StatusWaitingReconnect {
				active++
			}
		}
		if active == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// startAdmin serves /debug/pprof/ on its own listener when addr is set.
func startAdmin(addr string, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	log.Info("admin listener (pprof)", "addr", ln.Addr().String())
	return func() {
		_ = hs.Close()
		<-done
	}, nil
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

  open the demo: %s/
    studio (host alice, room demo):  %s/studio?identity=alice&room=demo
    watch room demo:                 %s/watch?room=demo
    co-host page for bob:            %s/cohost?identity=bob

  try the API:   curl -H "Authorization: Bearer %s" %s/v1/rooms
  host token:    ws://%s/v1/ws?token=%s
  viewer token:  ws://%s/v1/ws?token=%s
  metrics:       %s/metrics

`, cfg.Secret, admin, base, base, base, base, admin, base, addr, host, addr, viewer, base)
}

// defaultGCPercent is the garbage collector's target when GOGC is not set.
// Forwarding allocates nothing per packet, so the collector runs only when
// sessions join and leave; Go's default (100) then lets the heap grow to
// twice the live data, and the process keeps those pages. At 25 the server
// holds ~25% less RSS per viewer at 200 viewers, at the same CPU per
// forwarded packet (BENCHMARKS.md), for more collections during join
// bursts (~10 ms each). GOGC, when set, wins.
const defaultGCPercent = 25

func setGCPercent() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
