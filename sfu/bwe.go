package sfu

// Send-side bandwidth estimation per subscriber (PROTOCOL.md 1.1 §3
// "bandwidth"), from its transport-wide congestion control feedback
// (draft-holmer-rmcat-transport-wide-cc-extensions): every packet sent on
// a subscriber PC carries a transport-wide sequence number (the
// transport-cc header extension, written by DownTrack.write); the
// subscriber's browser reports, every 50-100 ms, which arrived and when.
//
// Why not pion/interceptor's gcc (docs/simulcast.md has the figures): its
// SendSideBWE queues every packet through a pacer goroutine (a
// leaky-bucket pacer, or a no-op one still wrapping each write in an
// attributes map), allocates per packet, and runs its delay controller's
// goroutines per PeerConnection: at 200 viewers that is 400+ goroutines
// and an allocation per forwarded packet, on the path whose cost the
// project counts. Here, as in LiveKit's and Galene's estimators, sending
// costs an atomic add and an atomic store per packet (sendHistory), and
// the estimate is computed where the feedback arrives (the RTCP reader),
// about 10 times a second per subscriber, by a pure function
// (nextEstimate) with table tests.
//
// The estimator (nextEstimate) is a simplified GCC: delay-based overuse
// (queuing delay above the minimum one-way delay seen, and growing, in
// two reports in a row) cuts the estimate to 90% of the rate actually
// delivered, loss above 10% by half the loss (GCC's loss-based
// controller); loss between 2% and 10% holds it while a queue shows (loss
// without a queue is random, repaired by NACKs); otherwise it grows 25% a
// second, up to 10% above what is delivered. Above that it only grows by probing: the
// adapter (adapt.go) has a down track send padding (probe.go) up to the
// rate of the layer it would like, and a probe that delivers without
// overuse raises the estimate to what it delivered.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// Estimator constants, with why.
const (
	// initialEstimate is the estimate at the first feedback, before
	// anything says otherwise: a 720p top layer (1.5 Mbit/s) with
	// headroom, so an uncapped viewer starts on the top layer; a capped
	// one comes down within a second of the queue building.
	initialEstimate = 3_000_000
	// minEstimate keeps the estimate from collapsing to nothing on a
	// burst of loss: audio (~40 kbit/s) always flows.
	minEstimate = 50_000
	// overuseDelay is the queuing delay above the minimum one-way delay
	// at which the link is taken as overused when it still grows; a
	// Wi-Fi link jitters by 10-30 ms without being full.
	overuseDelay = 50 * time.Millisecond
	// maxQueueDelay is overuse however the delay moves: a queue that
	// long is a standing one.
	maxQueueDelay = 150 * time.Millisecond
	// decreaseFactor scales the delivered rate at overuse (GCC's beta is
	// 0.85; the rate measured here is RTP bytes, ~5% under what the
	// link carries with SRTP, UDP and IP around them).
	decreaseFactor = 0.9
	// decreaseInterval is the least time between two cuts: one RTT's
	// feedback reports the same queue several times.
	decreaseInterval = 300 * time.Millisecond
	// holdAfterDecrease is how long the estimate stays put after a cut
	// before growing again.
	holdAfterDecrease = time.Second
	// growthPerSecond is the multiplicative increase, up to 10% above
	// what is delivered (beyond that only probes raise it: probe.go).
	growthPerSecond = 0.25
	// lossHigh and lossLow: above lossHigh (smoothed) the estimate is
	// cut, above lossLow it holds (GCC's loss-based controller).
	lossHigh = 0.10
	lossLow  = 0.02
	// lossSmoothing is the weight of one report's loss in the smoothed
	// loss (an EWMA over ~12 reports).
	lossSmoothing = 0.15
	// minDelayWindow is how long a minimum one-way delay is trusted: a
	// route change may raise the base delay for good.
	minDelayWindow = 10 * time.Second
)

