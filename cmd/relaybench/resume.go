package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/relaysfu/relayd/bench"
)

// runResume is `relaybench resume`: the resume lab (bench.RunResumeLab),
// restore to first frame after a host's link is cut and restored, at a
// viewer in its room and in a relay destination (--nodes 2: across
// nodes), as p50 and p99 over the cycles.
//
//	relaybench resume --spawn ./relayd --cycles 20 --cut 5s
//	relaybench resume --spawn ./relayd --cycles 20 --cut 5s --nodes 2
func runResume(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg bench.ResumeLabConfig
	fs := flag.NewFlagSet("relaybench resume", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Spawn, "spawn", "", "path of the relayd binary to run in the lab (required)")
	fs.IntVar(&cfg.Cycles, "cycles", 20, "cut and restore cycles measured")
	fs.DurationVar(&cfg.Cut, "cut", bench.DefaultResumeCut, "how long the host's link is cut each cycle")
	fs.DurationVar(&cfg.Grace, "grace", bench.DefaultResumeGrace, "relayd's --reconnect-grace")
	fs.IntVar(&cfg.Nodes, "nodes", 1, "1, or 2: a two-node cluster on a redis-server of its own, the destination's viewer on the second node")
	fs.BoolVar(&cfg.Handover, "handover", false, "one more cycle: the host moves to a new address")
	jsonPath := fs.String("json", "", "write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.Spawn == "" || fs.NArg() > 0 || cfg.Nodes < 1 || cfg.Nodes > 2 {
		fmt.Fprintln(stderr, "usage: relaybench resume --spawn PATH [--cycles N] [--cut 5s] [--nodes 1|2] [--handover] [--json FILE]")
		return 2
	}
	cfg.Log = stderr
	rep, err := bench.RunResumeLab(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "relaybench resume:", err)
		return 1
	}
	bench.PrintResumeReport(stdout, rep)
	if *jsonPath != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "relaybench resume:", err)
			return 1
		}
	}
	return 0
}
