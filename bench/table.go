package bench

// The human-readable form of a Report: the table printed on stdout at the
// end of a run.

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printTable writes r as a table.
func printTable(w io.Writer, r *Report) {
	s := r.Scenario
	media := fmt.Sprintf("VP8 %s %d fps", bitrate(float64(s.VideoBitrateBps)), s.FPS)
	if s.Audio {
		media += " + Opus"
	}
	fmt.Fprintf(w, "\nrelaybench: %d room(s), %d publisher(s) (%s), %d viewer(s), %.1f s window, server %s (%s)\n",
		r.Rooms, r.Publishers, media, r.Viewers, r.DurationS, r.ServerURL, r.Target)
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s, %s\n\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.Go)

	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	row := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{label}, args...)...)
	}

	row("packets", "sent %d, expected at viewers %d, received %d, loss %s, duplicates %d",
		r.PacketsSent, r.PacketsExpected, r.PacketsReceived, pct(r.LossRatio), r.Duplicates)
	if r.Light != nil {
		row("", "%s", lightRow(r.Light))
	}
	row("latency", "%s", pcts(r.LatencyMS, true))
	row("join", "socket %s | joined %s | first packet %s | first frame %s (from socket open)",
		p50p99(r.ConnectMS), p50p99(r.JoinedMS), p50p99(r.JoinToFirstPacketMS), p50p99(r.JoinToFirstFrameMS))
	row("", "join errors %d, viewers without a frame %d", r.JoinErrors, r.ViewersWithoutFrame)

	sv := r.Server
	row("server CPU", "%s cores, %s µs per forwarded packet = %sx the floor (%s µs, %s; before/after the run %s / %s µs)",
		f2(sv.CPUCores), f2(r.ServerCPUUSPerPacket), f2(r.ServerToFloorRatio), f2(r.FloorUSPerPacket), orDash(r.SRTPProfile),
		floorOf(r.FloorBefore), floorOf(r.Floor))
	row("server traffic", "in %s pkt/s %s | out %s pkt/s %s",
		count(sv.PacketsInPerS), bitrateP(sv.BitsInPerS), count(sv.PacketsOutPerS), bitrateP(sv.BitsOutPerS))
	row("", "NACKs %s (retransmitted %s, missed %s), PLIs from viewers %s, to publishers %s, drops %s",
		f0(sv.NACKs), f0(sv.RetransmitsHit), f0(sv.RetransmitsMiss), f0(sv.PLIsFromViewers), f0(sv.PLIsToPublishers), f0(sv.Drops))
	row("", "forwarding inside the server (read from the publisher -> written to a viewer): p50 %s / p99 %s ms",
		f1(sv.ForwardP50MS), f1(sv.ForwardP99MS))
	row("server memory", "RSS %s (%s before viewers) = %s per viewer; Go heap in use %s, stacks %s (%s goroutines)",
		bytesP(r.ServerRSSBytes), bytesP(sv.RSSBeforeViewers), bytesP(r.ServerRSSPerViewerBytes), bytesP(sv.HeapInuse), bytesP(sv.StackInuse), f0(sv.Goroutines))
	row("publishers", "NACKs received %d, PLIs received %d, keyframes sent %d",
		r.PublisherNACKs, r.PublisherPLIs, r.PublisherKeyframes)
	row("bench", "%s cores, %s µs CPU per received packet (%d packets)",
		f2(r.BenchCPUCores), f2(r.BenchCPUUSPerPacket), r.BenchPacketsRead)

	warn := ""
	if r.Load.OtherCores != nil && *r.Load.OtherCores > 0.1 {
		warn = "  WARNING: other processes competed for the CPU; every figure is disturbed"
	}
	row("machine load", "%s cores busy, %s by other processes, %s stolen%s", f2(r.Load.BusyCores), f2(r.Load.OtherCores), f2(r.Load.StealCores), warn)
	if r.RelayStartMS != nil {
		row("relays", "start -> first packet %s; relayed latency %s; hop adds %s ms at p99",
			p50p99(*r.RelayStartMS), pcts(*r.RelayLatencyMS, false), f2(r.RelayHopAddedP99MS))
		for _, d := range r.RelayDestinations {
			e := ""
			if d.Error != "" {
				e = " error " + d.Error
			}
			row("", "%s -> %s: %s at start, relay %s%s; first packet %s ms after relay.start, delivered %s",
				d.Source, d.Destination, orDash(d.State), orDash(d.RelayState), e, f2(d.StartMS), pct(d.DeliveredRatio))
		}
	}
	if r.CohostStageMS != nil {
		row("co-hosts", "invitation -> first packet at viewers %s", p50p99(*r.CohostStageMS))
		for _, e := range r.CohostErrors {
			row("", "%s", e)
		}
	}
	if c := r.Churn; c != nil {
		row("churn", "%d joins, %d leaves, %d failures; first frame %s", c.Joins, c.Leaves, c.Failures, p50p99(c.JoinToFirstFrameMS))
	}
	if rp := r.Ramp; rp != nil {
		row("ramp", "capacity %d viewers (%d per room): %s", rp.CapacityViewers, rp.CapacityPerRoom, rp.StopReason)
		for _, st := range rp.Steps {
			mark := "ok"
			if !st.Passed {
				mark = "over"
			}
			row("", "%5d viewers: loss %s, p99 %s ms, server %s cores / %s µs per packet, bench %s cores, others %s cores [%s]",
				st.Viewers, pct(st.LossRatio), f2(st.LatencyP99MS), f2(st.ServerCPUCores), f2(st.ServerCPUUSPerPacket), f2(st.BenchCPUCores), f2(st.OtherCores), mark)
		}
	}
	for i, t := range r.Targets {
		label := ""
		if i == 0 {
			label = "targets"
		}
		mark := "n/a"
		if t.Met != nil {
			mark = "MISSED"
			if *t.Met {
				mark = "met"
			}
		}
		remark := ""
		if t.Remark != "" {
			remark = " (" + t.Remark + ")"
		}
		row(label, "[%s] %s %s: %s%s", mark, t.Name, t.Limit, f2(t.Value), remark)
	}
	_ = tw.Flush()
}

