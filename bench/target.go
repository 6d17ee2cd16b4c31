package bench

// The server under test: one started by the bench (--spawn) or one already
// running (--url). Either way the bench reads its counters from /metrics;
// CPU time and RSS come from /proc for a spawned server (exact to the
// kernel's accounting) and from the process collector's
// process_cpu_seconds_total and process_resident_memory_bytes otherwise.

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
)

type target struct {
	baseURL string
	mint    minter
	proc    *spawned // nil with --url
	hc      *http.Client
}

func newTarget(ctx context.Context, cfg *Config) (*target, error) {
	t := &target{hc: newHTTPClient()}
	if cfg.Spawn != "" {
		s, err := spawnServer(ctx, cfg.Spawn, cfg.SpawnArgs)
		if err != nil {
			return nil, err
		}
		t.proc, t.baseURL = s, s.baseURL
		t.mint = secretMinter{signaling.NewTokens([]byte(s.secret))}
		return t, nil
	}
	t.baseURL = strings.TrimSuffix(cfg.URL, "/")
	if cfg.Secret != "" {
		t.mint = secretMinter{signaling.NewTokens([]byte(cfg.Secret))}
	} else {
		t.mint = adminMinter{&client.Admin{BaseURL: t.baseURL, Token: cfg.AdminToken, HTTPClient: t.hc}}
	}
	return t, nil
}

// close stops a spawned server.
func (t *target) close() {
	if t.proc != nil {
		t.proc.stop()
		t.proc.removeDir()
	}
	t.hc.CloseIdleConnections()
}

// alive reports an error when a spawned server has died.
func (t *target) alive() error {
	if t.proc != nil && t.proc.exited() {
		return fmt.Errorf("relayd exited during the run (%v); last log lines:\n%s", t.proc.waitErr, t.proc.logTail(20))
	}
	return nil
}

// serverSample is the server's state at one instant. NaN: unknown.
type serverSample struct {
	at         time.Time
	cpuSeconds float64
	rssBytes   float64
	prom       promSample
}

// sample reads /metrics and, for a spawned server, /proc.
func (t *target) sample(ctx context.Context) serverSample {
	s := serverSample{at: time.Now(), cpuSeconds: math.NaN(), rssBytes: math.NaN()}
	if t.proc != nil && !t.proc.exited() {
		if cpu, err := procCPU(t.proc.pid); err == nil {
			s.cpuSeconds = cpu.Seconds()
		}
		if rss, err := procRSS(t.proc.pid); err == nil {
			s.rssBytes = float64(rss)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.baseURL+"/metrics", nil)
	if err != nil {
		return s
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if prom, err := parseProm(io.LimitReader(resp.Body, 8<<20)); err == nil {
			s.prom = prom // else the scrape is unknown, as when it fails
		}
	}
	if t.proc == nil {
		s.cpuSeconds = s.prom.sum("process_cpu_seconds_total")
		s.rssBytes = s.prom.sum("process_resident_memory_bytes")
	}
	return s
}

// counter returns the increase of a counter between two samples (NaN when
// either lacks it).
func counterDelta(a, b serverSample, name string, kv ...string) float64 {
	return b.prom.sum(name, kv...) - a.prom.sum(name, kv...)
}