// bweSample is what one feedback report says.
type bweSample struct {
	At         int64 // Now()
	Acked      int   // packets reported (received or lost)
	Lost       int
	Rate       int   // bit/s delivered over the report's arrival span; 0: span too short
	Delay      int64 // ns: queuing delay (one-way delay above the minimum) of the newest packet
	DelayTrend int64 // ns: Delay minus the previous report's
	Probing    bool  // padding is being sent to probe upward
}

// bweState is the estimator's state.
type bweState struct {
	Estimate     int // bit/s; 0: no feedback yet
	Delivered    int // bit/s, smoothed
	Loss         float64
	LastDecrease int64
	LastUpdate   int64
	Overuse      int   // reports in a row that saw the queue overused
	Congested    int64 // x.At of the last report with loss or a queue building (a probe stops at once)
	LossAt       int64 // x.At of the last report that lost more than lossLow of its packets
}

// nextEstimate is the estimator's reaction to one report.
func nextEstimate(s bweState, x bweSample) bweState {
	if s.Estimate == 0 {
		s.Estimate = initialEstimate
		s.LastUpdate = x.At
	}
	if x.Rate > 0 {
		if s.Delivered == 0 {
			s.Delivered = x.Rate
		} else {
			s.Delivered = (s.Delivered*7 + x.Rate*3) / 10
		}
	}
	if x.Acked >= 5 {
		// ~12 reports (~200 packets at 1.5 Mbit/s) of memory: 5%
		// random loss (Wi-Fi, a lossy mobile link) then stays under
		// lossHigh, where 0.3 a report crossed it several times in 30 s
		// and each crossing cut the estimate for good (a lab viewer at
		// 5% loss was paused 16% of the time).
		s.Loss = s.Loss*(1-lossSmoothing) + float64(x.Lost)/float64(x.Acked)*lossSmoothing
	}
	// A queue: loss with one is the link's (a full queue drops); loss
	// without one is random loss the link carries at this rate, which
	// NACKs repair: it neither holds the estimate nor stops a probe.
	queued := x.Delay > int64(overuseDelay)/2
	dt := float64(x.At-s.LastUpdate) / 1e9
	s.LastUpdate = x.At
	// A queue must be seen in two reports in a row (100-200 ms): a
	// single late report is a scheduling hiccup at either end more
	// often than a full link.
	if x.Delay > int64(maxQueueDelay) || (x.Delay > int64(overuseDelay) && x.DelayTrend > 0) {
		s.Overuse++
	} else {
		s.Overuse = 0
	}
	// Loss cuts only while this report shows some: the smoothed loss
	// of a link that was full a moment ago must not cut a probe that
	// now gets through.
	overuse := s.Overuse >= 2 || (s.Loss > lossHigh && x.Lost > 0)
	lossy := x.Acked > 0 && float64(x.Lost)/float64(x.Acked) > lossLow
	if lossy {
		s.LossAt = x.At
	}
	if (lossy && (queued || s.Loss > lossHigh)) || (queued && x.DelayTrend > 0) {
		s.Congested = x.At
	}
	switch {
	case overuse:
		if x.At-s.LastDecrease < int64(decreaseInterval) && s.LastDecrease != 0 {
			break
		}
		// GCC's A = beta * R: 90% of what the link delivers, never
		// above the estimate (and never compounding: a second cut
		// while the queue drains lands on the same value).
		// What is delivered: the smoothed rate, or this report's when
		// higher (a queue makes the link deliver at its full rate, while
		// the smoothing still remembers a flow starting up).
		cut := int(float64(s.Estimate) * decreaseFactor)
		if d := max(s.Delivered, x.Rate); d > 0 {
			cut = min(s.Estimate, int(float64(d)*decreaseFactor))
		}
		if s.Overuse < 2 {
			// Loss alone: GCC's loss-based cut, A * (1 - loss/2).
			cut = int(float64(s.Estimate) * (1 - s.Loss/2))
		}
		s.Estimate = max(cut, minEstimate)
		s.LastDecrease = x.At
	case s.Loss > lossLow && queued:
		// hold
	case x.At-s.LastDecrease < int64(holdAfterDecrease) && s.LastDecrease != 0:
		// hold
	default:
		if x.Probing && s.Delivered > s.Estimate {
			s.Estimate = s.Delivered // the probe got through
		}
		if limit := s.Delivered * 11 / 10; s.Estimate < limit {
			s.Estimate = min(int(float64(s.Estimate)*(1+growthPerSecond*min(dt, 1))), limit)
		}
	}
	return s
}

