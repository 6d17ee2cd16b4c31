package cluster

import (
	"sync"
	"syscall"
	"time"
)

// CPUMeter measures this process's CPU use for Load.CPU: the cores busy
// (user+system time per wall time) between two samples, from getrusage.
// It counts all threads of the process, i.e. everything relayd does, not
// only the media path.
type CPUMeter struct {
	mu   sync.Mutex
	wall time.Time
	cpu  time.Duration
}

// NewCPUMeter starts measuring now.
func NewCPUMeter() *CPUMeter {
	return &CPUMeter{wall: time.Now(), cpu: processCPU()}
}

// Sample returns the cores busy since the previous Sample (or
// NewCPUMeter), e.g. 1.5 when one and a half cores were busy. Called at
// every heartbeat it is a 1s average by default. It returns 0 when no
// wall time passed.
func (m *CPUMeter) Sample() float64 {
	now, cpu := time.Now(), processCPU()
	m.mu.Lock()
	defer m.mu.Unlock()
	wall := now.Sub(m.wall)
	used := cpu - m.cpu
	m.wall, m.cpu = now, cpu
	if wall <= 0 || used < 0 {
		return 0
	}
	return used.Seconds() / wall.Seconds()
}

// processCPU is the user+system CPU time of the process so far; 0 if
// getrusage fails (it cannot for RUSAGE_SELF with a valid pointer).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
