package bench

// --ramp: add viewers step by step (the first step has --viewers per room,
// or --ramp-step when that is 0; each next one --ramp-step more), measure a
// --duration window at each, and stop at the first step whose loss passes
// 0.5% or whose p99 latency passes 100 ms (or where a tenth of the joins
// fail, or at --ramp-max). The capacity is the last step within the limits.

import (
	"context"
	"fmt"
	"time"
)

// Ramp is the ramp's result.
type Ramp struct {
	StepPerRoom     int        `json:"step_per_room"`
	MaxLossRatio    float64    `json:"max_loss_ratio"`
	MaxP99MS        float64    `json:"max_p99_ms"`
	CapacityViewers int        `json:"capacity_viewers"`
	CapacityPerRoom int        `json:"capacity_per_room"`
	StopReason      string     `json:"stop_reason"`
	Steps           []RampStep `json:"steps"`
}

// RampStep is one step's window.
type RampStep struct {
	Viewers              int      `json:"viewers"`
	ViewersPerRoom       int      `json:"viewers_per_room"`
	LossRatio            *float64 `json:"loss_ratio"`
	LatencyP50MS         *float64 `json:"latency_p50_ms"`
	LatencyP99MS         *float64 `json:"latency_p99_ms"`
	JoinToFirstFrameP50  *float64 `json:"join_to_first_frame_p50_ms"`
	JoinErrors           int      `json:"join_errors"`
	ServerCPUCores       *float64 `json:"server_cpu_cores"`
	ServerCPUUSPerPacket *float64 `json:"server_cpu_us_per_packet"`
	ServerRSSBytes       *float64 `json:"server_rss_bytes"`
	BenchCPUCores        *float64 `json:"bench_cpu_cores"`
	OtherCores           *float64 `json:"other_processes_cores"`
	Passed               bool     `json:"passed"`
}

// ramp runs the steps and returns the last window measured.
func (sc *runner) ramp(ctx context.Context, started time.Time) (*windowResult, *Ramp, error) {
	cfg := sc.cfg
	rp := &Ramp{StepPerRoom: cfg.RampStep, MaxLossRatio: cfg.RampMaxLoss, MaxP99MS: cfg.RampMaxP99MS}
	perRoom := cfg.Viewers
	if perRoom == 0 {
		perRoom = cfg.RampStep
	}
	added := 0
	var last *windowResult
	for step := 0; ; step++ {
		sc.mu.Lock()
		sc.step = step
		errs0 := sc.joinErrors
		sc.mu.Unlock()
		n := perRoom - added
		sc.prog.logf("ramp step %d: %d viewers per room", step+1, perRoom)
		if err := sc.addViewers(ctx, n); err != nil {
			if last == nil {
				return nil, nil, err
			}
			rp.StopReason = fmt.Sprintf("adding viewers failed at %d per room: %v", perRoom, err)
			break
		}
		added = perRoom
		if step == 0 {
			if err := sc.beforeWindows(ctx); err != nil {
				return nil, nil, err
			}
		}
		if err := sc.sleep(ctx, cfg.Warmup); err != nil {
			return nil, nil, err
		}
		var during func(context.Context)
		if step == 0 {
			during = sc.duringWindow
		}
		w, err := sc.measureWindow(ctx, cfg.Duration, during)
		if err != nil {
			return nil, nil, err
		}
		last = w
		rep := sc.buildReport(w, started, nil, nil)
		sc.mu.Lock()
		stepErrs := sc.joinErrors - errs0
		sc.mu.Unlock()
		st := RampStep{
			Viewers: rep.Viewers, ViewersPerRoom: perRoom, LossRatio: rep.LossRatio,
			LatencyP50MS: rep.LatencyMS.P50, LatencyP99MS: rep.LatencyMS.P99,
			JoinToFirstFrameP50: rep.JoinToFirstFrameMS.P50, JoinErrors: stepErrs,
			ServerCPUCores: rep.Server.CPUCores, ServerCPUUSPerPacket: rep.ServerCPUUSPerPacket,
			ServerRSSBytes: rep.ServerRSSBytes, BenchCPUCores: rep.BenchCPUCores, OtherCores: rep.Load.OtherCores,
		}
		loss, p99 := nan0(st.LossRatio), nan0(st.LatencyP99MS)
		switch {
		case !(loss <= cfg.RampMaxLoss):
			rp.StopReason = fmt.Sprintf("loss %.3f%% > %.3f%% at %d viewers per room", loss*100, cfg.RampMaxLoss*100, perRoom)
		case !(p99 <= cfg.RampMaxP99MS):
			rp.StopReason = fmt.Sprintf("p99 latency %.1f ms > %.0f ms at %d viewers per room", p99, cfg.RampMaxP99MS, perRoom)
		case stepErrs*10 > n*len(sc.rooms):
			rp.StopReason = fmt.Sprintf("%d of %d joins failed at %d viewers per room", stepErrs, n*len(sc.rooms), perRoom)
		default:
			st.Passed = true
			rp.CapacityViewers, rp.CapacityPerRoom = st.Viewers, perRoom
		}
		rp.Steps = append(rp.Steps, st)
		sc.prog.logf("ramp step %d: %d viewers, loss %s, p99 %s ms, server %s cores, bench %s cores, other processes %s cores",
			step+1, st.Viewers, pct(st.LossRatio), f1(st.LatencyP99MS), f2(st.ServerCPUCores), f2(st.BenchCPUCores), f2(st.OtherCores))
		if !st.Passed {
			break
		}
		if perRoom+cfg.RampStep > cfg.RampMax {
			rp.StopReason = fmt.Sprintf("reached --ramp-max %d viewers per room within the limits", perRoom)
			break
		}
		perRoom += cfg.RampStep
	}
	return last, rp, nil
}
