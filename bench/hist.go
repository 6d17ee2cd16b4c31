package bench

// Latency histograms: a fixed log-linear layout (32 sub-buckets per power of
// two of microseconds, about 3% relative error, 1 µs to about 134 s), as an
// array of atomic counters that one reader goroutine updates without a lock
// or an allocation, and plain snapshots that the aggregator merges, subtracts
// and asks for percentiles.

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/relaysfu/relayd/client"
)

// The bucket layout is client's LatencyHistogram's.
const histBuckets = client.LatencyBuckets

func histBucket(us uint64) int         { return client.LatencyBucket(us) }
func histBounds(i int) (lo, hi uint64) { return client.LatencyBucketBounds(i) }

// Hist is a latency histogram safe for one writer and any number of
// concurrent readers (Snapshot). The zero value is empty.
type Hist struct {
	counts [histBuckets]atomic.Uint64
	sumUS  atomic.Uint64
	maxUS  atomic.Uint64
}

// Record adds one sample.
func (h *Hist) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[histBucket(us)].Add(1)
	h.sumUS.Add(us)
	for {
		m := h.maxUS.Load()
		if us <= m || h.maxUS.CompareAndSwap(m, us) {
			return
		}
	}
}

// Reset empties h. Concurrent Records may survive it; callers reset while
// nothing records.
func (h *Hist) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.sumUS.Store(0)
	h.maxUS.Store(0)
}

// Snapshot adds h's current counts to s.
func (h *Hist) Snapshot(s *HistSnap) {
	for i := range h.counts {
		if c := h.counts[i].Load(); c != 0 {
			s.Counts[i] += c
			s.N += c
		}
	}
	s.SumUS += h.sumUS.Load()
	s.MaxUS = max(s.MaxUS, h.maxUS.Load())
}

// HistSnap is a plain copy of one or more Hists.
type HistSnap struct {
	Counts [histBuckets]uint64
	N      uint64
	SumUS  uint64
	MaxUS  uint64 // exact maximum of the merged histograms (not kept by Sub)
}

// Add merges o into s.
func (s *HistSnap) Add(o *HistSnap) {
	for i, c := range o.Counts {
		s.Counts[i] += c
	}
	s.N += o.N
	s.SumUS += o.SumUS
	s.MaxUS = max(s.MaxUS, o.MaxUS)
}

// Sub removes an earlier snapshot o of the same histograms from s (for
// the samples recorded between the two). The maximum becomes the upper
// bound of the highest non-empty bucket.
func (s *HistSnap) Sub(o *HistSnap) {
	s.N = 0
	top := -1
	for i := range s.Counts {
		s.Counts[i] -= min(o.Counts[i], s.Counts[i])
		s.N += s.Counts[i]
		if s.Counts[i] != 0 {
			top = i
		}
	}
	s.SumUS -= min(o.SumUS, s.SumUS)
	s.MaxUS = 0
	if top >= 0 {
		_, hi := histBounds(top)
		s.MaxUS = hi - 1
	}
}

// Quantile returns the q-th quantile (q in [0, 1]) in milliseconds, the
// middle of its bucket, at most the maximum; NaN when empty.
func (s *HistSnap) Quantile(q float64) float64 {
	if s.N == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(s.N)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range s.Counts {
		seen += c
		if seen >= rank {
			lo, hi := histBounds(i)
			mid := float64(lo+hi) / 2
			if s.MaxUS > 0 {
				mid = math.Min(mid, float64(s.MaxUS))
			}
			return mid / 1000
		}
	}
	return float64(s.MaxUS) / 1000
}

// MeanMS is the mean sample in milliseconds, NaN when empty.
func (s *HistSnap) MeanMS() float64 {
	if s.N == 0 {
		return math.NaN()
	}
	return float64(s.SumUS) / float64(s.N) / 1000
}

// Percentiles is the summary a report prints.
type Percentiles struct {
	Count uint64   `json:"count"`
	P50   *float64 `json:"p50"`
	P95   *float64 `json:"p95"`
	P99   *float64 `json:"p99"`
	Max   *float64 `json:"max"`
	Mean  *float64 `json:"mean"`
}

// Summary returns s's percentiles in milliseconds (nil fields when empty).
func (s *HistSnap) Summary() Percentiles {
	p := Percentiles{Count: s.N}
	if s.N == 0 {
		return p
	}
	p.P50 = num(s.Quantile(0.50))
	p.P95 = num(s.Quantile(0.95))
	p.P99 = num(s.Quantile(0.99))
	p.Max = num(float64(s.MaxUS) / 1000)
	p.Mean = num(s.MeanMS())
	return p
}

// durationSummary summarizes durations (join times) in milliseconds, within
// the histogram's resolution; the maximum is exact.
func durationSummary(ds []time.Duration) Percentiles {
	var s HistSnap
	for _, d := range ds {
		us := uint64(max(d, 0) / time.Microsecond)
		s.Counts[histBucket(us)]++
		s.N++
		s.SumUS += us
		s.MaxUS = max(s.MaxUS, us)
	}
	return s.Summary()
}

// num rounds to 6 significant digits and returns a pointer (JSON null for
// NaN).
func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return &v
}