// sendHistorySize is the packets remembered for feedback; a power of two
// (it divides the 65,536 transport-wide sequence numbers, so a slot is
// seq's whatever the wrap). A packet must stay until the report that
// covers it arrives: browsers send TWCC feedback every 50-100 ms, and it
// takes one RTT (up to ~300 ms on a poor link) to come back, so ~400 ms.
// At the rates sent to one subscriber: a 1.5 Mbit/s stream with its audio
// is ~200 packets/s (1,024 packets: 5 s); while probing, padding adds up
// to 750 packets/s (probe.go: 15 padding packets every 20 ms to make up
// 1.5 Mbit/s), ~950 packets/s in all (1,024: ~1.1 s, 2.5x the 400 ms). A
// packet already overwritten when its report comes is skipped (lookup
// checks the slot's seq), not misread. 2,048 held 16 KiB per subscriber
// for nothing.
const sendHistorySize = 1024

// sendHistory records, per transport-wide sequence number, when a packet
// left and its size. Writers of every down track of the PC record (each
// under its own sequence number, so in slots of their own); the RTCP
// reader reads. Each slot is one atomic word: seq (16 bits) | size (12
// bits) | send time in µs (36 bits: 19 hours, compared modulo). The slots
// are allocated on their own (newBWE): 8 KiB, a size class exactly, where
// inside bwe they would round bwe up to the next class (9.5 KiB).
type sendHistory struct {
	next  atomic.Uint32
	slots *[sendHistorySize]atomic.Uint64
}

const (
	histTimeBits = 36
	histTimeMask = 1<<histTimeBits - 1
)

// take returns the next transport-wide sequence number.
func (h *sendHistory) take() uint16 { return uint16(h.next.Add(1) - 1) }

// record notes packet seq of size bytes sent now.
func (h *sendHistory) record(seq uint16, size int, now int64) {
	us := uint64(now/1000) & histTimeMask
	h.slots[seq%sendHistorySize].Store(uint64(seq)<<48 | uint64(min(size, 4095))<<histTimeBits | us)
}

// lookup returns packet seq's send time (µs, modulo 2^36) and size.
func (h *sendHistory) lookup(seq uint16) (us int64, size int, ok bool) {
	v := h.slots[seq%sendHistorySize].Load()
	if v == 0 || uint16(v>>48) != seq {
		return 0, 0, false
	}
	return int64(v & histTimeMask), int(v >> histTimeBits & 4095), true
}

// bwe is one subscriber PC's estimator: the send history its down tracks
// record into, and the state its RTCP readers update. Make it with newBWE.
type bwe struct {
	hist sendHistory

	mu       sync.Mutex
	st       bweState
	minDelay int64 // µs: the least one-way delay (arrival - send, offset unknown) seen
	minAt    int64 // Now() when it was seen
	lastQ    int64 // ns: the previous report's queuing delay
	probing  bool
	rtxBits  float64 // retransmission budget left (rtxShare of the estimate, refilled)
	rtxAt    int64   // Now() of its last refill

}

// newBWE makes an estimator with an empty send history.
func newBWE() *bwe {
	return &bwe{hist: sendHistory{slots: new([sendHistorySize]atomic.Uint64)}}
}

// estimate returns the estimate in bit/s, and false before any feedback.
func (b *bwe) estimate() (int, bweState, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st.Estimate, b.st, b.st.Estimate > 0
}

