package recorder

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/relaysfu/relayd/sfu"
)

// How long a jitter buffer waits for a missing packet, in packets. The
// wait must cover a NACK round trip (the SFU NACKs its publishers, and the
// retransmission arrives some 100-300 ms late, through the same sink):
// 200 packets are ~300 ms of 720p video at ~600 packets/s, and 50 packets
// are 1 s of 20 ms Opus. maxWait caps both in media time, so a low-rate
// stream (200 packets of 300 kbit/s video are ~6 s) does not stall the file.
// Each samplebuilder is also a fixed ~1 MiB (two 65536-pointer arrays):
// allocated on the track's first packet, released when the track ends.
const (
	videoMaxLate = 200
	audioMaxLate = 50
	maxWait      = time.Second
)

// frame is one reassembled frame, ready for the file.
type frame struct {
	slot *slot
	key  bool
	ms   int64 // on the recording's clock
	data []byte
}

// source turns the packets of one recorded up track into frames.
type source struct {
	slot  *slot
	up    *sfu.UpTrack
	log   *slog.Logger
	ended atomic.Bool // set by the sink's Close, read by the loop

	// owned by the loop
	begun    bool // has had a packet (it is in loopState.live)
	finished bool // flushed after its track ended: later packets are ignored
	builder  *samplebuilder.SampleBuilder
	anchorMs int64  // the first packet's time on the recording's clock
	lastTs   uint32 // RTP timestamp of the last frame (or the first packet)
	extTs    int64  // RTP ticks from the first packet to the last frame, unwrapped
	needKey  bool   // video: drop frames until a keyframe
	cont     continuity
}

func newSource(sl *slot, up *sfu.UpTrack, log *slog.Logger) *source {
	return &source{slot: sl, up: up, log: log.With("track", up.ID(), "codec", sl.mime)}
}

// newBuilder makes the jitter buffer for the slot's codec.
func (s *source) newBuilder() *samplebuilder.SampleBuilder {
	if !s.slot.video() {
		return samplebuilder.New(audioMaxLate, &codecs.OpusPacket{}, s.slot.clock,
			samplebuilder.WithMaxTimeDelay(maxWait))
	}
	var d rtp.Depacketizer = &codecs.VP8Packet{}
	if s.slot.codecID == "V_VP9" {
		d = &codecs.VP9Packet{}
	}
	// RTP headers come with each frame so that continuity can see which
	// sequence numbers it spans.
	return samplebuilder.New(videoMaxLate, d, s.slot.clock,
		samplebuilder.WithMaxTimeDelay(maxWait), samplebuilder.WithRTPHeaders(true))
}

// push adds one packet (raw is the source's own copy) and hands every frame
// it completes to out. t0 is the arrival time of the recording's first
// packet.
func (s *source) push(raw []byte, arrival, t0 int64, out func(frame)) {
	p := &rtp.Packet{} // kept by the builder until the frame is out
	if err := p.Unmarshal(raw); err != nil {
		return // the up track parsed this packet already; cannot happen
	}
	if s.builder == nil {
		s.builder = s.newBuilder()
		s.anchorMs = (arrival - t0) / int64(time.Millisecond)
		s.lastTs = p.Timestamp
		if s.slot.video() {
			s.needKey = true
			s.up.RequestKeyframe() // joining a running stream: do not wait for the next natural keyframe
		}
	}
	if s.slot.video() && len(p.Payload) == 0 {
		// Padding only (bandwidth probing): the builder drops it, and
		// continuity must not take its sequence number for a loss.
		s.cont.padding(p.SequenceNumber)
	}
	s.builder.Push(p)
	s.pop(out)
}

// flush writes out what the jitter buffer still holds and releases it:
// the track ended, or the recording is closing.
func (s *source) flush(out func(frame)) {
	if s.builder == nil {
		s.finished = true
		return
	}
	// Without the time limit first: with it, pion's Flush can scan the
	// whole 65536-slot ring once per slot (seconds of CPU) when the last
	// frame is complete; and at the end there is nothing left to wait for.
	samplebuilder.WithMaxTimeDelay(0)(s.builder)
	s.builder.Flush()
	s.pop(out)
	s.builder = nil
	s.finished = true
}

func (s *source) pop(out func(frame)) {
	for smp := s.builder.Pop(); smp != nil; smp = s.builder.Pop() {
		if f, ok := s.frame(smp); ok {
			out(f)
		}
	}
}

// frame stamps a sample with its time and, for video, applies the keyframe
// rule: after a gap, nothing until a keyframe.
func (s *source) frame(smp *media.Sample) (frame, bool) {
	// int32: the difference to the previous frame's timestamp, across a
	// 32-bit wrap, and negative for a frame released out of order.
	s.extTs += int64(int32(smp.PacketTimestamp - s.lastTs))
	s.lastTs = smp.PacketTimestamp
	ms := max(s.anchorMs+s.extTs*1000/int64(s.slot.clock), 0)
	f := frame{slot: s.slot, key: true, ms: ms, data: smp.Data}
	if !s.slot.video() {
		return f, true // every Opus packet decodes on its own
	}

	var key bool
	var width, height int
	if s.slot.codecID == "V_VP9" {
		key, width, height = vp9Keyframe(smp.Data)
	} else {
		key, width, height = vp8Keyframe(smp.Data)
	}
	if n := len(smp.RTPHeaders); n > 0 {
		if !s.cont.next(smp.RTPHeaders[0].SequenceNumber, smp.RTPHeaders[n-1].SequenceNumber) && !s.needKey {
			s.log.Debug("recording: video gap, waiting for a keyframe")
			s.needKey = true
		}
	}
	if s.needKey {
		if !key {
			s.up.RequestKeyframe() // throttled by the up track
			return frame{}, false
		}
		s.needKey = false
	}
	if key && s.slot.width == 0 && width > 0 && height > 0 {
		s.slot.width, s.slot.height = width, height
	}
	f.key = key
	return f, true
}
