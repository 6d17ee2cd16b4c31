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
	"slices"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/relaysfu/relayd/client"
)

// rxMode is how a viewer reads what it receives. The zero value is the
// loopback bench's: client.SyntheticPublisher's stamps, no frame
// accounting, no keyframe requests (its frames cannot be decoded anyway).
// The lab's viewers read the clip publisher (clip.go) and behave as a
// browser's receiver would (frames.go).
type rxMode struct {
	trailerStamps    bool // send time at the end of the payload (clip publisher)
	frames           bool // follow video frames: shown frames, freezes
	keyframeRequests bool // send PLIs as libwebrtc does (needs frames)
}

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

	// with rxMode.frames (video): what a person sees (frames.go)
	rtx       atomic.Uint64 // packets that came as retransmissions (RTX)
	late      atomic.Uint64 // video packets that came after a later one: retransmissions, in the lab
	winBytes  atomic.Uint64 // bytes that arrived within the window
	lastShown atomic.Int64  // UnixNano of the last frame shown, 0 before
	winShown  atomic.Uint64 // frames shown within the window
	winFreeze atomic.Int64  // ns of the window inside freezes, up to lastShown
	plis      atomic.Uint64 // keyframe requests sent
	winPLIs   atomic.Uint64 // of those, within the window
	sendPLI   func() error  // writes a PLI for this track
	ft        *frameTracker // owned by the reader goroutine
	kp        keyframePolicy
	mode      rxMode

	// owned by the reader goroutine (read once it stopped)
	seen        [dedupSize]uint32 // seq+1 of recent packets, by seq % dedupSize
	started     bool
	frameSeen   bool
	sizes       []sizeEvent // video: each change of the keyframes' size (layers.go)
	freezeSpans [][2]int64  // video: the window's freezes so far, [from, to) UnixNano
	// the extended sequence numbers of the window's packets (by send
	// time), lowest and highest: what the server sent this viewer of
	// them, which a simulcast viewer's loss is counted against
	spanSeq        seqUnwrapper
	winLo, winHi   int64
	winSpanStarted bool
}

