// Command relaybench is relayd's load tester: publishers and viewers
// speaking the wire contract against a running server (--url) or one it
// starts and stops itself (--spawn), with a live progress line on stderr, a
// table on stdout and a JSON report (--json). See docs/bench.md.
//
//	relaybench --spawn ./relayd --viewers 20 --duration 8s --json r.json
//	relaybench --url http://127.0.0.1:8800 --secret S --rooms 4 --viewers 50
//	relaybench --spawn ./relayd --ramp --ramp-step 50
//	relaybench --spawn ./relayd --viewers 20 --viewer-net 10:cap=600kbit,loss=2% --browser-viewer cap=1mbit
//	relaybench --spawn ./relayd --simulcast --viewers 20 --viewer-net 5:cap=800kbit,at=3s,lift=15s
//	relaybench floor
//	relaybench resume --spawn ./relayd --cycles 20 --cut 5s [--nodes 2]
//
// This file holds the flags only; everything else is in package bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/relaysfu/relayd/bench"
	"github.com/relaysfu/relayd/netlab"
)

func main() {
	// The network lab runs groups of participants as this binary
	// re-executed inside namespaces: such a child runs its function here
	// and exits.
	bench.RegisterLabChildren()
	netlab.MaybeRunChild()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "floor" {
		return runFloor(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "resume" {
		return runResume(ctx, args[1:], stdout, stderr)
	}
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	cfg.Command = "relaybench " + strings.Join(args, " ")
	if cfg.LabMode() {
		_, err = bench.RunLab(ctx, cfg, stdout, stderr)
	} else {
		_, err = bench.Run(ctx, cfg, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "relaybench:", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (bench.Config, error) {
	d := bench.Defaults
	cfg := d
	fs := flag.NewFlagSet("relaybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: relaybench (--spawn PATH | --url URL [--secret S | --admin-token T]) [flags]\n       relaybench floor\n\nflags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.URL, "url", "", "base URL of a running relayd (http://127.0.0.1:8800)")
	fs.StringVar(&cfg.Spawn, "spawn", "", "path of a relayd binary to start on free loopback ports and stop afterwards")
	fs.Func("spawn-arg", "with --spawn: one more argument for relayd (repeat the flag: --spawn-arg=--admin-listen --spawn-arg=127.0.0.1:6060)", func(s string) error {
		cfg.SpawnArgs = append(cfg.SpawnArgs, s)
		return nil
	})
	fs.StringVar(&cfg.Secret, "secret", "", "with --url: the server's token secret (tokens are signed locally)")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "with --url and no --secret: an admin token, to mint tokens with POST /v1/tokens")
	fs.IntVar(&cfg.Rooms, "rooms", d.Rooms, "rooms")
	fs.IntVar(&cfg.Publishers, "publishers", d.Publishers, "publishers per room: the host, and the rest co-hosts on stage by invitation")
	fs.IntVar(&cfg.Viewers, "viewers", d.Viewers, "viewers per room")
	fs.IntVar(&cfg.Cohosts, "cohosts", 0, "co-hosts per room invited on stage during the window (timed: invitation -> first packet at viewers)")
	fs.IntVar(&cfg.Relays, "relays", 0, "each room's host relays into this many other rooms")
	fs.DurationVar(&cfg.Duration, "duration", d.Duration, "measurement window (per step with --ramp)")
	fs.DurationVar(&cfg.Warmup, "warmup", d.Warmup, "wait between the joins and the window")
	fs.Func("video-bitrate", "video bit rate: 1500000, 1500k, 1.5M (default 1.5M)", func(s string) error {
		v, err := bench.ParseBitrate(s)
		cfg.VideoBitrate = v
		return err
	})
	fs.IntVar(&cfg.FPS, "fps", d.FPS, "video frames per second")
	fs.BoolVar(&cfg.Audio, "audio", d.Audio, "an Opus track (20 ms) besides the video; --audio=false for video only")
	fs.Float64Var(&cfg.Churn, "churn", 0, "viewer arrivals per second (all rooms) during the run; each stays 2-6 s")
	fs.StringVar(&cfg.JSON, "json", "", "write the report as JSON to this file")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write the bench's own CPU profile over the (first) window to this file (go tool pprof)")
	fs.BoolVar(&cfg.Ramp, "ramp", false, "add viewers step by step until loss > 0.5% or p99 > 100 ms; report the capacity")
	fs.IntVar(&cfg.RampStep, "ramp-step", d.RampStep, "with --ramp: viewers per room added at each step")
	fs.IntVar(&cfg.RampMax, "ramp-max", d.RampMax, "with --ramp: stop at this many viewers per room")
	fs.IntVar(&cfg.JoinConcurrency, "join-concurrency", d.JoinConcurrency, "viewers joining at the same time")
	fs.BoolVar(&cfg.Light, "light", false, "all viewers of a room but the first --full-viewers are light: real PeerConnections (ICE, DTLS) that count RTP headers instead of decrypting the media; latency from the full viewers only (loopback runs, not the lab)")
	fs.IntVar(&cfg.FullViewers, "full-viewers", d.FullViewers, "with --light: full viewers per room (at least 1), which the latency and payload checks come from")
	fs.BoolVar(&cfg.Lab, "lab", false, "run in the network lab (needs root and --spawn) even without a profile: --viewers is the healthy group")
	fs.Func("viewer-net", "lab: a group of N viewers behind a network PROFILE, N:PROFILE, e.g. 20:cap=600kbit,loss=2% or 10:udp=blocked,transport=tcp (repeatable); the bench's own keys: transport=udp|tcp|turn-udp|turn-tcp|turn-tls (forces the group's path), at=D (the profile applies D into the window), lift=D (lifted D into the window), dest (the group watches the --relays 1 destination room), quality=low|medium|high (--simulcast: the viewers ask for at most that layer)", func(s string) error {
		vn, err := bench.ParseViewerNet(s)
		cfg.ViewerNets = append(cfg.ViewerNets, vn)
		return err
	})
	fs.StringVar(&cfg.PublisherNet, "publisher-net", "", "lab: the publisher's network PROFILE, e.g. cap=2mbit or udp=blocked,transport=tcp (default: a perfect link)")
	fs.StringVar(&cfg.BrowserViewer, "browser-viewer", "", "lab: one headless Chromium viewer behind this PROFILE (none: a perfect link), its getStats in the report")
	fs.StringVar(&cfg.Chromium, "chromium", "", "lab: the browser binary for --browser-viewer (default: chromium in PATH)")
	fs.BoolVar(&cfg.Simulcast, "simulcast", false, "lab: the publisher sends three simulcast layers (q 320x180, h 640x360, f 960x540 at --layer-bitrates) and the viewers join as 1.1 sessions; the report follows their layers")
	fs.IntVar(&cfg.Nodes, "nodes", 1, "lab: 2 runs two relayd nodes on one Redis (in the server namespace), the --relays 1 destination room on the second")
	fs.Func("layer-bitrates", "lab, with --simulcast: the layers' bit rates, lowest first, 1 to 3 of them (default 150k,500k,1.5M)", func(s string) error {
		r, err := bench.ParseLayerBitrates(s)
		cfg.LayerBitrates = r
		return err
	})
	fs.DurationVar(&cfg.FirstFrameTimeout, "first-frame-timeout", d.FirstFrameTimeout, "lab: a viewer without a frame this long after its dial failed to join")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relaybench: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return cfg, errors.New("bad arguments")
	}
	return cfg, nil
}

func runFloor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relaybench floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonPath := fs.String("json", "", "write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relaybench floor: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if _, err := bench.RunFloor(stdout, *jsonPath); err != nil {
		fmt.Fprintln(stderr, "relaybench floor:", err)
		return 1
	}
	return 0
}
