package bench

import (
	"math"
	"strings"
	"testing"
)

func TestParseProm(t *testing.T) {
	p := mustParseProm(t, `# HELP relayd_packets_out_total RTP packets written to subscribers.
# TYPE relayd_packets_out_total counter
relayd_packets_out_total{kind="audio"} 10
relayd_packets_out_total{kind="video"} 32
relayd_plis_total{direction="to_publisher"} 3
relayd_plis_total{direction="from_subscriber"} 4
relayd_packets_dropped_total{kind="video",reason="queue_full"} 5
weird_label{a="x\"y,z",b="2"} 1.5e3
process_cpu_seconds_total 12.25
`)
	for _, c := range []struct {
		name string
		kv   []string
		want float64
	}{
		{"relayd_packets_out_total", nil, 42},
		{"relayd_packets_out_total", []string{"kind", "video"}, 32},
		{"relayd_plis_total", []string{"direction", "to_publisher"}, 3},
		{"relayd_packets_dropped_total", []string{"reason", "queue_full"}, 5},
		{"weird_label", []string{"a", `x"y,z`, "b", "2"}, 1500},
		{"process_cpu_seconds_total", nil, 12.25},
	} {
		if got := p.sum(c.name, c.kv...); got != c.want {
			t.Errorf("sum(%s %v) = %v, want %v", c.name, c.kv, got, c.want)
		}
	}
	a := mustParseProm(t, `# TYPE h histogram
h_bucket{le="0.001"} 0
h_bucket{le="0.002"} 0
h_bucket{le="+Inf"} 0
`)
	b := mustParseProm(t, `# TYPE h histogram
h_bucket{le="0.001"} 50
h_bucket{le="0.002"} 100
h_bucket{le="+Inf"} 100
`)
	if got := histQuantile(a, b, "h", 0.5); math.Abs(got-0.001) > 1e-9 {
		t.Errorf("p50 = %v, want 0.001", got)
	}
	if got := histQuantile(a, b, "h", 0.75); math.Abs(got-0.0015) > 1e-9 {
		t.Errorf("p75 = %v, want 0.0015", got)
	}
	if !math.IsNaN(histQuantile(b, b, "h", 0.5)) {
		t.Error("empty increase has a quantile")
	}
	if !math.IsNaN(p.sum("missing")) {
		t.Error("a missing metric is not NaN")
	}
}

func mustParseProm(t *testing.T, text string) promSample {
	t.Helper()
	p, err := parseProm(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A histogram with several series is summed by upper bound before its
// quantile is taken (histogram_quantile(sum by (le))), and a scrape that is
// not the text format is an error, not a partial sample.
func TestPromHistogramSeries(t *testing.T) {
	a := mustParseProm(t, `# TYPE h histogram
h_bucket{kind="audio",le="1"} 10
h_bucket{kind="audio",le="2"} 10
h_bucket{kind="audio",le="+Inf"} 10
h_sum{kind="audio"} 5
h_count{kind="audio"} 10
h_bucket{kind="video",le="1"} 0
h_bucket{kind="video",le="2"} 0
h_bucket{kind="video",le="+Inf"} 0
h_sum{kind="video"} 0
h_count{kind="video"} 0
`)
	b := mustParseProm(t, `# TYPE h histogram
h_bucket{kind="audio",le="1"} 60
h_bucket{kind="audio",le="2"} 60
h_bucket{kind="audio",le="+Inf"} 60
h_sum{kind="audio"} 30
h_count{kind="audio"} 60
h_bucket{kind="video",le="1"} 0
h_bucket{kind="video",le="2"} 50
h_bucket{kind="video",le="+Inf"} 50
h_sum{kind="video"} 75
h_count{kind="video"} 50
`)
	// The increase: 50 samples in (0, 1], 50 in (1, 2].
	for _, c := range []struct{ q, want float64 }{{0.25, 0.5}, {0.5, 1}, {0.75, 1.5}} {
		if got := histQuantile(a, b, "h", c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	if _, err := parseProm(strings.NewReader("h_bucket{le=\"1\" 5\n")); err == nil {
		t.Error("a malformed scrape parsed")
	}
}
