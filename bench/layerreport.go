package bench

// The lab report's simulcast figures (--simulcast): per group, what its
// viewers settled on and how fast, and how they fared after the cap was
// lifted. Pure functions of the viewers' figures (layers.go), table-tested
// in layers_test.go.

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// GroupLayers is one group's simulcast figures.
type GroupLayers struct {
	// Settled counts the viewers by what they got at the end of the capped
	// phase (the lift, or the window's end): low, medium, high, paused,
	// or none (no track.layer came); SettledHeights by the height of the
	// keyframes they received then ("0": none).
	Settled        map[string]int `json:"settled"`
	SettledHeights map[string]int `json:"settled_heights"`
	SettleMS       Percentiles    `json:"settle_ms"` // the cap -> the last change before the end of the capped phase
	// After lift=: to the top layer, playing (NotOnTop: viewers that did
	// not get there in the window), and for viewers paused at the lift to
	// playing again (NotResumed likewise).
	LiftToTopMS    Percentiles `json:"lift_to_top_ms"`
	NotOnTop       int         `json:"not_on_top"`
	LiftToResumeMS Percentiles `json:"lift_to_resume_ms"`
	NotResumed     int         `json:"not_resumed"`
	// Shares of the window: paused, and frozen while not paused (mean over
	// joined viewers, and the worst viewer's).
	PausedRatio        *float64 `json:"paused_ratio"`
	FreezeOutPause     *float64 `json:"freeze_outside_pauses_ratio"`
	FreezeOutPauseMax  *float64 `json:"freeze_outside_pauses_ratio_max"`
	Switches           int      `json:"switches"` // layer switches of the group's viewers in the window
	SwitchesPerViewer  *float64 `json:"switches_per_viewer"`
	PLIsPerLayerSwitch *float64 `json:"plis_per_switch"` // the group's keyframe requests per layer switch
	// frozen (not paused) from the moment each viewer settled to the end
	// of the capped phase: mean and worst
	FreezeAfterSettle    *float64 `json:"freeze_after_settle_ratio"`
	FreezeAfterSettleMax *float64 `json:"freeze_after_settle_ratio_max"`
	lift                 bool
}

// aggregateLayers is a group's simulcast figures, for a window of secs
// seconds; lifted: the group's cap was lifted in the window. nil when no
// viewer has layer figures.
func aggregateLayers(vs []viewerFigures, secs float64, lifted bool) *GroupLayers {
	g := &GroupLayers{Settled: map[string]int{}, SettledHeights: map[string]int{}}
	var settle, top, resume []time.Duration
	var paused, froze, frozeMax, after, afterMax float64
	n, na, sw, plis := 0, 0, 0, uint64(0)
	dur := func(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
	for _, v := range vs {
		l := v.Layers
		if l == nil || !v.Joined {
			continue
		}
		n++
		s := l.Settled
		if s == "" {
			s = "none"
		}
		g.Settled[s]++
		g.SettledHeights[strconv.Itoa(l.SettledHeight)]++
		if l.SettleMS != nil {
			settle = append(settle, dur(*l.SettleMS))
		}
		if lifted {
			if l.LiftToTopMS != nil {
				top = append(top, dur(*l.LiftToTopMS))
			} else {
				g.NotOnTop++
			}
			if l.LiftToResumeMS != nil {
				resume = append(resume, dur(*l.LiftToResumeMS))
			} else if pausedAtLift(l) {
				g.NotResumed++
			}
		}
		if l.FreezeAfterSettle != nil {
			na++
			after += *l.FreezeAfterSettle
			afterMax = max(afterMax, *l.FreezeAfterSettle)
		}
		paused += l.PausedMS
		froze += l.FreezeOutPause
		frozeMax = max(frozeMax, l.FreezeOutPause)
		sw += l.Switches
		plis += v.PLIs
	}
	if n == 0 {
		return nil
	}
	g.SettleMS, g.LiftToTopMS, g.LiftToResumeMS = durationSummary(settle), durationSummary(top), durationSummary(resume)
	if secs > 0 {
		win := secs * 1000
		g.PausedRatio = num(paused / win / float64(n))
		g.FreezeOutPause = num(froze / win / float64(n))
		g.FreezeOutPauseMax = num(frozeMax / win)
	}
	if na > 0 {
		g.FreezeAfterSettle, g.FreezeAfterSettleMax = num(after/float64(na)), num(afterMax)
	}
	g.Switches = sw
	g.SwitchesPerViewer = num(float64(sw) / float64(n))
	if sw > 0 {
		g.PLIsPerLayerSwitch = num(float64(plis) / float64(sw))
	}
	g.lift = lifted
	return g
}

// serverAdaptation reads relayd's adaptation metrics over the window [a,
// b] of secs seconds; nil when the server has none.
func serverAdaptation(a, b serverSample, secs float64) *ServerAdaptation {
	if _, ok := b.prom["relayd_bandwidth_estimate_bps"]; !ok {
		return nil
	}
	ad := &ServerAdaptation{LayerSwitches: map[string]float64{}}
	for _, m := range b.prom["relayd_layer_switches_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() != "reason" {
				continue
			}
			if d := counterDelta(a, b, "relayd_layer_switches_total", "reason", l.GetValue()); d > 0 {
				ad.LayerSwitches[l.GetValue()] = d
			}
		}
	}
	ad.PausedTracks = num(b.prom.sum("relayd_bandwidth_paused_tracks"))
	if secs > 0 {
		ad.ProbeBps = num(counterDelta(a, b, "relayd_probe_bytes_total") * 8 / secs)
	}
	ad.EstimateP10Bps = num(histQuantile(a.prom, b.prom, "relayd_bandwidth_estimate_bps", 0.1))
	ad.EstimateP50Bps = num(histQuantile(a.prom, b.prom, "relayd_bandwidth_estimate_bps", 0.5))
	ad.EstimateP90Bps = num(histQuantile(a.prom, b.prom, "relayd_bandwidth_estimate_bps", 0.9))
	return ad
}