func floorOf(f *FloorResult) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", f.USPerPacket)
}

func pcts(p Percentiles, withMean bool) string {
	if p.Count == 0 {
		return "no samples"
	}
	s := fmt.Sprintf("p50 %s ms, p95 %s ms, p99 %s ms, max %s ms", f2(p.P50), f2(p.P95), f2(p.P99), f2(p.Max))
	if withMean {
		s += fmt.Sprintf(", mean %s ms (%d samples)", f2(p.Mean), p.Count)
	}
	return s
}

func p50p99(p Percentiles) string {
	if p.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s / p99 %s ms", f1(p.P50), f1(p.P99))
}

func f0(v *float64) string { return fnum(v, "%.0f") }
func f1(v *float64) string { return fnum(v, "%.1f") }
func f2(v *float64) string { return fnum(v, "%.2f") }

func fnum(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f%%", *v*100)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func count(v *float64) string {
	if v == nil {
		return "-"
	}
	return siCount(*v)
}

func bitrate(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", v/1e6)
	}
	return fmt.Sprintf("%.0f kbit/s", v/1e3)
}

func bitrateP(v *float64) string {
	if v == nil {
		return "-"
	}
	return bitrate(*v)
}

func bytesP(v *float64) string {
	if v == nil {
		return "-"
	}
	b := *v
	neg := ""
	if b < 0 {
		neg, b = "-", -b
	}
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%s%.2f GiB", neg, b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%s%.1f MiB", neg, b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%s%.0f KiB", neg, b/(1<<10))
	}
	return neg + strings.TrimSpace(fmt.Sprintf("%.0f B", b))
}
