package bench

// Turning a window's measurements into a Report, and checking the issue's
// targets against it.

import (
	"fmt"
	"math"
	"time"
)

// buildReport assembles the report of window w. The floors (measured before
// and after the run) may be nil; without both the ratio is null.
func (sc *runner) buildReport(w *windowResult, started time.Time, floorBefore, floorAfter *FloorResult) *Report {
	cfg := sc.cfg
	secs := w.end.Sub(w.start).Seconds()
	r := &Report{
		Version:   1,
		Command:   cfg.Command,
		StartedAt: started.UTC().Truncate(time.Second),
		Machine:   machine(),
		Target:    "url",
		ServerURL: sc.tgt.baseURL,
		Scenario: Scenario{
			Rooms: cfg.Rooms, PublishersPerRoom: cfg.Publishers, ViewersPerRoom: cfg.Viewers,
			CohostsPerRoom: cfg.Cohosts, RelaysPerRoom: cfg.Relays,
			VideoBitrateBps: cfg.VideoBitrate, FPS: cfg.FPS, Audio: cfg.Audio, ChurnPerSecond: cfg.Churn,
			DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(), Ramp: cfg.Ramp,
		},
		Rooms:              len(sc.rooms),
		Viewers:            w.stableViewers,
		Cohosts:            len(sc.stage),
		Relays:             len(sc.relays),
		DurationS:          *num(secs),
		PacketsSent:        uint64(max(0, w.pub.sent)),
		PacketsExpected:    w.expected,
		PacketsReceived:    w.received,
		LossRatio:          num(w.lossRatio()),
		Duplicates:         w.dups,
		LatencyMS:          w.latency.Summary(),
		SRTPProfile:        sc.cipher,
		BenchPacketsRead:   w.rxPackets,
		PublisherNACKs:     w.pub.nacks,
		PublisherPLIs:      w.pub.plis + w.pub.firs,
		PublisherKeyframes: w.pub.keyframes,
	}
	if sc.tgt.proc != nil {
		r.Target = "spawn"
	}
	r.Publishers = w.publishing

	// Joins of the stable viewers that joined for this window.
	var connect, joined, packet, frame []time.Duration
	for _, rm := range sc.rooms {
		for _, v := range rm.viewerList() {
			if v.step != sc.step {
				continue
			}
			connect = append(connect, v.connected.Sub(v.dialStart))
			joined = append(joined, v.joined.Sub(v.connected))
			if d, ok := v.joinToPacket(); ok {
				packet = append(packet, d)
			}
			if d, ok := v.joinToFrame(); ok {
				frame = append(frame, d)
			} else {
				r.ViewersWithoutFrame++
			}
		}
	}
	r.ConnectMS, r.JoinedMS = durationSummary(connect), durationSummary(joined)
	r.JoinToFirstPacketMS, r.JoinToFirstFrameMS = durationSummary(packet), durationSummary(frame)
	sc.mu.Lock()
	r.JoinErrors = sc.joinErrors
	sc.mu.Unlock()

	sc.fillServer(r, w, secs)
	r.Floor, r.FloorBefore = floorAfter, floorBefore
	floorUS := math.NaN()
	switch {
	case floorAfter != nil && floorBefore != nil && floorAfter.Profile == floorBefore.Profile:
		floorUS = (floorAfter.USPerPacket + floorBefore.USPerPacket) / 2
		r.FloorDrift = num(floorAfter.USPerPacket/floorBefore.USPerPacket - 1)
	case floorAfter != nil:
		floorUS = floorAfter.USPerPacket
	}
	r.FloorUSPerPacket = num(floorUS)
	if r.ServerCPUUSPerPacket != nil {
		r.ServerToFloorRatio = num(*r.ServerCPUUSPerPacket / floorUS)
	}
	r.BenchCPUUSPerPacket = num(ratio(float64(w.benchCPU)/float64(time.Microsecond), float64(w.rxPackets)))
	r.BenchCPUCores = num(w.benchCPU.Seconds() / secs)
	if w.mach0.ok && w.mach1.ok {
		busy := (w.mach1.busy - w.mach0.busy).Seconds() / secs
		r.Load.BusyCores = num(busy)
		r.Load.StealCores = num((w.mach1.steal - w.mach0.steal).Seconds() / secs)
		if r.Server.CPUCores != nil {
			r.Load.OtherCores = num(math.Max(0, busy-*r.Server.CPUCores-w.benchCPU.Seconds()/secs))
		}
	}

	sc.fillRelays(r, w)
	sc.fillStage(r)
	if sc.churn != nil {
		var ds []time.Duration
		for _, v := range sc.churn.joinedViewers() {
			if d, ok := v.joinToFrame(); ok {
				ds = append(ds, d)
			}
		}
		r.Churn = &Churn{
			Joins: sc.churn.joins.Load(), Leaves: sc.churn.leaves.Load(), Failures: sc.churn.failures.Load(),
			JoinToFirstFrameMS: durationSummary(ds),
		}
	}
	r.Light = sc.lightReport(w)
	r.Targets = targets(r)
	return r
}

