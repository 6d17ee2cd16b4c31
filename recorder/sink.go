package recorder

import (
	"sync/atomic"

	"github.com/relaysfu/relayd/sfu"
)

// item is one packet on its way from an up track's reader to the recorder's
// goroutine: a private copy, since sfu.Packet is only valid during WriteRTP.
type item struct {
	src     *source
	raw     []byte // the RTP packet as received
	arrival int64  // sfu.Now() when the up track read it
}

// sink is the sfu.Sink of one recorded up track. Of a simulcast track it
// records one layer, the top one when the recording of the track began
// (a switch in the middle of the file would break its sequence numbers
// and timestamps); the others are dropped here.
type sink struct {
	r      *Recorder
	src    *source
	layer  uint8
	closed atomic.Bool
}

// WriteRTP copies p into the recorder's queue, or drops it when the queue
// is full. It never blocks and keeps nothing of p.
func (s *sink) WriteRTP(p *sfu.Packet) {
	if s.closed.Load() || s.r.closing.Load() || p.Layer != s.layer {
		return
	}
	it := item{src: s.src, raw: append([]byte(nil), p.Raw...), arrival: p.Arrival}
	select {
	case s.r.queue <- it:
	default:
		s.r.dropped.Add(1)
	}
}

// Close is called when the up track ends: the recorder's goroutine then
// writes out what the track's jitter buffer still holds.
func (s *sink) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.src.ended.Store(true)
	select {
	case s.r.wake <- struct{}{}:
	default: // a wake-up is already pending; it will see this source too
	}
}
