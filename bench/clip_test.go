package bench

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestParseIVF(t *testing.T) {
	c, err := parseIVF(clipIVF)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.frames) != 150 || c.width != 640 || c.height != 480 {
		t.Errorf("clip: %d frames %dx%d, want 150 640x480", len(c.frames), c.width, c.height)
	}
	// An IVF with frames [key, delta...] of the given sizes.
	mk := func(fourcc string, frames ...[]byte) []byte {
		b := make([]byte, 32)
		copy(b, "DKIF")
		binary.LittleEndian.PutUint16(b[6:], 32)
		copy(b[8:], fourcc)
		for _, f := range frames {
			h := make([]byte, 12)
			binary.LittleEndian.PutUint32(h, uint32(len(f)))
			b = append(append(b, h...), f...)
		}
		return b
	}
	key := []byte{0x10, 0, 0, 0x9d, 0x01, 0x2a}
	delta := []byte{0x11, 0, 0}
	if _, err := parseIVF(mk("VP80", key, delta, delta)); err != nil {
		t.Errorf("a valid clip: %v", err)
	}
	for _, tt := range []struct {
		name string
		b    []byte
		err  string
	}{
		{"not IVF", []byte("hello"), "not an IVF"},
		{"VP9", mk("VP90", key), "want VP80"},
		{"starts with a delta frame", mk("VP80", delta, key), "not a keyframe"},
		{"a second keyframe", mk("VP80", key, delta, key), "frame 2 is a keyframe"},
		{"a frame bigger than a packet", mk("VP80", append(key, make([]byte, clipRoom)...)), "more than"},
		{"truncated", mk("VP80", key)[:40], "truncated"},
		{"no frames", mk("VP80"), "no frames"},
	} {
		if _, err := parseIVF(tt.b); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.err)
		}
	}
}

// TestPacketize: the real frame is whole in the first packet; the frame
// data read back (descriptors and stamps removed) is the real frame and
// then zeros; every packet ends with the stamp, starts with the VP8
// descriptor (S on the first only) and is at most clipMaxPayload.
func TestPacketize(t *testing.T) {
	clip, _ := parseIVF(clipIVF)
	for _, tt := range []struct {
		frame []byte
		size  int
	}{
		{clip.frames[0], 23808}, // a keyframe at 1.5 Mbit/s
		{clip.frames[1], 5952},
		{clip.frames[0], clipRoom + 1}, // just over one packet: the real frame still whole in the first
		{clip.frames[2], 10},           // smaller than the real frame: the real frame
	} {
		ps := packetize(nil, tt.frame, tt.size, 0x1234, 42)
		var data []byte
		for i, p := range ps {
			if len(p) > clipMaxPayload {
				t.Errorf("packet %d: %d bytes", i, len(p))
			}
			start, key := vp8Start(p)
			if start != (i == 0) || (start && key != (tt.frame[0]&1 == 0)) {
				t.Errorf("packet %d: start %v key %v", i, start, key)
			}
			if s, ok := trailerStamp(p); !ok || s != 42 {
				t.Errorf("packet %d: stamp %d %v", i, s, ok)
			}
			data = append(data, p[vp8DescLen:len(p)-stampLen]...)
		}
		want := append(append([]byte(nil), tt.frame...), make([]byte, max(tt.size, len(tt.frame))-len(tt.frame))...)
		if !bytes.Equal(data, want) {
			t.Errorf("size %d: the frame data is not the real frame then zeros", tt.size)
		}
		if !bytes.Equal(ps[0][vp8DescLen:vp8DescLen+len(tt.frame)], tt.frame) {
			t.Errorf("size %d: the real frame is not whole in the first packet", tt.size)
		}
	}
	if d, k := clipFrameSizes(1_500_000, 30); d != 5952 || k != 4*d {
		t.Errorf("frame sizes at 1.5 Mbit/s 30 fps: %d / %d", d, k)
	}
}

