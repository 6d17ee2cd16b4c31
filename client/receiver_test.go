package client

import (
	"encoding/binary"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// captureBinding is a TrackLocalContext whose write stream keeps packets.
type captureBinding struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (c *captureBinding) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111},
	}
}
func (c *captureBinding) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c *captureBinding) SSRC() webrtc.SSRC                                      { return 1234 }
func (c *captureBinding) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c *captureBinding) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c *captureBinding) WriteStream() webrtc.TrackLocalWriter                   { return c }
func (c *captureBinding) ID() string                                             { return "capture" }
func (c *captureBinding) RTCPReader() interceptor.RTCPReader                     { return nil }
func (c *captureBinding) Write(b []byte) (int, error)                            { return len(b), nil }
func (c *captureBinding) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pkts = append(c.pkts, rtp.Packet{Header: *h, Payload: append([]byte(nil), payload...)})
	return len(payload), nil
}

func TestVP8Packetization(t *testing.T) {
	p, err := NewSyntheticPublisher(PublisherOptions{NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	delta, key := p.frameSizes()
	if delta != 1984 || key != 4*delta { // 500 kbit/s, 30 fps, a 4x keyframe every 2 s
		t.Fatalf("frame sizes %d/%d", delta, key)
	}
	cb := &captureBinding{}
	if _, err := p.video.Bind(cb); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, p.opts.MaxPayload)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2}}
	seq := uint16(65533) // wraps inside the frame
	p.sendFrame(pkt, buf, &seq, 9000, 0x1234, key, true)
	nKey := len(cb.pkts)
	p.sendFrame(pkt, buf, &seq, 12000, 0x1235, delta, false)

	if nKey != 7 || len(cb.pkts) != 9 {
		t.Fatalf("packets: key frame %d, total %d", nKey, len(cb.pkts))
	}
	now := time.Now()
	for i, pk := range cb.pkts {
		first := i == 0 || i == nKey
		last := i == nKey-1 || i == len(cb.pkts)-1
		keyFrame := i < nKey
		if len(pk.Payload) > 1200 {
			t.Errorf("packet %d: payload %d", i, len(pk.Payload))
		}
		if pk.SequenceNumber != uint16(65533+i) || pk.SSRC != 1234 || pk.PayloadType != 96 {
			t.Errorf("packet %d: header %+v", i, pk.Header)
		}
		if pk.Marker != last {
			t.Errorf("packet %d: marker %v", i, pk.Marker)
		}
		off, start, ok := vp8Descriptor(pk.Payload)
		if !ok || off != 4 || start != first {
			t.Errorf("packet %d: descriptor off %d start %v ok %v", i, off, start, ok)
		}
		pic := binary.BigEndian.Uint16(pk.Payload[2:4]) & 0x7fff
		if (keyFrame && pic != 0x1234) || (!keyFrame && pic != 0x1235) {
			t.Errorf("packet %d: picture id %#x", i, pic)
		}
		if got := isKeyframeStart(webrtc.MimeTypeVP8, pk.Payload); got != (first && keyFrame) {
			t.Errorf("packet %d: keyframe start %v", i, got)
		}
		if first && (pk.Payload[4]&1 == 0) != keyFrame {
			t.Errorf("packet %d: P bit wrong", i)
		}
		if d, ok := sendTimestamp(webrtc.MimeTypeVP8, pk.Payload, now); !ok || d < 0 || d > time.Second {
			t.Errorf("packet %d: send timestamp %v %v", i, d, ok)
		}
	}
	if pl := cb.pkts[0].Payload; pl[7] != 0x9d || pl[8] != 0x01 || pl[9] != 0x2a ||
		binary.LittleEndian.Uint16(pl[10:]) != 640 || binary.LittleEndian.Uint16(pl[12:]) != 480 {
		t.Errorf("keyframe header % x", pl[4:14])
	}
	if p.PacketsSent() != 9 {
		t.Errorf("PacketsSent %d", p.PacketsSent())
	}
}

func TestKeyframeDetection(t *testing.T) {
	cases := []struct {
		name, mime string
		b          []byte
		want       bool
	}{
		{"vp8 minimal key", "video/VP8", []byte{0x10, 0x00}, true},
		{"vp8 minimal delta", "video/VP8", []byte{0x10, 0x01}, false},
		{"vp8 not start", "video/VP8", []byte{0x00, 0x00}, false},
		{"vp8 pid 1", "video/VP8", []byte{0x11, 0x00}, false},
		{"vp8 I 7-bit L T", "video/VP8", []byte{0x90, 0xe0, 0x05, 0x07, 0x40, 0x00}, true},
		{"vp8 I 15-bit K", "video/VP8", []byte{0x90, 0x90, 0x81, 0x02, 0x20, 0x01}, false},
		{"vp8 truncated", "video/VP8", []byte{0x90}, false},
		{"vp9 key B", "video/VP9", []byte{0x08}, true},
		{"vp9 inter", "video/VP9", []byte{0x48}, false},
		{"vp9 no B", "video/VP9", []byte{0x00}, false},
		{"vp9 key SID0", "video/VP9", []byte{0xa8, 0x05, 0x00}, true},
		{"vp9 key SID1", "video/VP9", []byte{0xa8, 0x05, 0x02}, false},
		{"h264 IDR", "video/H264", []byte{0x65}, true},
		{"h264 SPS", "video/H264", []byte{0x67}, true},
		{"h264 slice", "video/H264", []byte{0x41}, false},
		{"h264 STAP-A SPS", "video/H264", []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68}, true},
		{"h264 STAP-A no key", "video/H264", []byte{0x78, 0x00, 0x01, 0x06, 0x00, 0x01, 0x41}, false},
		{"h264 FU-A IDR start", "video/H264", []byte{0x7c, 0x85}, true},
		{"h264 FU-A IDR middle", "video/H264", []byte{0x7c, 0x05}, false},
		{"opus", "audio/opus", []byte{0x10, 0x00}, false},
	}
	for _, c := range cases {
		if got := isKeyframeStart(c.mime, c.b); got != c.want {
			t.Errorf("%s: got %v", c.name, got)
		}
	}
}

