// Command relaybench is relayd's load tester: publishers and viewers
// speaking the wire contract against a running server (--url) or one it
// starts and stops itself (--spawn), with a live progress line on stderr, a
// table on stdout and a JSON report (--json). See docs/bench.md.
//
//	relaybench --spawn ./relayd --viewers 20 --duration 8s --json r.json
//	relaybench --url http://127.0.0.1:8800 --secret S --rooms 4 --viewers 50
//	relaybench --spawn ./relayd --ramp --ramp-step 50
//	relaybench floor
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "floor" {
		return runFloor(args[1:], stdout, stderr)
	}
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	cfg.Command = "relaybench " + strings.Join(args, " ")
	if _, err := bench.Run(ctx, cfg, stdout, stderr); err != nil {
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
	fs.BoolVar(&cfg.Ramp, "ramp", false, "add viewers step by step until loss > 0.5% or p99 > 100 ms; report the capacity")
	fs.IntVar(&cfg.RampStep, "ramp-step", d.RampStep, "with --ramp: viewers per room added at each step")
	fs.IntVar(&cfg.RampMax, "ramp-max", d.RampMax, "with --ramp: stop at this many viewers per room")
	fs.IntVar(&cfg.JoinConcurrency, "join-concurrency", d.JoinConcurrency, "viewers joining at the same time")
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