// read reads the track until it ends.
func (t *trackStats) read(r *webrtc.TrackRemote, w *window) {
	buf := make([]byte, 1600)
	for {
		n, attr, err := r.Read(buf)
		if err != nil {
			return
		}
		if attr != nil && attr.Get(webrtc.AttributeRtxSsrc) != nil {
			t.rtx.Add(1)
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
	if w.contains(now) {
		t.winBytes.Add(uint64(len(b)))
	}
	if t.video && t.ft == nil && !t.frameSeen && marker {
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
	if t.ft != nil {
		t.onFramePacket(b, seq, marker, payload, now, w)
	}

	var sent int64
	if t.mode.trailerStamps {
		sent, ok = trailerStamp(payload)
	} else {
		mime := "audio/opus" // lower case: SendStamp lower-cases without allocating
		if t.video {
			mime = "video/vp8"
		}
		sent, ok = client.SendStamp(mime, payload)
	}
	if !ok || sent > now+int64(time.Second) || now-sent > int64(time.Minute) {
		t.noStamp.Add(1)
		if w.contains(now) {
			t.winPackets.Add(1)
		}
		return
	}
	lat := time.Duration(now - sent)
	t.all.Record(lat)
	ext := t.spanSeq.unwrap(seq)
	if w.contains(sent) {
		t.winPackets.Add(1)
		t.win.Record(lat)
		if !t.winSpanStarted {
			t.winSpanStarted, t.winLo, t.winHi = true, ext, ext
		}
		t.winLo, t.winHi = min(t.winLo, ext), max(t.winHi, ext)
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

// onFramePacket follows the video frames (rxMode.frames): frames shown,
// freezes, and the keyframe requests a browser would send.
func (t *trackStats) onFramePacket(b []byte, seq uint16, marker bool, payload []byte, now int64, w *window) {
	start, key := vp8Start(payload)
	if key {
		t.keyframeSize(payload, now)
	}
	ts := binary.BigEndian.Uint32(b[4:8])
	late := t.ft.late
	shown := t.ft.onPacket(packetInfo{seq: seq, ts: ts, start: start, key: key, marker: marker, padding: len(payload) == 0})
	if t.ft.late != late {
		t.late.Add(1)
	}
	if shown > 0 {
		prev := t.lastShown.Load()
		ws, we := w.start.Load(), w.end.Load()
		if f := freezeOverlap(prev, now, ws, we); f > 0 {
			t.winFreeze.Add(f)
			t.freezeSpans = append(t.freezeSpans, [2]int64{max(prev, ws), min(now, we)})
		}
		if now >= ws && now < we {
			t.winShown.Add(uint64(shown))
		}
		t.lastShown.Store(now)
		if prev == 0 {
			t.firstFrameAt.Store(now)
			t.viewer.frameArrived(now)
		}
	}
	if t.mode.keyframeRequests && t.kp.onPacket(now, ts, key, shown) && t.sendPLI != nil {
		if t.sendPLI() == nil {
			t.plis.Add(1)
			if w.contains(now) {
				t.winPLIs.Add(1)
			}
		}
	}
}

// freezeIn is the part of the window [ws, we) spent in freezes, as seen at
// now (after the window): the freezes between shown frames so far, and the
// gap since the last one when it is already longer than freezeThreshold.
// Call it once the track's reader has stopped.
func (t *trackStats) freezeIn(now, ws, we int64) time.Duration {
	return time.Duration(t.winFreeze.Load() + freezeOverlap(t.lastShown.Load(), now, ws, we))
}

// winSpan is how many packets the server sent of the window's: the span
// of their sequence numbers (0 when none came). Call it once the reader
// has stopped.
func (t *trackStats) winSpan() uint64 {
	if !t.winSpanStarted {
		return 0
	}
	return uint64(t.winHi - t.winLo + 1)
}

// keyframeSize records the size of a keyframe starting in payload when it
// differs from the last one.
func (t *trackStats) keyframeSize(payload []byte, now int64) {
	off, ok := vp8DescriptorLen(payload)
	if !ok {
		return
	}
	w, h, ok := vp8KeyframeSize(payload[off:])
	if !ok {
		return
	}
	if n := len(t.sizes); n > 0 && t.sizes[n-1].Width == w && t.sizes[n-1].Height == h {
		return
	}
	t.sizes = append(t.sizes, sizeEvent{AtNS: now, Width: w, Height: h})
}

// freezeSpansIn is the window's freezes as freezeIn counts them, as spans.
// Call it once the track's reader has stopped.
func (t *trackStats) freezeSpansIn(now, ws, we int64) [][2]int64 {
	out := slices.Clone(t.freezeSpans)
	last := t.lastShown.Load()
	if f := freezeOverlap(last, now, ws, we); f > 0 {
		out = append(out, [2]int64{max(last, ws), min(now, we)})
	}
	return out
}

// vp8DescriptorLen is the length of a VP8 payload descriptor (RFC 7741
// 4.2).
func vp8DescriptorLen(p []byte) (int, bool) {
	if len(p) < 1 {
		return 0, false
	}
	off := 1
	if p[0]&0x80 != 0 { // X
		if len(p) < 2 {
			return 0, false
		}
		x := p[1]
		off = 2
		if x&0x80 != 0 { // I: 7 or 15-bit picture id
			if len(p) < 3 {
				return 0, false
			}
			off++
			if p[2]&0x80 != 0 {
				off++
			}
		}
		if x&0x40 != 0 { // L
			off++
		}
		if x&0x30 != 0 { // T or K
			off++
		}
	}
	return off, off < len(p)
}

// vp8Start reads the VP8 payload descriptor (RFC 7741 4.2): whether the
// packet starts a frame (S=1, partition 0), and then whether that frame is
// a keyframe (payload header P=0).
func vp8Start(p []byte) (start, key bool) {
	if len(p) < 1 || p[0]&0x10 == 0 || p[0]&0x07 != 0 {
		return false, false
	}
	off, ok := vp8DescriptorLen(p)
	if !ok {
		return false, false
	}
	return true, p[off]&0x01 == 0
}
