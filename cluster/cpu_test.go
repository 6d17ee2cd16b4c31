package cluster

import (
	"testing"
	"time"
)

func TestCPUMeter(t *testing.T) {
	m := NewCPUMeter()
	start, cpu0 := time.Now(), processCPU()
	// Burn 100ms of CPU time (not wall time: on a loaded machine a busy
	// loop gets only part of a core).
	x := 0
	for processCPU()-cpu0 < 100*time.Millisecond {
		x++
	}
	got := m.Sample()
	wall := time.Since(start)
	// At least 100ms of CPU over at most the wall time we measured around
	// the sample.
	if min := 0.1 / wall.Seconds(); got < 0.9*min || got > 64 {
		t.Fatalf("measured %.2f cores, want >= %.2f (x=%d)", got, min, x)
	}
	time.Sleep(100 * time.Millisecond)
	if got := m.Sample(); got < 0 {
		t.Fatalf("negative CPU %.2f", got)
	}
}
