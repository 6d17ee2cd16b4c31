package bench

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// vp8Packet builds an RTP packet laid out as client.SyntheticPublisher
// does: VP8 descriptor with a 15-bit picture id, the payload header on a
// frame's first packet, then the send time.
func vp8Packet(t *testing.T, seq uint16, first, key, marker bool, sent time.Time, ext bool) []byte {
	t.Helper()
	d0 := byte(0x80)
	if first {
		d0 |= 0x10
	}
	p := []byte{d0, 0x80, 0x81, 0x23}
	if first {
		if key {
			p = append(p, 0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01)
		} else {
			p = append(p, 0x11, 0, 0)
		}
	}
	p = binary.BigEndian.AppendUint64(p, uint64(sent.UnixNano()))
	p = append(p, make([]byte, 100)...)
	h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 1, SSRC: 7, Marker: marker}
	if ext {
		_ = h.SetExtension(1, []byte{1, 2, 3})
	}
	b, err := (&rtp.Packet{Header: h, Payload: p}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOnPacket(t *testing.T) {
	v := newViewer("v", nil, true, &window{})
	tr := &trackStats{viewer: v, streamID: "host", video: true}
	w := &window{}
	now := time.Now()
	sent := now.Add(-5 * time.Millisecond)
	w.start.Store(sent.Add(-time.Second).UnixNano())
	w.end.Store(math.MaxInt64)

	tr.onPacket(vp8Packet(t, 10, true, true, false, sent, false), now.UnixNano(), w)
	tr.onPacket(vp8Packet(t, 11, false, true, true, sent, true), now.UnixNano(), w)
	tr.onPacket(vp8Packet(t, 11, false, true, true, sent, false), now.UnixNano(), w) // duplicate
	tr.onPacket(vp8Packet(t, 12, true, false, true, sent.Add(-2*time.Second), false), now.UnixNano(), w)

	if got := tr.packets.Load(); got != 4 {
		t.Errorf("packets = %d, want 4", got)
	}
	if got := tr.dups.Load(); got != 1 {
		t.Errorf("dups = %d, want 1", got)
	}
	if got := tr.winPackets.Load(); got != 2 {
		t.Errorf("window packets = %d, want 2 (one duplicate, one sent before the window)", got)
	}
	var s HistSnap
	tr.win.Snapshot(&s)
	if p := s.Quantile(0.5); math.Abs(p-5) > 0.3 {
		t.Errorf("latency p50 = %v ms, want ~5", p)
	}
	if v.firstFrame.Load() != now.UnixNano() {
		t.Error("first frame not recorded at the first marker")
	}
	if tr.noStamp.Load() != 0 {
		t.Errorf("%d packets without a send time", tr.noStamp.Load())
	}
}

func TestOnPacketOpus(t *testing.T) {
	v := newViewer("v", nil, true, &window{})
	tr := &trackStats{viewer: v, streamID: "host"}
	w := &window{}
	sent := time.Now()
	p := binary.BigEndian.AppendUint64(nil, uint64(sent.UnixNano()))
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 1}, Payload: append(p, 1, 2, 3)}).Marshal()
	tr.onPacket(b, sent.Add(3*time.Millisecond).UnixNano(), w)
	var s HistSnap
	tr.all.Snapshot(&s)
	if s.N != 1 || math.Abs(s.Quantile(0.5)-3) > 0.2 {
		t.Errorf("opus latency: %d samples, p50 %v", s.N, s.Quantile(0.5))
	}
	if tr.winPackets.Load() != 0 {
		t.Error("counted in a closed window")
	}
}

func TestOnPacketAllocs(t *testing.T) {
	v := newViewer("v", nil, true, &window{})
	tr := &trackStats{viewer: v, video: true}
	w := &window{}
	w.end.Store(math.MaxInt64)
	b := vp8Packet(t, 1, false, false, false, time.Now(), false)
	seq := uint16(0)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		binary.BigEndian.PutUint16(b[2:], seq)
		tr.onPacket(b, time.Now().UnixNano(), w)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet, want 0", allocs)
	}
}