func (sc *runner) fillServer(r *Report, w *windowResult, secs float64) {
	a, b := w.srv0, w.srv1
	r.Server = serverFigures(a, b, secs, sc.tgt.proc != nil)
	r.Server.RSSBeforeViewers = num(sc.rssBaseline)
	cpu := b.cpuSeconds - a.cpuSeconds
	out := counterDelta(a, b, "relayd_packets_out_total")
	r.ServerCPUUSPerPacket = num(ratio(cpu*1e6, out))
	r.ServerRSSBytes = num(b.rssBytes)
	r.ServerRSSPerViewerBytes = num(ratio(b.rssBytes-sc.rssBaseline, float64(w.stableViewers)))
}

// serverFigures are the server's figures between samples a and b, secs
// apart (spawned: CPU time from /proc).
func serverFigures(a, b serverSample, secs float64, spawned bool) Server {
	var s Server
	s.CPUSource = "/metrics process_cpu_seconds_total"
	if spawned {
		s.CPUSource = "/proc/<pid>/stat utime+stime"
	}
	cpu := b.cpuSeconds - a.cpuSeconds
	out := counterDelta(a, b, "relayd_packets_out_total")
	in := counterDelta(a, b, "relayd_packets_in_total")
	s.CPUSeconds, s.CPUCores = num(cpu), num(cpu/secs)
	s.PacketsIn, s.PacketsOut = num(in), num(out)
	s.PacketsInPerS, s.PacketsOutPerS = num(in/secs), num(out/secs)
	s.BitsInPerS = num(counterDelta(a, b, "relayd_bytes_in_total") * 8 / secs)
	s.BitsOutPerS = num(counterDelta(a, b, "relayd_bytes_out_total") * 8 / secs)
	s.NACKs = num(counterDelta(a, b, "relayd_nacks_total"))
	s.RetransmitsHit = num(counterDelta(a, b, "relayd_retransmits_total", "result", "hit"))
	s.RetransmitsMiss = num(counterDelta(a, b, "relayd_retransmits_total", "result", "miss"))
	s.RetransmitsBudget = num(counterDelta(a, b, "relayd_retransmits_total", "result", "budget"))
	s.PLIsFromViewers = num(counterDelta(a, b, "relayd_plis_total", "direction", "from_subscriber"))
	s.PLIsToPublishers = num(counterDelta(a, b, "relayd_plis_total", "direction", "to_publisher"))
	s.Drops = num(counterDelta(a, b, "relayd_packets_dropped_total"))
	s.ForwardP50MS = num(histQuantile(a.prom, b.prom, "relayd_forward_latency_seconds", 0.5) * 1000)
	s.ForwardP99MS = num(histQuantile(a.prom, b.prom, "relayd_forward_latency_seconds", 0.99) * 1000)
	s.RSSBytes = num(b.rssBytes)
	s.Goroutines = num(b.prom.sum("go_goroutines"))
	s.HeapInuse = num(b.prom.sum("go_memstats_heap_inuse_bytes"))
	s.StackInuse = num(b.prom.sum("go_memstats_stack_inuse_bytes"))
	return s
}

