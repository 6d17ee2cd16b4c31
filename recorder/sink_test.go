package recorder

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/sfu"
)

type eofSource struct{}

func (eofSource) ReadRTP([]byte) (int, error) { return 0, io.EOF }
func (eofSource) RequestKeyframe() error      { return nil }

var (
	opusCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	vp8Codec  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	vp9Codec  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000}
	h264Codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}
)

func testTrack(id string, kind webrtc.RTPCodecType, c webrtc.RTPCodecCapability) *sfu.UpTrack {
	return sfu.NewUpTrack(sfu.UpTrackParams{
		ID: id, Participant: "alice", Kind: kind, Codec: c, Source: eofSource{},
		Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New(),
	})
}

// TestSinkDropsWhenFull: with nobody draining the queue, WriteRTP returns
// at once and counts what it could not queue; it copies the packet.
func TestSinkDropsWhenFull(t *testing.T) {
	r := &Recorder{queue: make(chan item, 4), wake: make(chan struct{}, 1)}
	s := &sink{r: r, src: &source{}}
	raw := []byte{0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xaa}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			s.WriteRTP(&sfu.Packet{Raw: raw})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WriteRTP blocked on a full queue")
	}
	if got := r.Dropped(); got != 6 {
		t.Fatalf("Dropped = %d, want 6", got)
	}
	raw[12] = 0
	if it := <-r.queue; it.raw[12] != 0xaa {
		t.Fatal("the queued packet shares the caller's buffer")
	}
	s.Close()
	s.Close() // twice: harmless, never blocks
	if !s.src.ended.Load() {
		t.Fatal("Close did not mark the source ended")
	}
	s.WriteRTP(&sfu.Packet{Raw: raw}) // after Close: ignored
	if len(r.queue) != 3 {
		t.Fatalf("queue holds %d after Close, want 3", len(r.queue))
	}
}

// TestTracksFixedOnceStarted: the file starts with the tracks registered
// then; a kind registered later, a codec change or an unsupported codec get
// a discarding sink, and a republished track of the same codec continues
// the file's track.
func TestTracksFixedOnceStarted(t *testing.T) {
	rec, err := New(Params{Dir: t.TempDir(), Room: "r", Participant: "alice", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Sink(testTrack("h264", webrtc.RTPCodecTypeVideo, h264Codec)).(discard); !ok {
		t.Error("H.264 got a recording sink")
	}
	audio := rec.Sink(testTrack("a1", webrtc.RTPCodecTypeAudio, opusCodec))
	// Audio alone: the file waits openGraceMs for a video track, then
	// starts. 6 s of 20 ms packets.
	base := sfu.Now()
	for i := range 300 {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: []byte{0xf8, 0xff, 0xfe}}
		raw, _ := p.Marshal()
		audio.WriteRTP(&sfu.Packet{Raw: raw, Arrival: base + int64(i)*int64(20*time.Millisecond)})
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let the loop keep up: the queue holds 1024
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.mu.Lock()
		frozen := rec.frozen
		rec.mu.Unlock()
		if frozen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the file did not start after 6 s of audio")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, ok := rec.Sink(testTrack("v1", webrtc.RTPCodecTypeVideo, vp8Codec)).(discard); !ok {
		t.Error("a video track added after the file started got a recording sink")
	}
	if _, ok := rec.Sink(testTrack("a2", webrtc.RTPCodecTypeAudio, opusCodec)).(discard); !ok {
		t.Error("a second Opus track got a recording sink while the first is live")
	}
	audio.Close() // the first track ends: the participant publishes again
	if _, ok := rec.Sink(testTrack("a3", webrtc.RTPCodecTypeAudio, opusCodec)).(*sink); !ok {
		t.Error("a republished Opus track was refused")
	}
	f, err := rec.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Tracks, []string{"audio/opus"}) {
		t.Errorf("Tracks = %v", f.Tracks)
	}
	if f.Duration < 5900*time.Millisecond || f.Duration > 6*time.Second {
		t.Errorf("Duration = %v, want ~6s", f.Duration)
	}
	if _, ok := rec.Sink(testTrack("a4", webrtc.RTPCodecTypeAudio, opusCodec)).(discard); !ok {
		t.Error("Sink after Close returned a recording sink")
	}
}

// TestCodecChangeRefused: the first video codec decides the file's track.
func TestCodecChangeRefused(t *testing.T) {
	rec, err := New(Params{Dir: t.TempDir(), Room: "r", Participant: "alice", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rec.Sink(testTrack("v1", webrtc.RTPCodecTypeVideo, vp8Codec))
	if _, ok := rec.Sink(testTrack("v2", webrtc.RTPCodecTypeVideo, vp9Codec)).(discard); !ok {
		t.Error("VP9 after VP8 got a recording sink")
	}
	if _, err := rec.Close(); !errors.Is(err, ErrNoMedia) {
		t.Fatalf("Close: %v, want ErrNoMedia", err)
	}
}
