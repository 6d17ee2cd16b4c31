package bench

// The viewers' hot path: one goroutine per received track reads RTP from
// pion and accounts for each packet with a few atomic adds, without a lock
// or an allocation (the read buffer and the state are per track). The
// payload carries the publisher's send time (client.SyntheticPublisher puts
// 8 bytes of big-endian UnixNano after the VP8 descriptor and payload
// header, or at the start of an Opus payload), which gives the end-to-end
// latency and decides whether a packet belongs to the measurement window.

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/relaysfu/relayd/client"
)

// window is the measurement window: a packet whose send time is in
// [start, end) is counted in the window figures. Closed (start = end = 0)
// outside measurements.
type window struct {
	start atomic.Int64 // UnixNano
	end   atomic.Int64 // UnixNano; MaxInt64 while open
}

func (w *window) contains(ns int64) bool {
	return ns >= w.start.Load() && ns < w.end.Load()
}

// dedupSize is how many recent sequence numbers a track remembers to drop
// duplicates (a retransmission that arrives after the original).
const dedupSize = 512

// trackStats is one received track of one viewer.
type trackStats struct {
	viewer   *viewer
	streamID string // msid stream id: the publishing identity in the viewer's room
	video    bool

	firstAt      atomic.Int64 // UnixNano of the first packet, 0 before
	firstFrameAt atomic.Int64 // video: UnixNano of the end of the first complete frame
	packets      atomic.Uint64
	bytes        atomic.Uint64
	dups         atomic.Uint64
	winPackets   atomic.Uint64 // unique packets sent within the window
	noStamp      atomic.Uint64 // packets without a plausible send time
	all          Hist          // latency of every packet
	win          Hist          // latency of the window's packets

	// owned by the reader goroutine
	seen      [dedupSize]uint32 // seq+1 of recent packets, by seq % dedupSize
	started   bool
	frameSeen bool
}

// read reads the track until it ends.
func (t *trackStats) read(r *webrtc.TrackRemote, w *window) {
	buf := make([]byte, 1600)
	for {
		n, _, err := r.Read(buf)
		if err != nil {
			return
		}
		t.onPacket(buf[:n], time.Now().UnixNano(), w)
	}
}

// onPacket accounts for one RTP packet (header included) received at now.
func (t *trackStats) onPacket(b []byte, now int64, w *window) {
	if len(b) < 12 {
		return
	}
	seq := binary.BigEndian.Uint16(b[2:4])
	marker := b[1]&0x80 != 0
	payload, ok := rtpPayload(b)
	if !ok {
		return
	}
	if t.firstAt.Load() == 0 {
		t.firstAt.Store(now)
		t.viewer.firstPacket.CompareAndSwap(0, now)
	}
	t.packets.Add(1)
	t.bytes.Add(uint64(len(b)))
	if t.video && !t.frameSeen && marker {
		t.frameSeen = true
		t.firstFrameAt.Store(now)
		t.viewer.frameArrived(now)
	}

	slot := &t.seen[seq%dedupSize]
	if t.started && *slot == uint32(seq)+1 {
		t.dups.Add(1)
		return
	}
	t.started = true
	*slot = uint32(seq) + 1

	mime := "audio/opus" // lower case: SendStamp lower-cases without allocating
	if t.video {
		mime = "video/vp8"
	}
	sent, ok := client.SendStamp(mime, payload)
	if !ok || sent > now+int64(time.Second) || now-sent > int64(time.Minute) {
		t.noStamp.Add(1)
		if w.contains(now) {
			t.winPackets.Add(1)
		}
		return
	}
	lat := time.Duration(now - sent)
	t.all.Record(lat)
	if w.contains(sent) {
		t.winPackets.Add(1)
		t.win.Record(lat)
	}
}

// rtpPayload returns the payload of an RTP packet: after the CSRCs and the
// header extension, before the padding.
func rtpPayload(b []byte) ([]byte, bool) {
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // X
		if len(b) < off+4 {
			return nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > off { // P
		end -= int(b[end-1])
	}
	if off > end {
		return nil, false
	}
	return b[off:end], true
}
