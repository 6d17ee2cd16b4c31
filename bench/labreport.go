package bench

// The lab's report: one JSON object split per group (docs/bench.md, "The
// lab's JSON report"), and the same as a table. The per-group figures are
// pure functions of the children's reports (aggregateGroup), table-tested
// in labreport_test.go.

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// LabReport is the result of RunLab.
type LabReport struct {
	Version   int       `json:"version"` // 1
	Kind      string    `json:"kind"`    // "lab"
	Command   string    `json:"command,omitempty"`
	StartedAt time.Time `json:"started_at"`
	Machine   Machine   `json:"machine"`
	Load      Load      `json:"machine_load"`
	Lab       string    `json:"lab"` // the namespaces' prefix
	ServerURL string    `json:"server_url"`

	Scenario  LabScenario `json:"scenario"`
	DurationS float64     `json:"duration_s"`

	Groups    []GroupReport   `json:"groups"`
	Browser   *BrowserReport  `json:"browser,omitempty"`
	Publisher PublisherReport `json:"publisher"`
	Server    LabServer       `json:"server"`

	BenchCPUCores *float64 `json:"bench_cpu_cores"` // this process and its children, Chromium included
}

// LabScenario is what the lab run was asked.
type LabScenario struct {
	VideoBitrateBps    int         `json:"video_bitrate_bps"`
	FPS                int         `json:"fps"`
	Audio              bool        `json:"audio"`
	DurationS          float64     `json:"duration_s"`
	WarmupS            float64     `json:"warmup_s"`
	FirstFrameTimeoutS float64     `json:"first_frame_timeout_s"`
	PublisherNet       string      `json:"publisher_net"`
	Groups             []GroupSpec `json:"groups"`
	BrowserNet         *string     `json:"browser_net"`
	// Simulcast: the layers' bit rates; Relays: 1 with a relay
	// destination room; Nodes: 2 with two nodes, DestOnNode2 whether the
	// destination room was found on the second.
	Simulcast     bool  `json:"simulcast"`
	LayerBitrates []int `json:"layer_bitrates,omitempty"`
	Relays        int   `json:"relays"`
	Nodes         int   `json:"nodes"`
	DestOnNode2   *bool `json:"dest_on_node2,omitempty"`
}

// GroupSpec is one group as asked.
type GroupSpec struct {
	Name    string `json:"name"`
	Viewers int    `json:"viewers"`
	Net     string `json:"net"`
}

// GroupReport is what one group of viewers saw in the window.
type GroupReport struct {
	Name      string `json:"name"`
	Net       string `json:"net"`       // the profile, canonical ("none": a perfect link)
	Namespace string `json:"namespace"` // its client namespace
	Viewers   int    `json:"viewers"`

	Joined         int            `json:"joined"`           // join answered
	WithFrame      int            `json:"with_first_frame"` // a frame shown within the first-frame timeout
	JoinFailures   int            `json:"join_failures"`    // viewers - with_first_frame
	JoinErrors     []string       `json:"join_errors,omitempty"`
	ICEStates      map[string]int `json:"ice_states"` // subscriber PeerConnections by ICE state, at the end
	Transports     map[string]int `json:"transports"` // subscriber PeerConnections by selected pair's transport: udp, tcp, turn
	ConnectMS      Percentiles    `json:"connect_ms"`
	JoinedMS       Percentiles    `json:"joined_ms"`
	FirstFrameMS   Percentiles    `json:"first_frame_ms"` // dial start -> first frame shown, within the timeout
	ReceivedBps    *float64       `json:"received_bps"`   // mean per joined viewer, by arrival in the window
	Expected       uint64         `json:"packets_expected"`
	Received       uint64         `json:"packets_received"`
	LossRatio      *float64       `json:"loss_ratio"`       // after retransmission
	VideoLossRatio *float64       `json:"video_loss_ratio"` // the same, video only
	FreezeRatio    *float64       `json:"freeze_ratio"`     // mean share of the window in freezes
	FreezeRatioMax *float64       `json:"freeze_ratio_max"` // the worst viewer's
	FPS            *float64       `json:"fps"`              // mean frames shown per second
	PLIs           uint64         `json:"plis"`             // keyframe requests the group sent in the window
	PLIsPerViewerS *float64       `json:"plis_per_viewer_s"`
	Late           uint64         `json:"late_packets"` // video packets that came after a later one: retransmissions (whole run)
	Duplicates     uint64         `json:"duplicates"`
	LatencyMS      Percentiles    `json:"latency_ms"`

	Layers *GroupLayers `json:"layers,omitempty"` // --simulcast (layerreport.go)

	PerViewer []viewerFigures `json:"per_viewer"`
}