// TestClipToViewer feeds the clip publisher's packets, as a viewer in the
// lab reads them, into a track: every frame is shown, the send times are
// read from the trailer, and a lost packet stops the picture until the next
// keyframe, counted as a freeze.
func TestClipToViewer(t *testing.T) {
	clip, _ := parseIVF(clipIVF)
	v := newViewer("v", nil, true, &window{})
	v.mode = rxMode{trailerStamps: true, frames: true}
	tr := &trackStats{viewer: v, streamID: "host", video: true, mode: v.mode, ft: newFrameTracker()}
	w := &window{}
	t0 := time.Now()
	w.start.Store(t0.UnixNano())
	w.end.Store(t0.Add(10 * time.Second).UnixNano())

	delta, key := clipFrameSizes(1_500_000, 30)
	seq := uint16(65000)
	frameAt := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second / 30) }
	// 60 frames (2 s), then a keyframe and 60 more; packet 3 of frame 10
	// is lost: frames 10-59 are not shown (1.67 s frozen), 60 on are.
	lost := false
	sent := 0
	for i := 0; i < 120; i++ {
		idx, size := i%60, delta
		if idx == 0 {
			size = key
		}
		at := frameAt(i)
		ps := packetize(nil, clip.frames[idx], size, uint16(i), at.UnixNano())
		for j, p := range ps {
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(i * 3000), SSRC: 7, Marker: j == len(ps)-1}, Payload: p}
			seq++
			sent++
			if i == 10 && j == 3 {
				lost = true
				continue
			}
			b, err := pkt.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			tr.onPacket(b, at.Add(2*time.Millisecond).UnixNano(), w)
		}
	}
	if !lost {
		t.Fatal("frame 10 had fewer than 4 packets")
	}
	if got := tr.winShown.Load(); got != 70 {
		t.Errorf("frames shown %d, want 70 (0-9 and 60-119)", got)
	}
	freeze := tr.freezeIn(frameAt(120).UnixNano(), w.start.Load(), frameAt(120).UnixNano())
	// frame 9 to frame 60, and the 2 ms between the window's start and
	// the first frame (nothing was shown before it)
	if want := frameAt(60).Sub(frameAt(9)) + 2*time.Millisecond; freeze != want {
		t.Errorf("freeze %v, want %v", freeze, want)
	}
	var s HistSnap
	tr.win.Snapshot(&s)
	if s.N == 0 || math.Abs(s.Quantile(0.5)-2) > 0.2 {
		t.Errorf("latency from the trailer stamps: %d samples, p50 %.2f ms, want 2 ms", s.N, s.Quantile(0.5))
	}
	if tr.noStamp.Load() != 0 {
		t.Errorf("%d packets without a stamp", tr.noStamp.Load())
	}
	// The keyframes' size, the freezes as spans, the sequence span.
	if len(tr.sizes) != 1 || tr.sizes[0].Width != 640 || tr.sizes[0].Height != 480 {
		t.Errorf("keyframe sizes %+v, want one change to 640x480", tr.sizes)
	}
	if spans := tr.freezeSpansIn(frameAt(120).UnixNano(), w.start.Load(), frameAt(120).UnixNano()); spanSum(spans) != int64(freeze) {
		t.Errorf("freeze spans %v sum to %v, freezeIn %v", spans, time.Duration(spanSum(spans)), freeze)
	}
	if got := tr.winSpan(); got != uint64(sent) {
		t.Errorf("sequence span %d, want the %d packets sent (one lost)", got, sent)
	}
}

// TestClipLayerActive: a simulcast layer the server does not need sends
// nothing, and starts again with a keyframe; its active time is counted.
func TestClipLayerActive(t *testing.T) {
	clip, _ := parseIVF(clipQ)
	w := &window{}
	now := time.Now()
	w.start.Store(now.UnixNano())
	w.end.Store(now.Add(time.Hour).UnixNano())
	var active, wanted bool
	var keys, packets int
	l := &clipLayer{rid: "q", clip: clip, bitrate: 150_000,
		write: func(p *rtp.Packet) error {
			packets++
			if start, key := vp8Start(p.Payload); start && key {
				keys++
			}
			return nil
		},
		active:    func() bool { return active },
		keyWanted: func() bool { k := wanted; wanted = false; return k },
	}
	p := &clipPublisher{fps: 30, win: w, layers: []*clipLayer{l}}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2}}
	frame := func(i int) { p.sendFrame(l, pkt, nil, now.Add(time.Duration(i)*time.Second/30), now) }

	wanted = true
	frame(0)
	if packets != 0 || wanted {
		t.Fatalf("an inactive layer sent %d packets (or kept its keyframe request)", packets)
	}
	active = true
	for i := 1; i <= 10; i++ {
		frame(i)
	}
	if keys != 1 || packets == 0 {
		t.Fatalf("%d keyframes in 10 frames after coming back, want the first only", keys)
	}
	active = false
	frame(11)
	active = true
	frame(12)
	if keys != 2 {
		t.Fatalf("no keyframe when the layer came back (%d)", keys)
	}
	wanted = true
	frame(13)
	if keys != 3 || l.winKeyR.Load() != 1 {
		t.Fatalf("a keyframe request gave %d keyframes, %d on request", keys, l.winKeyR.Load())
	}
	// active from frame 1 to 11 and from 12 on
	want := 10*time.Second/30 + time.Second/30
	if got := l.activeInWindow(now.Add(13*time.Second/30).UnixNano(), w); got != want {
		t.Fatalf("active %v, want %v", got, want)
	}
}