// rtxShare is the part of the estimate retransmissions may take, and
// rtxBurst how much of it may be spent at once (s): a keyframe burst
// that overflowed a small queue (20 packets) can be resent at once, and
// random loss of a few percent needs as much again, well within it; but a
// subscriber whose link is full NACKs everything the queue dropped, and
// resending all of it would only keep the link full (a NACK storm).
const (
	rtxShare = 0.3
	rtxBurst = 1.0
)

// allowRetransmit reports whether a retransmission of size bytes fits the
// subscriber's retransmission budget now (always, before an estimate).
func (b *bwe) allowRetransmit(size int, now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.st.Estimate == 0 {
		return true
	}
	rate := float64(b.st.Estimate) * rtxShare
	b.rtxBits = min(b.rtxBits+rate*float64(now-b.rtxAt)/1e9, rate*rtxBurst)
	b.rtxAt = now
	if b.rtxBits < float64(size*8) {
		return false
	}
	b.rtxBits -= float64(size * 8)
	return true
}

// setProbing tells the estimator whether padding is being sent.
func (b *bwe) setProbing(on bool) {
	b.mu.Lock()
	b.probing = on
	b.mu.Unlock()
}

// feedback takes one TWCC report.
func (b *bwe) feedback(fb *rtcp.TransportLayerCC, now int64) {
	x, ok := b.sample(fb, now)
	if !ok {
		return
	}
	b.mu.Lock()
	x.Probing = b.probing
	b.st = nextEstimate(b.st, x)
	b.mu.Unlock()
}

// sample reads a report against the send history.
func (b *bwe) sample(fb *rtcp.TransportLayerCC, now int64) (bweSample, bool) {
	statuses := tccStatuses(fb)
	arrival := int64(fb.ReferenceTime) * 64000 // µs
	di := 0
	x := bweSample{At: now}
	var firstArr, lastArr, lastDelay int64
	bytes, got := 0, 0
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, st := range statuses {
		seq := fb.BaseSequenceNumber + uint16(i)
		if st == rtcp.TypeTCCPacketNotReceived {
			if _, _, ok := b.hist.lookup(seq); ok {
				x.Acked++
				x.Lost++
			}
			continue
		}
		if di >= len(fb.RecvDeltas) {
			break
		}
		if st != rtcp.TypeTCCPacketReceivedWithoutDelta {
			arrival += fb.RecvDeltas[di].Delta
			di++
		}
		sent, size, ok := b.hist.lookup(seq)
		if !ok {
			continue
		}
		x.Acked++
		if got == 0 {
			firstArr = arrival
		}
		got++
		lastArr = arrival
		if got > 1 {
			bytes += size // the first packet's bytes arrived before the span began
		}
		d := arrival - sent // µs, offset unknown; send times wrap at 2^36 µs
		if b.minAt == 0 || d < b.minDelay || now-b.minAt > int64(minDelayWindow) {
			b.minDelay, b.minAt = d, now
		}
		lastDelay = d
	}
	if got == 0 && x.Lost == 0 {
		return x, false
	}
	if span := lastArr - firstArr; span >= 20_000 {
		x.Rate = int(int64(bytes) * 8 * 1_000_000 / span)
	}
	if got > 0 {
		x.Delay = (lastDelay - b.minDelay) * 1000
		x.DelayTrend = x.Delay - b.lastQ
		b.lastQ = x.Delay
	}
	return x, true
}

// tccStatuses expands a report's chunks into one status per packet.
func tccStatuses(fb *rtcp.TransportLayerCC) []uint16 {
	n := int(fb.PacketStatusCount)
	out := make([]uint16, 0, n)
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for i := 0; i < int(c.RunLength) && len(out) < n; i++ {
				out = append(out, c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, s := range c.SymbolList {
				if len(out) == n {
					break
				}
				if c.SymbolSize == rtcp.TypeTCCSymbolSizeOneBit && s == 1 {
					s = rtcp.TypeTCCPacketReceivedSmallDelta
				}
				out = append(out, s)
			}
		}
	}
	return out
}