// BrowserReport is the browser viewer's.
type BrowserReport struct {
	Net       string `json:"net"`
	Namespace string `json:"namespace"`
	browserFigures
	FreezeRatio *float64 `json:"freeze_ratio"` // totalFreezesDuration / the window (Chromium's freeze definition)
	FPS         *float64 `json:"fps"`          // framesDecoded / the window
}

// PublisherReport is the publisher's: what it sent and the feedback it got.
type PublisherReport struct {
	Net       string `json:"net"`
	Namespace string `json:"namespace"`
	publisherFigures
}

// LabServer is the server's figures over the window.
type LabServer struct {
	Server
	DropsByReason   map[string]float64 `json:"drops_by_reason"` // relayd_packets_dropped_total by kind/reason
	KeyframeReplays *float64           `json:"keyframe_replays"`
	// ICEConnections is relayd_ice_connections_total at the window's end,
	// by transport: every PeerConnection of the run by its path (joins
	// happen before the window).
	ICEConnections map[string]float64 `json:"ice_connections"`
	// Adaptation is the server's per-viewer adaptation over the window
	// (relayd's simulcast metrics, docs/metrics.md; nil when it has none).
	Adaptation *ServerAdaptation `json:"adaptation,omitempty"`
}

// ServerAdaptation is what relayd's adaptation metrics say of the window,
// of every subscriber of the run together (a group alone in a run gives
// its own estimates).
type ServerAdaptation struct {
	LayerSwitches map[string]float64 `json:"layer_switches"` // by reason
	PausedTracks  *float64           `json:"paused_tracks"`  // bandwidth-paused video tracks at the window's end
	ProbeBps      *float64           `json:"probe_bps"`      // padding sent to probe downlinks
	// the downlink estimates observed in the window (4 a second per
	// subscriber): p10, p50 and p90
	EstimateP10Bps *float64 `json:"estimate_p10_bps"`
	EstimateP50Bps *float64 `json:"estimate_p50_bps"`
	EstimateP90Bps *float64 `json:"estimate_p90_bps"`
}

