package client

// A small log-linear latency histogram: 32 sub-buckets per power of two of
// microseconds (about 3% relative error), 1 µs to about 71 minutes.

import (
	"math/bits"
	"time"
)

const (
	histSubBits  = 5
	histSub      = 1 << histSubBits
	histMaxBit   = 31 // values are clamped below 2^32 µs
	histBuckets  = (histMaxBit-histSubBits+1)*histSub + histSub
	recentWindow = 4096 // RemoteTrack.Latencies keeps this many samples
)

// LatencyBuckets is the number of buckets of a LatencyHistogram. With
// LatencyBucket and LatencyBucketBounds it exposes the layout, for a
// histogram of one's own whose counts must line up with it (the load
// tester keeps a lock-free one per viewer).
const LatencyBuckets = histBuckets

// LatencyBucket returns the bucket of a sample in microseconds.
func LatencyBucket(us uint64) int { return histBucket(us) }

// LatencyBucketBounds returns the [lo, hi) microsecond range of bucket i.
func LatencyBucketBounds(i int) (lo, hi uint64) { return histBounds(i) }

// LatencyHistogram summarizes latency samples. The zero value is empty and
// ready to use. It is not safe for concurrent use; RemoteTrack.Latency
// returns a copy.
type LatencyHistogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      time.Duration
	min, max time.Duration
}

func histBucket(us uint64) int {
	if us >= 1<<(histMaxBit+1) {
		us = 1<<(histMaxBit+1) - 1
	}
	if us < histSub {
		return int(us)
	}
	k := bits.Len64(us) - 1 // most significant bit
	s := k - histSubBits
	return (s+1)*histSub + int(us>>uint(s)) - histSub
}

// histBounds returns the [lo, hi) microsecond range of bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i) + 1
	}
	s := i/histSub - 1
	m := uint64(i%histSub + histSub)
	return m << uint(s), (m + 1) << uint(s)
}

// Record adds one sample (negative samples count as 0).
func (h *LatencyHistogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histBucket(uint64(d/time.Microsecond))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds o's samples to h.
func (h *LatencyHistogram) Merge(o *LatencyHistogram) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of samples.
func (h *LatencyHistogram) Count() int { return int(h.n) }

// Min is the smallest sample (exact), 0 when empty.
func (h *LatencyHistogram) Min() time.Duration { return h.min }

// Max is the largest sample (exact), 0 when empty.
func (h *LatencyHistogram) Max() time.Duration { return h.max }

// Mean is the average sample (exact), 0 when empty.
func (h *LatencyHistogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Percentile returns the q-th percentile (q in [0, 100]) within the bucket
// resolution, clamped to [Min, Max]; 0 when empty.
func (h *LatencyHistogram) Percentile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 100 {
		return h.max
	}
	rank := uint64(q/100*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histBounds(i)
			d := time.Duration(lo+hi) * time.Microsecond / 2
			return min(max(d, h.min), h.max)
		}
	}
	return h.max
}
