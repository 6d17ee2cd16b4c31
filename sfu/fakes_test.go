package sfu

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/metrics"
)

// fakeSource is a Source that counts keyframe requests; tests call
// UpTrack.ingest directly instead of ReadRTP.
type fakeSource struct{ keyframes atomic.Int32 }

func (s *fakeSource) ReadRTP([]byte) (int, error) { select {} }
func (s *fakeSource) RequestKeyframe() error {
	s.keyframes.Add(1)
	return nil
}

// fakeWriter records what a down track writes; gate, when set, blocks
// every write until it is closed (a stuck subscriber).
type fakeWriter struct {
	gate  chan struct{}
	count atomic.Int64
	keep  bool

	mu   sync.Mutex
	pkts []rtp.Packet
}

func (w *fakeWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if w.gate != nil {
		<-w.gate
	}
	if w.keep {
		w.mu.Lock()
		w.pkts = append(w.pkts, rtp.Packet{Header: *h, Payload: append([]byte(nil), payload...)})
		w.mu.Unlock()
	}
	w.count.Add(1)
	return 12 + len(payload), nil
}

func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *fakeWriter) packets() []rtp.Packet {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]rtp.Packet(nil), w.pkts...)
}

// fakeContext is the webrtc.TrackLocalContext pion would pass to Bind.
type fakeContext struct {
	codecs []webrtc.RTPCodecParameters
	ssrc   webrtc.SSRC
	w      webrtc.TrackLocalWriter
	exts   []webrtc.RTPHeaderExtensionParameter
}

func (c fakeContext) CodecParameters() []webrtc.RTPCodecParameters           { return c.codecs }
func (c fakeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return c.exts }
func (c fakeContext) SSRC() webrtc.SSRC                                      { return c.ssrc }
func (c fakeContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c fakeContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c fakeContext) WriteStream() webrtc.TrackLocalWriter                   { return c.w }
func (c fakeContext) ID() string                                             { return "ctx" }
func (c fakeContext) RTCPReader() interceptor.RTCPReader                     { return nil }

var vp8 = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}

func newTestUpTrack(m *metrics.Metrics, src Source) *UpTrack {
	return NewUpTrack(UpTrackParams{
		ID: "TR_test", Participant: "alice", Kind: webrtc.RTPCodecTypeVideo, Codec: vp8,
		Source: src, Logger: slog.New(slog.DiscardHandler), Metrics: m,
	})
}

// newBoundDownTrack makes a ready down track of up writing to w with the
// subscriber's own SSRC and payload type.
func newBoundDownTrack(t testing.TB, m *metrics.Metrics, up *UpTrack, w *fakeWriter, ssrc webrtc.SSRC) *DownTrack {
	t.Helper()
	d := newDownTrackOn(t, m, up, w, ssrc)
	d.SetReady()
	if !up.AddDownTrack(d) {
		t.Fatal("AddDownTrack refused")
	}
	return d
}

// newUnreadyDownTrack makes a bound down track of up, added to it, whose
// transport is not up yet (the test calls SetReady).
func newUnreadyDownTrack(t testing.TB, m *metrics.Metrics, up *UpTrack, w *fakeWriter, ssrc webrtc.SSRC) *DownTrack {
	t.Helper()
	d := newDownTrackOn(t, m, up, w, ssrc)
	if !up.AddDownTrack(d) {
		t.Fatal("AddDownTrack refused")
	}
	return d
}

func newDownTrackOn(t testing.TB, m *metrics.Metrics, up *UpTrack, w *fakeWriter, ssrc webrtc.SSRC) *DownTrack {
	t.Helper()
	d := NewDownTrack(DownTrackParams{Up: up, StreamID: "alice", Logger: slog.New(slog.DiscardHandler), Metrics: m})
	if _, err := d.Bind(fakeContext{
		codecs: []webrtc.RTPCodecParameters{{RTPCodecCapability: vp8, PayloadType: 100}},
		ssrc:   ssrc, w: w,
	}); err != nil {
		t.Fatal(err)
	}
	return d
}

// vp8Packet builds a VP8 RTP packet with a payload descriptor: start
// marks the first packet of a frame, key a keyframe. It carries a header
// extension, which must never reach a subscriber.
func vp8Packet(seq uint16, ts uint32, start, key bool, size int) []byte {
	payload := make([]byte, size)
	if start {
		payload[0] = 0x10 // S=1, PID=0
		if !key {
			payload[1] = 0x01 // P=1: an inter frame
		}
	}
	payload[size-1] = byte(seq)
	p := rtp.Packet{Header: rtp.Header{
		Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 0xabcdef,
		Marker: true,
	}, Payload: payload}
	_ = p.Header.SetExtension(3, []byte{1, 2})
	b, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