// buildReport merges the children's reports and the parent's samples.
func (lr *labRun) buildReport(w *labWindow, started time.Time) (*LabReport, error) {
	cfg := lr.cfg
	secs := w.end.Sub(w.start).Seconds()
	r := &LabReport{
		Version: 1, Kind: "lab", Command: cfg.Command, StartedAt: started.UTC().Truncate(time.Second),
		Machine: machine(), ServerURL: lr.tgt.baseURL, DurationS: *num(secs),
		Scenario: LabScenario{
			VideoBitrateBps: cfg.VideoBitrate, FPS: cfg.FPS, Audio: cfg.Audio,
			DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(),
			FirstFrameTimeoutS: cfg.FirstFrameTimeout.Seconds(), PublisherNet: lr.pub.profile.String(),
			Simulcast: cfg.Simulcast, LayerBitrates: cfg.LayerBitrates, Relays: cfg.Relays, Nodes: max(cfg.Nodes, 1),
		},
	}
	if cfg.Nodes == 2 {
		r.Scenario.DestOnNode2 = &lr.destOnNode2
	}
	if lr.pub.client != nil {
		r.Lab = strings.TrimSuffix(lr.pub.client.NS(), "-c1")
	}
	pf := lr.pub.report.Publisher
	if pf == nil {
		return nil, lr.pub.failure("reading its report", errNoReport)
	}
	r.Publisher = PublisherReport{Net: lr.pub.profile.String(), Namespace: lr.pub.client.NS(), publisherFigures: *pf}
	for _, g := range lr.groups {
		var lat HistSnap
		if g.report.Latency != nil {
			if err := g.report.Latency.addTo(&lat); err != nil {
				return nil, g.failure("reading its report", err)
			}
		}
		gr := aggregateGroup(g.report.Viewers, &lat, pf.VideoPackets, pf.AudioPackets, secs)
		gr.Name, gr.Net, gr.Namespace, gr.Viewers = g.name, g.profile.String(), g.client.NS(), len(g.ids)
		gr.JoinFailures = gr.Viewers - gr.WithFrame
		gr.Layers = aggregateLayers(g.report.Viewers, secs, g.timing.Lift > 0)
		r.Groups = append(r.Groups, gr)
		r.Scenario.Groups = append(r.Scenario.Groups, GroupSpec{Name: g.name, Viewers: len(g.ids), Net: gr.Net})
	}
	if b := lr.browse; b != nil {
		bf := b.report.Browser
		if bf == nil {
			return nil, b.failure("reading its report", errNoReport)
		}
		net := b.profile.String()
		r.Scenario.BrowserNet = &net
		br := &BrowserReport{Net: net, Namespace: b.client.NS(), browserFigures: *bf}
		if s := bf.Stats; s != nil {
			br.FreezeRatio = num(min(s.TotalFreezesDuration/secs, 1))
			br.FPS = num(s.FramesDecoded / secs)
		}
		r.Browser = br
	}

	a, b := w.srv0, w.srv1
	r.Server.Server = serverFigures(a, b, secs, true)
	r.Server.KeyframeReplays = num(counterDelta(a, b, "relayd_keyframe_replays_total"))
	r.Server.Adaptation = serverAdaptation(a, b, secs)
	r.Server.DropsByReason = map[string]float64{}
	for _, m := range b.prom["relayd_packets_dropped_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		k := labels["kind"] + "/" + labels["reason"]
		if d := counterDelta(a, b, "relayd_packets_dropped_total", "kind", labels["kind"], "reason", labels["reason"]); d > 0 {
			r.Server.DropsByReason[k] = d
		}
	}
	r.Server.ICEConnections = map[string]float64{}
	for _, m := range b.prom["relayd_ice_connections_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "transport" && m.GetCounter().GetValue() > 0 {
				r.Server.ICEConnections[l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	bench := (w.bench1 - w.bench0).Seconds()
	r.BenchCPUCores = num(bench / secs)
	if w.mach0.ok && w.mach1.ok {
		busy := (w.mach1.busy - w.mach0.busy).Seconds() / secs
		r.Load.BusyCores = num(busy)
		r.Load.StealCores = num((w.mach1.steal - w.mach0.steal).Seconds() / secs)
		softirq := (w.mach1.softirq - w.mach0.softirq).Seconds() / secs
		r.Load.SoftirqCores = num(softirq)
		if c := r.Server.CPUCores; c != nil {
			// Packets crossing the lab (veths, the router) are handled in
			// softirq, charged to no process: not "other processes".
			r.Load.OtherCores = num(max(0, busy-softirq-*c-bench/secs))
		}
	}
	return r, nil
}

// aggregateGroup turns a group's viewers into its figures for a window of
// secs seconds in which the publisher sent sentVideo and sentAudio packets.
// Viewers whose join was not answered count only as join failures; a viewer
// that joined but received nothing counts as 100% lost and frozen.
func aggregateGroup(vs []viewerFigures, lat *HistSnap, sentVideo, sentAudio int64, secs float64) GroupReport {
	g := GroupReport{ICEStates: map[string]int{}, Transports: map[string]int{}, PerViewer: vs, LatencyMS: lat.Summary()}
	var connect, joined, frame []time.Duration
	var bytes, shown uint64
	var freezeMS, freezeMax float64
	var videoExp, videoGot uint64
	errs := map[string]bool{}
	dur := func(ms *float64) time.Duration { return time.Duration(*ms * float64(time.Millisecond)) }
	for _, v := range vs {
		g.ICEStates[v.ICEState]++
		if v.Transport != "" {
			g.Transports[v.Transport]++
		}
		if v.ConnectMS != nil {
			connect = append(connect, dur(v.ConnectMS))
		}
		if v.FirstFrameMS != nil {
			g.WithFrame++
			frame = append(frame, dur(v.FirstFrameMS))
		}
		if !v.Joined {
			if v.JoinError != "" && len(errs) < 5 {
				errs[v.JoinError] = true
			}
			continue
		}
		g.Joined++
		if v.JoinedMS != nil {
			joined = append(joined, dur(v.JoinedMS))
		}
		vidSent := uint64(sentVideo)
		if v.Layers != nil { // simulcast: what the server sent this viewer
			vidSent = v.VideoExpected
		}
		g.Expected += vidSent + uint64(sentAudio)
		g.Received += min(v.VideoReceived, vidSent) + min(v.AudioReceived, uint64(sentAudio))
		videoExp += vidSent
		videoGot += min(v.VideoReceived, vidSent)
		bytes += v.Bytes
		shown += v.FramesShown
		freezeMS += v.FreezeMS
		freezeMax = max(freezeMax, v.FreezeMS)
		g.PLIs += v.PLIs
		g.Late += v.Late
		g.Duplicates += v.Duplicates
	}
	g.JoinErrors = slices.Sorted(maps.Keys(errs))
	g.ConnectMS, g.JoinedMS, g.FirstFrameMS = durationSummary(connect), durationSummary(joined), durationSummary(frame)
	if g.Expected > 0 {
		g.LossRatio = num(1 - float64(g.Received)/float64(g.Expected))
	}
	if videoExp > 0 {
		g.VideoLossRatio = num(1 - float64(videoGot)/float64(videoExp))
	}
	if n := float64(g.Joined); n > 0 && secs > 0 {
		g.ReceivedBps = num(float64(bytes) * 8 / secs / n)
		g.FreezeRatio = num(freezeMS / 1000 / secs / n)
		g.FreezeRatioMax = num(freezeMax / 1000 / secs)
		g.FPS = num(float64(shown) / secs / n)
		g.PLIsPerViewerS = num(float64(g.PLIs) / secs / n)
	}
	return g
}

// printLabTable writes the lab report as tables: one line per group, then
// the browser, the publisher, the server and the machine.
func printLabTable(w io.Writer, r *LabReport) {
	s := r.Scenario
	media := fmt.Sprintf("VP8 %s %d fps", bitrate(float64(s.VideoBitrateBps)), s.FPS)
	if s.Audio {
		media += " + Opus"
	}
	fmt.Fprintf(w, "\nrelaybench lab %s: 1 room, publisher %s behind %q, %.1f s window, server %s\n",
		r.Lab, media, s.PublisherNet, r.DurationS, r.ServerURL)
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s, %s\n\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.Go)

	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "group\tnet\tviewers\tfirst frame (ok, p50/p99)\treceived\tloss (all / video)\tfreeze (mean/max)\tfps\tPLIs/viewer/s\tlatency p50/p99\tlate pkts")
	for _, g := range r.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d/%d, %s\t%s\t%s / %s\t%s / %s\t%s\t%s\t%s / %s ms\t%d\n",
			g.Name, g.Net, g.Viewers, g.WithFrame, g.Viewers, p50p99(g.FirstFrameMS), bitrateP(g.ReceivedBps),
			pct(g.LossRatio), pct(g.VideoLossRatio), pct1(g.FreezeRatio), pct1(g.FreezeRatioMax), f1(g.FPS), f2(g.PLIsPerViewerS),
			f1(g.LatencyMS.P50), f1(g.LatencyMS.P99), g.Late)
	}
	_ = tw.Flush()
	for _, g := range r.Groups {
		if len(g.JoinErrors) > 0 || g.JoinFailures > 0 {
			fmt.Fprintf(w, "  %s: %d of %d without a frame within %.0f s; ICE %s%s\n", g.Name, g.JoinFailures, g.Viewers,
				s.FirstFrameTimeoutS, states(g.ICEStates), joinErrs(g.JoinErrors))
		}
	}
	fmt.Fprintln(w)
	printLayersTable(w, r)

	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	row := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{label}, args...)...)
	}
	if b := r.Browser; b != nil {
		if st := b.Stats; st != nil {
			row("browser", "%s: first frame %s ms; %.0f frames decoded (%s fps), %.0f dropped, %.0f freezes (%.1f s, %s), %.0fx%.0f, %.0f keyframes",
				b.Net, f0(b.FirstFrameMS), st.FramesDecoded, f1(b.FPS), st.FramesDropped, st.FreezeCount, st.TotalFreezesDuration,
				pct1(b.FreezeRatio), st.FrameWidth, st.FrameHeight, st.KeyFramesDecoded)
			row("", "packets lost %.0f of %.0f, NACKs %.0f, PLIs %.0f, FIRs %.0f, jitter buffer %s ms",
				st.PacketsLost, st.PacketsReceived+st.PacketsLost, st.NACKCount, st.PLICount, st.FIRCount,
				f1(ratioOf(st.JitterBufferDelay*1000, st.JitterBufferEmitted)))
		} else {
			row("browser", "%s: %s", b.Net, orDash(b.JoinError))
		}
	}
	p := r.Publisher
	row("publisher", "%s: sent %d video + %d audio packets, %d keyframes (%d of them on request)", p.Net,
		p.VideoPackets, p.AudioPackets, p.Keyframes, p.KeyframesOnRequest)
	row("", "feedback: NACKs %d (%d packets asked), PLIs %d, FIRs %d, REMB %d (last %s), TWCC %d, receiver reports %d (max loss %s, lost %d)",
		p.NACKPackets, p.NACKedSeqs, p.PLIs, p.FIRs, p.REMBs, bitrateP(p.REMBLastBps), p.TWCC, p.RRs, pct1(p.RRMaxFractionLost), p.RRLost)
	sv := r.Server
	row("server", "%s cores; in %s pkt/s %s, out %s pkt/s %s", f2(sv.CPUCores), count(sv.PacketsInPerS), bitrateP(sv.BitsInPerS),
		count(sv.PacketsOutPerS), bitrateP(sv.BitsOutPerS))
	row("", "NACKed %s (retransmitted %s, missed %s, over budget %s); PLIs from viewers %s, to the publisher %s; keyframe replays %s",
		f0(sv.NACKs), f0(sv.RetransmitsHit), f0(sv.RetransmitsMiss), f0(sv.RetransmitsBudget), f0(sv.PLIsFromViewers), f0(sv.PLIsToPublishers), f0(sv.KeyframeReplays))
	row("", "drops %s%s; forwarding p50 %s / p99 %s ms", f0(sv.Drops), drops(sv.DropsByReason), f1(sv.ForwardP50MS), f1(sv.ForwardP99MS))
	if ad := sv.Adaptation; ad != nil {
		row("", "adaptation: downlink estimates p10/p50/p90 %s / %s / %s; layer switches%s; paused tracks at the end %s; probing %s",
			bitrateP(ad.EstimateP10Bps), bitrateP(ad.EstimateP50Bps), bitrateP(ad.EstimateP90Bps), drops(ad.LayerSwitches),
			f0(ad.PausedTracks), bitrateP(ad.ProbeBps))
	}
	warn := ""
	if r.Load.OtherCores != nil && *r.Load.OtherCores > 0.1 {
		warn = "  WARNING: other processes competed for the CPU; every figure is disturbed"
	}
	row("machine load", "%s cores busy: server %s, bench %s, the kernel's packet work (softirq) %s, other processes %s, stolen %s%s",
		f2(r.Load.BusyCores), f2(sv.CPUCores), f2(r.BenchCPUCores), f2(r.Load.SoftirqCores), f2(r.Load.OtherCores), f2(r.Load.StealCores), warn)
	_ = tw.Flush()
}

func pct1(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *v*100)
}

func states(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func joinErrs(errs []string) string {
	if len(errs) == 0 {
		return ""
	}
	return "; join errors: " + strings.Join(errs, " | ")
}

func drops(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Compare(m[b], m[a]) })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