// pausedAtLift reports whether the viewer was paused at the lift: its
// capped phase ended paused.
func pausedAtLift(l *viewerLayers) bool { return l.Settled == "paused" }

// printLayersTable writes the groups' simulcast figures.
func printLayersTable(w io.Writer, r *LabReport) {
	has := false
	for _, g := range r.Groups {
		has = has || g.Layers != nil
	}
	if !has {
		return
	}
	var rates []string
	for _, l := range r.Publisher.Layers {
		rates = append(rates, fmt.Sprintf("%s %s (sent %.0f%% of the window)", l.RID, bitrate(float64(l.BitrateBps)), l.ActiveShare*100))
	}
	fmt.Fprintf(w, "simulcast: %s; publisher.layers last %v\n", strings.Join(rates, ", "), r.Publisher.ActiveLayers)
	// Isolation: the keyframes the viewers' layer switches cost the
	// publisher (the issue: at most one request per switch).
	switches := 0
	for _, g := range r.Groups {
		if g.Layers != nil {
			switches += g.Layers.Switches
		}
	}
	var onReq []string
	for _, l := range r.Publisher.Layers {
		onReq = append(onReq, fmt.Sprintf("%s %d", l.RID, l.KeyframesOnRequest))
	}
	fmt.Fprintf(w, "keyframe requests to the publisher %d (keyframes on request: %s) for %d layer switches of viewers\n",
		r.Publisher.PLIs+r.Publisher.FIRs, strings.Join(onReq, ", "), switches)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "group\tsettled on (heights)\tsettle p50/max\tlift: on top p50/max (not)\tlift: resumed p50/max (not)\tpaused\tfrozen, not paused (mean/max)\tfrozen after settling (mean/max)\tswitches/viewer\tPLIs/switch")
	for _, g := range r.Groups {
		l := g.Layers
		if l == nil {
			continue
		}
		lift, resume := "-", "-"
		if l.lift {
			lift = fmt.Sprintf("%s (%d)", p50max(l.LiftToTopMS), l.NotOnTop)
			resume = fmt.Sprintf("%s (%d)", p50max(l.LiftToResumeMS), l.NotResumed)
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\t%s\t%s\t%s / %s\t%s / %s\t%s\t%s\n", g.Name, counts(l.Settled), counts(l.SettledHeights),
			p50max(l.SettleMS), lift, resume, pct1(l.PausedRatio), pct1(l.FreezeOutPause), pct1(l.FreezeOutPauseMax),
			pct1(l.FreezeAfterSettle), pct1(l.FreezeAfterSettleMax), f1(l.SwitchesPerViewer), f1(l.PLIsPerLayerSwitch))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

func p50max(p Percentiles) string {
	if p.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("%s/%s ms", f0(p.P50), f0(p.Max))
}

func counts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
