package bench

// Run: one relaybench run from start to report.
//
//  1. start (--spawn) or reach (--url) the server; create the rooms, their
//     hosts and co-hosts, all publishing; take the server's RSS baseline;
//  2. join the viewers (a few at a time) and wait for their first frames;
//  3. start the relays, the churn; warm up;
//  4. measure one window (or, with --ramp, one per step);
//  5. close every participant, stop the server;
//  6. measure the floor with the SRTP profile the viewers negotiated (it was
//     measured once before step 1 too);
//  7. print the table, write the JSON.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Run runs cfg and returns its report (also printed on stdout, and written
// to cfg.JSON when set). Progress goes to stderr.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) (*Report, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	started := time.Now()
	prog := newProgress(stderr)
	var stopProg sync.Once
	defer stopProg.Do(prog.stop)

	// The floor before anything runs, with the profile pion negotiates by
	// default; again after the run with the one the viewers negotiated.
	// Two measurements bracket the run: a machine whose speed drifts (a
	// shared VM) shows in the difference.
	prog.setPhase("measuring the floor")
	var floorBefore *FloorResult
	if p, err := profileByName(DefaultSRTPProfile); err == nil {
		if floorBefore, err = measureFloor(p, cfg.floorPackets); err != nil {
			prog.logf("floor: %v", err)
		}
	}

	sc, err := newScenario(ctx, cfg, prog)
	if err != nil {
		return nil, err
	}
	var down sync.Once
	teardown := func() { down.Do(sc.teardown) }
	defer teardown()

	if err := sc.setup(ctx); err != nil {
		return nil, err
	}
	var (
		w    *windowResult
		ramp *Ramp
	)
	if cfg.Ramp {
		w, ramp, err = sc.ramp(ctx, started)
	} else {
		w, err = sc.single(ctx)
	}
	if err != nil {
		return nil, err
	}
	teardown()

	prog.setPhase("measuring the floor")
	profileName := sc.cipher
	if profileName == "" {
		profileName = DefaultSRTPProfile
	}
	var floorAfter *FloorResult
	if profile, err := profileByName(profileName); err == nil {
		if floorAfter, err = measureFloor(profile, cfg.floorPackets); err != nil {
			prog.logf("floor: %v", err)
		}
	}
	rep := sc.buildReport(w, started, floorBefore, floorAfter)
	if sc.cipher == "" {
		rep.SRTPProfile = ""
	}
	rep.Ramp = ramp
	stopProg.Do(prog.stop)

	printTable(stdout, rep)
	if cfg.JSON != "" {
		if err := rep.writeJSON(cfg.JSON); err != nil {
			return rep, fmt.Errorf("writing %s: %w", cfg.JSON, err)
		}
	}
	return rep, nil
}

// single is the run without --ramp.
func (sc *runner) single(ctx context.Context) (*windowResult, error) {
	if err := sc.addViewers(ctx, sc.cfg.Viewers); err != nil {
		return nil, err
	}
	if err := sc.beforeWindows(ctx); err != nil {
		return nil, err
	}
	if err := sc.sleep(ctx, sc.cfg.Warmup); err != nil {
		return nil, err
	}
	return sc.measureWindow(ctx, sc.cfg.Duration, sc.duringWindow)
}

// beforeWindows starts what runs across windows: relays and churn.
func (sc *runner) beforeWindows(ctx context.Context) error {
	if sc.cfg.Relays > 0 {
		if err := sc.startRelays(ctx); err != nil {
			return err
		}
	}
	if sc.cfg.Churn > 0 {
		sc.churn = sc.startChurn(ctx, sc.cfg.Churn)
	}
	sc.prog.setPhase("warm-up")
	return nil
}

// duringWindow puts the --cohosts on stage shortly after the window opens.
func (sc *runner) duringWindow(ctx context.Context) {
	if len(sc.stage) == 0 {
		return
	}
	if sc.sleep(ctx, stageDelay(sc.cfg.Duration)) != nil {
		return
	}
	sc.goOnStage(ctx)
}

func (sc *runner) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RunFloor prints the floor of each common SRTP profile (the one pion
// negotiates by default first), writes them to jsonPath when set, and
// returns them.
func RunFloor(stdout io.Writer, jsonPath string) ([]*FloorResult, error) {
	var out []*FloorResult
	m := machine()
	fmt.Fprintf(stdout, "relaybench floor: SRTP-encrypt + send one %d-byte RTP payload over loopback UDP, CPU time per packet (median of %d runs of %d)\n",
		floorPayload, floorRuns, floorPackets)
	fmt.Fprintf(stdout, "machine: %d CPUs, %s, %s, %s\n\n", m.CPUs, m.CPUModel, m.Kernel, m.Go)
	for _, p := range floorProfiles {
		r, err := MeasureFloor(p)
		if err != nil {
			return out, err
		}
		note := ""
		if r.Profile == DefaultSRTPProfile {
			note = "  <- negotiated by pion's defaults (the server and its clients)"
		}
		fmt.Fprintf(stdout, "  %-30s %6.2f µs/packet%s\n", r.Profile, r.USPerPacket, note)
		out = append(out, r)
	}
	// What the system call weighs: the same, in sendmmsg batches to many
	// sockets, as relayd sends (not the floor the targets use).
	r, err := MeasureFloorBatched(floorProfiles[0])
	if err != nil {
		return out, err
	}
	fmt.Fprintf(stdout, "\n  %-30s %6.2f µs/packet  <- in sendmmsg batches of %d to %d sockets, as relayd sends (for reference)\n",
		r.Profile, r.USPerPacket, r.Batch, r.Receivers)
	out = append(out, r)
	if jsonPath != "" {
		b, err := json.MarshalIndent(map[string]any{"machine": m, "floors": out}, "", "  ")
		if err != nil {
			return out, err
		}
		if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
			return out, err
		}
	}
	return out, nil
}
