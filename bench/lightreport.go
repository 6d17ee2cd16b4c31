package bench

// --light in the report: the loss figures of the full and the light
// viewers side by side (the JSON's "light" object, a row of the table),
// and which viewers were full, the only ones the latency comes from.

import (
	"fmt"
	"slices"
)

// groupFigures is one kind of viewer's loss figures in a window.
type groupFigures struct {
	viewers            int
	expected, received uint64
}

func (g groupFigures) report() LightGroup {
	lg := LightGroup{Viewers: g.viewers, PacketsExpected: g.expected, PacketsReceived: g.received}
	if g.expected > 0 {
		lg.LossRatio = num(max(0, 1-float64(g.received)/float64(g.expected)))
	}
	return lg
}

// addLight adds light viewer v's window to w: for each source, the span of
// sequence numbers the server sent it and how many of them came; a source
// it received nothing of in the window counts what the source sent, all
// lost (as for a full viewer).
func (w *windowResult) addLight(v *viewer, sources map[string]*source, sentBy func(*publisher) uint64) {
	figs := v.light.window(w.start.UnixNano())
	w.light.viewers++
	for id, s := range sources {
		f, ok := figs[id]
		exp, got := f.span, f.recv
		if !ok || f.span == 0 {
			exp, got = sentBy(s.pub), 0
		}
		w.expected += exp
		w.received += got
		w.light.expected += exp
		w.light.received += got
	}
}

// LightReport is the "light" object of a --light run.
type LightReport struct {
	FullViewersPerRoom int        `json:"full_viewers_per_room"`
	FullViewerIDs      []string   `json:"full_viewer_ids"` // the stable full viewers: latency_ms comes from these only
	Full               LightGroup `json:"full"`
	Light              LightGroup `json:"light"`
	// PacketsPerRead: the light viewers' media packets per recvmmsg that
	// returned any (whole run): how full their batches were
	PacketsPerRead *float64 `json:"packets_per_read"`
	Note           string   `json:"note"`
}

// LightGroup is one kind of viewer's loss figures.
type LightGroup struct {
	Viewers         int      `json:"viewers"`
	PacketsExpected uint64   `json:"packets_expected"`
	PacketsReceived uint64   `json:"packets_received"`
	LossRatio       *float64 `json:"loss_ratio"`
}

const lightNote = "latency_ms, relay_latency_ms and the payload checks (packets without a send time) come from the full viewers only: " +
	"a light viewer reads no payload. The join figures count both (a light viewer's first frame is its first video packet with the marker bit, " +
	"as a full viewer on loopback counts it). A light viewer's loss is the gaps in the sequence numbers the server sent it in the window: " +
	"a packet the server dropped on purpose (a full queue, server.drops) and numbered over is no gap, while a full viewer counts it lost " +
	"against what the publisher sent. Light viewers send NACKs but no receiver reports and no transport-cc feedback, so the server " +
	"estimates no bandwidth for them."

// lightReport builds the "light" object (nil without --light).
func (sc *runner) lightReport(w *windowResult) *LightReport {
	if !sc.cfg.Light {
		return nil
	}
	lr := &LightReport{FullViewersPerRoom: sc.cfg.FullViewers, Full: w.full.report(), Light: w.light.report(), Note: lightNote}
	var pkts, reads uint64
	for _, r := range sc.rooms {
		for _, v := range r.viewerList() {
			if v.light == nil {
				lr.FullViewerIDs = append(lr.FullViewerIDs, v.id)
				continue
			}
			pkts += v.light.total.Load()
			reads += v.light.reads.Load()
		}
	}
	lr.PacketsPerRead = num(ratio(float64(pkts), float64(reads)))
	slices.Sort(lr.FullViewerIDs)
	return lr
}

// lightRow is the table's line of a --light run.
func lightRow(l *LightReport) string {
	ids := fmt.Sprintf("%d", len(l.FullViewerIDs))
	if len(l.FullViewerIDs) <= 8 {
		ids = fmt.Sprint(l.FullViewerIDs)
	}
	return fmt.Sprintf("full %d: expected %d, received %d, loss %s | light %d: expected %d, received %d, loss %s, %s packets per read (latency from the full viewers %s only)",
		l.Full.Viewers, l.Full.PacketsExpected, l.Full.PacketsReceived, pct(l.Full.LossRatio),
		l.Light.Viewers, l.Light.PacketsExpected, l.Light.PacketsReceived, pct(l.Light.LossRatio), f1(l.PacketsPerRead), ids)
}
