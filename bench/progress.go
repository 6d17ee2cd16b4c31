package bench

// The live progress line on stderr: the phase, viewers, packets per second
// received by the bench, p99 latency over the last second, and the server's
// and the bench's CPU use. On a terminal the line is rewritten in place;
// otherwise a line is printed every few seconds.

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"
)

type progress struct {
	w   io.Writer
	tty bool

	mu       sync.Mutex
	phase    string
	sc       *runner
	winStart time.Time
	winLen   time.Duration
	last     string

	stopc chan struct{}
	done  chan struct{}
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, stopc: make(chan struct{}), done: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	go p.loop()
	return p
}

func (p *progress) attach(sc *runner) {
	p.mu.Lock()
	p.sc = sc
	p.mu.Unlock()
}

func (p *progress) setPhase(s string) {
	p.mu.Lock()
	p.phase = s
	p.mu.Unlock()
}

// window shows the measurement's elapsed time (zero start: none).
func (p *progress) window(start time.Time, d time.Duration) {
	p.mu.Lock()
	p.winStart, p.winLen = start, d
	p.mu.Unlock()
}

// stop ends the line.
func (p *progress) stop() {
	close(p.stopc)
	<-p.done
}

// logf prints a message on its own line.
func (p *progress) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "relaybench: "+format+"\n", args...)
}

type liveState struct {
	at       time.Time
	rx       uint64
	hist     HistSnap
	srvCPU   float64
	benchCPU time.Duration
}

func (p *progress) loop() {
	defer close(p.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var prev *liveState
	n := 0
	for {
		select {
		case <-p.stopc:
			if p.tty && p.last != "" {
				fmt.Fprint(p.w, "\r\x1b[K")
			}
			return
		case <-tick.C:
		}
		n++
		p.mu.Lock()
		sc, phase, ws, wl := p.sc, p.phase, p.winStart, p.winLen
		p.mu.Unlock()
		var b strings.Builder
		if !ws.IsZero() {
			fmt.Fprintf(&b, "[measuring %.0f/%.0fs]", time.Since(ws).Seconds(), wl.Seconds())
		} else {
			fmt.Fprintf(&b, "[%s]", phase)
		}
		if sc != nil {
			cur := p.sample(sc)
			joined := 0
			for _, r := range sc.rooms {
				joined += len(r.viewerList())
			}
			fmt.Fprintf(&b, " viewers %d", joined)
			if prev != nil {
				dt := cur.at.Sub(prev.at).Seconds()
				h := cur.hist
				h.Sub(&prev.hist)
				fmt.Fprintf(&b, "  rx %s pkt/s  p99 %s", siCount(float64(cur.rx-prev.rx)/dt), msOrDash(h.Quantile(0.99)))
				if !math.IsNaN(cur.srvCPU) && !math.IsNaN(prev.srvCPU) {
					fmt.Fprintf(&b, "  server %.2f cores", (cur.srvCPU-prev.srvCPU)/dt)
				}
				fmt.Fprintf(&b, "  bench %.2f cores", (cur.benchCPU-prev.benchCPU).Seconds()/dt)
			}
			prev = cur
		}
		line := b.String()
		p.mu.Lock()
		switch {
		case p.tty:
			fmt.Fprintf(p.w, "\r\x1b[K%s", line)
		case n%5 == 0:
			fmt.Fprintf(p.w, "relaybench: %s\n", line)
		}
		p.last = line
		p.mu.Unlock()
	}
}

// sample reads the live counters: the bench's own, and the server's CPU
// when it comes from /proc (a spawned server; --url would need a scrape).
func (p *progress) sample(sc *runner) *liveState {
	s := &liveState{at: time.Now(), srvCPU: math.NaN(), benchCPU: selfCPU()}
	for _, t := range sc.allTracks() {
		s.rx += t.packets.Load()
		t.all.Snapshot(&s.hist)
	}
	for _, v := range sc.viewers() {
		if v.light != nil {
			s.rx += v.light.total.Load()
		}
	}
	if sc.tgt.proc != nil && !sc.tgt.proc.exited() {
		if c, err := procCPU(sc.tgt.proc.pid); err == nil {
			s.srvCPU = c.Seconds()
		}
	}
	return s
}

func msOrDash(ms float64) string {
	if math.IsNaN(ms) {
		return "-"
	}
	return fmt.Sprintf("%.1fms", ms)
}

// siCount prints 41234 as 41.2k.
func siCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