func (sc *runner) fillRelays(r *Report, w *windowResult) {
	if len(sc.relays) == 0 {
		return
	}
	var starts []time.Duration
	for _, l := range sc.relays {
		if st := lastRelayState(l.src); st != "" {
			sc.relayStates[l.src] = st
		}
	}
	for _, l := range sc.relays {
		d := RelayDestination{Source: l.src.name, Destination: l.dst.name, State: l.state, RelayState: sc.relayStates[l.src], Error: l.errWord}
		if l.errWord == "none" {
			d.Error = ""
		}
		if v, ok := l.firstPacket(); ok {
			starts = append(starts, v)
			d.StartMS = num(float64(v) / float64(time.Millisecond))
		}
		if dv, ok := w.relayDelivered[l]; ok && dv[1] > 0 {
			d.DeliveredRatio = num(float64(dv[0]) / float64(dv[1]))
		}
		r.RelayDestinations = append(r.RelayDestinations, d)
	}
	s := durationSummary(starts)
	r.RelayStartMS = &s
	rl := w.relayLatency.Summary()
	r.RelayLatencyMS = &rl
	if rl.P99 != nil && r.LatencyMS.P99 != nil {
		r.RelayHopAddedP99MS = num(*rl.P99 - *r.LatencyMS.P99)
	}
}

func (sc *runner) fillStage(r *Report) {
	if len(sc.stage) == 0 {
		return
	}
	var ds []time.Duration
	for _, s := range sc.stage {
		if s.err != nil {
			r.CohostErrors = append(r.CohostErrors, fmt.Sprintf("%s: %v", s.pub.identity, s.err))
			continue
		}
		if d, ok := s.onStage(); ok {
			ds = append(ds, d)
		}
	}
	p := durationSummary(ds)
	r.CohostStageMS = &p
}

// targets checks the targets. Those stated for a particular
// scenario say so in their remark.
func targets(r *Report) []Target {
	check := func(name, limit string, v *float64, ok func(float64) bool, remark string) Target {
		t := Target{Name: name, Limit: limit, Value: v, Remark: remark}
		if v != nil {
			m := ok(*v)
			t.Met = &m
		}
		return t
	}
	val := func(p *float64) *float64 { return p }
	out := []Target{
		check("server CPU per forwarded packet / floor", "<= 2", val(r.ServerToFloorRatio),
			func(v float64) bool { return v <= 2 }, ""),
		check("loss", "< 0.5%", val(r.LossRatio), func(v float64) bool { return v < 0.005 },
			"stated for 1 publisher (1.5 Mbps VP8 + Opus) to 200 viewers"),
		check("p99 end-to-end latency (ms)", "< 50", val(r.LatencyMS.P99), func(v float64) bool { return v < 50 },
			"stated for 1 publisher (1.5 Mbps VP8 + Opus) to 200 viewers"),
		check("join to first frame p50 (ms)", "< 250", val(r.JoinToFirstFrameMS.P50), func(v float64) bool { return v < 250 }, ""),
		check("server RSS per viewer (bytes)", "< 300 KB", val(r.ServerRSSPerViewerBytes),
			func(v float64) bool { return v < 300*1024 }, "stated at 200 viewers"),
	}
	if r.Relays > 0 {
		out = append(out, check("relay hop added p99 latency (ms)", "< 2", val(r.RelayHopAddedP99MS),
			func(v float64) bool { return v < 2 }, ""))
	}
	return out
}

// nan0 reads an optional figure, NaN when absent.
func nan0(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}