func TestSendTimestampPlausibility(t *testing.T) {
	now := time.Now()
	opus := binary.BigEndian.AppendUint64(nil, uint64(now.Add(-30*time.Millisecond).UnixNano()))
	if d, ok := sendTimestamp("audio/opus", opus, now); !ok || d != 30*time.Millisecond {
		t.Errorf("opus: %v %v", d, ok)
	}
	for _, bad := range []time.Time{now.Add(-time.Hour), now.Add(time.Hour), time.Unix(0, 0)} {
		b := binary.BigEndian.AppendUint64(nil, uint64(bad.UnixNano()))
		if _, ok := sendTimestamp("audio/opus", b, now); ok {
			t.Errorf("implausible %v accepted", bad)
		}
	}
	if _, ok := sendTimestamp("audio/opus", []byte{1, 2, 3}, now); ok {
		t.Error("short payload accepted")
	}
	if _, ok := sendTimestamp("video/H264", opus, now); ok {
		t.Error("H.264 carries no stamp")
	}
}

func TestLatencyHistogram(t *testing.T) {
	for _, us := range []uint64{0, 1, 31, 32, 33, 63, 64, 100, 1000, 123456, 1 << 31, 1<<32 - 1} {
		lo, hi := histBounds(histBucket(us))
		if us < lo || us >= hi {
			t.Errorf("%d µs in bucket [%d,%d)", us, lo, hi)
		}
	}
	if histBucket(math.MaxUint64) != histBuckets-1 {
		t.Error("clamp")
	}
	var h LatencyHistogram
	if h.Percentile(50) != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Error("empty histogram")
	}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	near := func(got, want time.Duration) bool { return math.Abs(float64(got-want)) <= 0.04*float64(want) }
	if p := h.Percentile(50); !near(p, 500*time.Millisecond) {
		t.Errorf("p50 %v", p)
	}
	if p := h.Percentile(99); !near(p, 990*time.Millisecond) {
		t.Errorf("p99 %v", p)
	}
	if h.Min() != time.Millisecond || h.Max() != time.Second || h.Mean() != 500500*time.Microsecond || h.Count() != 1000 {
		t.Errorf("min %v max %v mean %v", h.Min(), h.Max(), h.Mean())
	}
	var o LatencyHistogram
	o.Record(5 * time.Second)
	o.Record(-time.Second) // counts as 0
	h.Merge(&o)
	if h.Count() != 1002 || h.Max() != 5*time.Second || h.Min() != 0 || h.Percentile(100) != 5*time.Second {
		t.Errorf("merge: n %d max %v min %v", h.Count(), h.Max(), h.Min())
	}
}

func TestDropStream(t *testing.T) {
	st := &dropStream{pending: map[uint16]struct{}{}}
	drop := func(seq uint16) bool { return seq == 0 || seq == 3 }
	for i, s := range []struct {
		seq  uint16
		want verdict
	}{
		{65534, verdictPass}, // the first packet is never offered
		{65535, verdictPass},
		{0, verdictDrop}, // dropped across the wrap
		{1, verdictPass},
		{3, verdictDrop},
		{2, verdictPass},      // reordered, never offered
		{3, verdictRecovered}, // the retransmission passes
		{0, verdictRecovered},
		{0, verdictDuplicate},
		{3, verdictDuplicate},
		{1, verdictDuplicate},
		{4, verdictPass},
	} {
		if got := st.onPacket(s.seq, drop); got != s.want {
			t.Errorf("step %d seq %d: got %v want %v", i, s.seq, got, s.want)
		}
	}
	// A pending drop expires once the stream is far ahead.
	st.onPacket(100, func(uint16) bool { return true })
	if !st.isPending(100) {
		t.Fatal("100 not pending")
	}
	st.onPacket(100+dropExpiry+1, func(uint16) bool { return false })
	if st.repaired(100) {
		t.Error("expired drop repaired")
	}
}

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	for i, s := range []struct {
		seq        uint16
		ok, newest bool
	}{
		{10, true, true},
		{12, true, true},
		{11, true, false},
		{11, false, false},
		{12, false, false},
		{12 + replayWindowSize, true, true},
		{12, false, false}, // too old (1024 behind)
		{13, true, false},  // the oldest in the window
		{12 + replayWindowSize - 1, true, false},
		{65535, false, false}, // far behind (wrapped): too old
	} {
		if ok, newest := w.accept(s.seq); ok != s.ok || newest != s.newest {
			t.Errorf("step %d seq %d: ok %v newest %v", i, s.seq, ok, newest)
		}
	}
}

func TestRTPPayloadOffset(t *testing.T) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, CSRC: []uint32{1, 2}, SequenceNumber: 9}, Payload: []byte{0xab, 0xcd}}
	if err := p.Header.SetExtension(1, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	off, ok := rtpPayloadOffset(b)
	if !ok || off != p.Header.MarshalSize() || b[off] != 0xab {
		t.Errorf("offset %d ok %v, want %d", off, ok, p.Header.MarshalSize())
	}
	if _, ok := rtpPayloadOffset(b[:13]); ok {
		t.Error("truncated extension accepted")
	}
}
