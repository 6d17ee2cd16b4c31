// Command relayd is the SFU server: WebSocket signaling and the HTTP API on
// --listen, all media on one UDP port (and, for clients behind firewalls,
// ICE-TCP on one TCP port and the embedded TURN server: traversal.go).
//
//	relayd --dev                  run with a generated secret, print links
//	relayd --secret S [flags]     run
//	relayd token --secret S --identity I [--room R] [--role host|viewer] [--admin] [--ttl 1h]
//	relayd rooms|participants|relays VERB ...   operate a running server (admin_cmd.go)
package main

import (
	"context"
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
	"github.com/relaysfu/relayd/signaling"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "token" {
		os.Exit(runTokenCmd(os.Args[2:], os.Environ(), os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && adminGroups[os.Args[1]] {
		os.Exit(runAdminCmd(os.Args[1], os.Args[2:], os.Environ(), os.Stdout, os.Stderr))
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
	// The first SIGTERM or SIGINT shuts down (run: every room ends at
	// once, then the waits of --drain-timeout); a second one cuts those
	// waits short. Should the shutdown hang all the same, the process
	// gives up 5s after --drain-timeout rather than wait for a SIGKILL.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	force := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		stop()
		time.AfterFunc(cfg.DrainTimeout+shutdownGiveUp, func() {
			fmt.Fprintln(os.Stderr, "relayd: the shutdown did not finish in time; exiting")
			os.Exit(1)
		})
		<-sigs
		close(force)
	}()
	if err := run(ctx, cfg, os.Stdout, runHooks{force: force}); err != nil {
		fmt.Fprintln(os.Stderr, "relayd:", err)
		os.Exit(1)
	}
}

// shutdownGiveUp is how long past --drain-timeout main waits for the
// shutdown before exiting anyway: the rooms' effects and closing the stores
// take well under a second unless something hangs.
const shutdownGiveUp = 5 * time.Second

// runHooks let callers follow and steer run; every field may be nil.
type runHooks struct {
	ready func(addr string) // gets the HTTP address once the server accepts connections
	force <-chan struct{}   // closed: cut the shutdown's waits short (a second signal)
	// drained is called once the shutdown has begun draining (sessions
	// told, joins refused, /readyz 503), before any room ends; the
	// shutdown goes on when it returns.
	drained func()
}

// run serves until ctx is cancelled (SIGTERM, SIGINT), then shuts down in
// the order app.App documents, with run as its one owner:
//
//  1. drain: new sessions and API requests refused, /readyz 503, every
//     session told server.draining;
//  2. every room ended at once (server_shutdown), with its effects
//     (records, invitations, webhooks, cluster, recordings);
//  3. sessions closed (participants already had room.updated "ended" and a
//     1000 close);
//  4. the HTTP server shut down (requests under way finish);
//  5. background loops stopped, then the stores and clients closed;
//  6. the admin listener and the media socket closed, and "stopped" logged:
//     nothing of the server runs after it.
//
// The waits of 3 and 4 take at most --drain-timeout (hooks.force cuts them
// short).
func run(ctx context.Context, cfg Config, stdout io.Writer, hooks runHooks) error {
	log := newLogger(cfg, stdout)
	if cfg.Dev && cfg.Secret == "" {
		secret, created, err := devSecret(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("--dev secret: %w", err)
		}
		cfg.Secret = secret
		log.Info("--dev secret", "file", devSecretPath(cfg.DataDir), "created", created)
	}
	udp, err := net.ListenPacket("udp4", net.JoinHostPort(cfg.UDPIP, strconv.Itoa(cfg.UDPPort)))
	if err != nil {
		return fmt.Errorf("media udp: %w", err)
	}
	defer udp.Close()
	trav, err := openTraversal(cfg, udp, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		trav.close()
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
		Redis: cfg.Redis, Advertise: advertise, NodeID: cfg.NodeID, NoUDPBatch: !cfg.UDPBatch, NoDirectSend: !cfg.DirectSend,
		RoomRetention: cfg.RoomRetention, RoomCreateRate: cfg.RoomCreateRate,
		MaxSocketsPerIdentity: cfg.MaxSocketsPerIdentity,
		TCPListener:           trav.tcp, TURN: trav.turn,
	})
	if err != nil {
		return err
	}
	httpSrv := newHTTPServer(cfg, a.Handler, log)
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	log.Info("relayd listening", "http", ln.Addr().String(), "udp", udp.LocalAddr().String(), "ice_tcp", addrOf(trav.tcp))
	if cfg.Dev {
		printDev(stdout, a.Tokens, cfg, ln.Addr().String())
	}
	if hooks.ready != nil {
		hooks.ready(ln.Addr().String())
	}
	stopAdmin, err := startAdmin(cfg, log)
	if err != nil {
		a.Close(0)
		_ = httpSrv.Close()
		return err
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		serveErr = fmt.Errorf("http: %w", err)
	}
	deadline := time.Now().Add(cfg.DrainTimeout)
	log.Info("shutting down: every room ends now", "drain_timeout", cfg.DrainTimeout)
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	go func() {
		select {
		case <-hooks.force:
			cancel()
		case <-sctx.Done():
		}
	}()
	a.Drain(deadline)
	if hooks.drained != nil {
		hooks.drained()
	}
	a.Shutdown(sctx, func(ctx context.Context) error {
		err := httpSrv.Shutdown(ctx)
		if err != nil {
			_ = httpSrv.Close() // past the deadline: cut what is left
		}
		return err
	})
	stopAdmin()
	_ = udp.Close()
	log.Info("stopped")
	return serveErr
}

// startAdmin serves /debug/pprof/ on its own listener when
// --admin-listen is set; stop closes it.
func startAdmin(cfg Config, log *slog.Logger) (stop func(), err error) {
	if cfg.AdminListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := newHTTPServer(cfg, mux, log)
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

// printDev prints what a person needs to try the server at once: the
// lobby first (everything else can be reached from there), then direct
// links, tokens and the secret, with where it is kept (the tokens stay
// valid across restarts as long as that file does).
func printDev(w io.Writer, tokens *signaling.Tokens, cfg Config, addr string) {
	admin, _ := tokens.Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: 24 * time.Hour})
	host, _ := tokens.Issue(signaling.TokenSpec{Identity: "alice", Room: "demo", Role: "host", Name: "Alice", TTL: 24 * time.Hour})
	viewer, _ := tokens.Issue(signaling.TokenSpec{Identity: "bob", Room: "demo", Role: "viewer", Name: "Bob", TTL: 24 * time.Hour})
	base := "http://" + addr
	kept := "given with --secret"
	if path := keptDevSecret(cfg.DataDir, cfg.Secret); path != "" {
		kept = "kept in " + path + " (delete it for a new one)"
	}
	fmt.Fprintf(w, `
relayd is running in --dev mode (never use it in production).

  ==> Open the lobby in your browser:  %s/

  From the lobby: go live (studio), watch a room, open a co-host inbox.
  Direct links:
    studio (host alice, room demo):  %s/studio?identity=alice&room=demo
    watch room demo:                 %s/watch?room=demo
    co-host page for bob:            %s/cohost?identity=bob

  secret:        %s
                 %s
  admin token:   %s
  try the API:   curl -H "Authorization: Bearer %s" %s/v1/rooms
  host token:    ws://%s/v1/ws?token=%s
  viewer token:  ws://%s/v1/ws?token=%s
  metrics:       %s/metrics

`, base, base, base, base, cfg.Secret, kept, admin, admin, base, addr, host, addr, viewer, base)
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
