package client

// Received tracks: one goroutine per remote track counts packets and bytes,
// detects keyframes and records latency from the embedded send timestamp.

import (
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/internal/codec"
)

// Send timestamps further from now than this are not samples (the bytes are
// media that does not carry one).
const (
	maxLatency    = 5 * time.Minute
	maxClockAhead = time.Second
)

// RemoteTrack is one track received on a PeerConnection. Its fields are set
// when the track arrives and never change; the methods are safe for
// concurrent use.
type RemoteTrack struct {
	Kind     string // "audio" or "video"
	Codec    string // MIME type, e.g. "video/VP8"
	StreamID string // msid stream id: the publisher's identity (Track.Participant)
	TrackID  string // msid track id: the room's track id (Track.ID)
	Mid      string // the transceiver's mid on the subscriber PC
	SSRC     uint32 // the media SSRC the server sends it with

	pc    *webrtc.PeerConnection
	track *webrtc.TrackRemote
	ended chan struct{}

	mu            sync.Mutex
	packets       int
	bytes         int
	rtx           int
	first, last   time.Time
	firstKeyframe bool
	firstPayload  []byte
	keyframes     int
	lastKeyTS     uint32
	haveKeyTS     bool
	hist          LatencyHistogram
	recent        []time.Duration // ring of the last recentWindow samples
	recentNext    int
	// The newest packet's sequence number and timestamp, and the
	// largest forward steps between two packets in a row (Steps).
	lastSeq    uint16
	lastTS     uint32
	maxSeqStep int
	maxTSStep  int64
}

// Steps returns the largest steps seen between two packets in a row
// (retransmissions aside): forward of the sequence number (1 for a stream
// with no loss), and either way of the RTP timestamp between those. A new source whose numbers
// were not made to continue the old one's shows a step far larger.
func (t *RemoteTrack) Steps() (seq int, ts int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.maxSeqStep, t.maxTSStep
}

// Packets is the number of RTP packets read (retransmissions included).
func (t *RemoteTrack) Packets() int { t.mu.Lock(); defer t.mu.Unlock(); return t.packets }

// Bytes is the number of RTP payload bytes read.
func (t *RemoteTrack) Bytes() int { t.mu.Lock(); defer t.mu.Unlock(); return t.bytes }

// RTXPackets is the number of packets that arrived as RTX retransmissions.
func (t *RemoteTrack) RTXPackets() int { t.mu.Lock(); defer t.mu.Unlock(); return t.rtx }

// FirstPacketAt is when the first packet was read (zero before).
func (t *RemoteTrack) FirstPacketAt() time.Time { t.mu.Lock(); defer t.mu.Unlock(); return t.first }

// LastPacketAt is when the latest packet was read (zero before).
func (t *RemoteTrack) LastPacketAt() time.Time { t.mu.Lock(); defer t.mu.Unlock(); return t.last }

// FirstPayload returns a copy of the first packet's payload (nil before).
func (t *RemoteTrack) FirstPayload() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.firstPayload...)
}

// FirstFrameKeyframe reports whether the first packet received starts a
// keyframe (VP8: S=1, PID=0 and P=0; VP9: B=1, P=0; H.264: IDR or SPS).
// Always false for audio.
func (t *RemoteTrack) FirstFrameKeyframe() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstKeyframe
}

// Keyframes is the number of keyframes whose start was received (counted
// once per RTP timestamp).
func (t *RemoteTrack) Keyframes() int { t.mu.Lock(); defer t.mu.Unlock(); return t.keyframes }

// Latency returns a copy of the end-to-end latency histogram of the packets
// that carried a send timestamp (SyntheticPublisher's do).
func (t *RemoteTrack) Latency() *LatencyHistogram {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.hist
	return &h
}

// Latencies returns the latest latency samples (at most 4096), oldest first.
func (t *RemoteTrack) Latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.recent) < recentWindow {
		return append([]time.Duration(nil), t.recent...)
	}
	out := make([]time.Duration, 0, recentWindow)
	out = append(out, t.recent[t.recentNext:]...)
	return append(out, t.recent[:t.recentNext]...)
}

// Ended is closed when reading the track stops: the sender removed it in a
// renegotiation, or the PeerConnection closed.
func (t *RemoteTrack) Ended() <-chan struct{} { return t.ended }

// IsEnded reports whether Ended is closed.
func (t *RemoteTrack) IsEnded() bool {
	select {
	case <-t.ended:
		return true
	default:
		return false
	}
}

// SendPLI writes a Picture Loss Indication for this track's SSRC on its
// PeerConnection.
func (t *RemoteTrack) SendPLI() error {
	return t.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: t.SSRC}})
}

// Remote returns pion's track (for stats or anything not covered here).
func (t *RemoteTrack) Remote() *webrtc.TrackRemote { return t.track }

func (t *RemoteTrack) onPacket(p *rtp.Packet, isRTX bool, now time.Time) {
	key := t.Kind == "video" && isKeyframeStart(t.Codec, p.Payload)
	lat, hasLat := sendTimestamp(t.Codec, p.Payload, now)

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.packets == 0 {
		t.first = now
		t.firstKeyframe = key
		t.firstPayload = append([]byte(nil), p.Payload...)
	}
	t.packets++
	t.bytes += len(p.Payload)
	t.last = now
	if isRTX {
		t.rtx++
	} else {
		if t.packets > 1 {
			if d := int(int16(p.SequenceNumber - t.lastSeq)); d > 0 {
				t.maxSeqStep = max(t.maxSeqStep, d)
				step := int64(int32(p.Timestamp - t.lastTS))
				t.maxTSStep = max(t.maxTSStep, step, -step)
			}
		}
		if t.packets == 1 || int16(p.SequenceNumber-t.lastSeq) > 0 {
			t.lastSeq, t.lastTS = p.SequenceNumber, p.Timestamp
		}
	}
	if key && (!t.haveKeyTS || p.Timestamp != t.lastKeyTS) {
		t.keyframes++
		t.lastKeyTS, t.haveKeyTS = p.Timestamp, true
	}
	if hasLat {
		t.hist.Record(lat)
		if len(t.recent) < recentWindow {
			t.recent = append(t.recent, lat)
		} else {
			t.recent[t.recentNext] = lat
			t.recentNext = (t.recentNext + 1) % recentWindow
		}
	}
}

// readLoop reads the track until it ends.
func (t *RemoteTrack) readLoop() {
	defer close(t.ended)
	buf := make([]byte, 1600)
	var p rtp.Packet
	for {
		n, attr, err := t.track.Read(buf)
		if err != nil {
			return
		}
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		isRTX := attr != nil && attr.Get(webrtc.AttributeRtxSsrc) != nil
		t.onPacket(&p, isRTX, time.Now())
	}
}

// trackSet holds the remote tracks of a client (or of a test's PC).
type trackSet struct {
	mu     sync.Mutex
	tracks []*RemoteTrack
	wake   chan struct{}
}

func newTrackSet() *trackSet { return &trackSet{wake: make(chan struct{})} }

func (s *trackSet) add(t *RemoteTrack) {
	s.mu.Lock()
	s.tracks = append(s.tracks, t)
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

func (s *trackSet) snapshot() []*RemoteTrack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*RemoteTrack(nil), s.tracks...)
}

// wait returns the first track (in arrival order, ended ones included) of
// that kind ("" = any) for which match is true (nil = any). match runs
// without s.mu held (pion's OnTrack, which adds tracks, must not wait for
// it).
func (s *trackSet) wait(ctx context.Context, kind string, match func(*RemoteTrack) bool, closed <-chan struct{}) (*RemoteTrack, error) {
	for {
		s.mu.Lock()
		tracks, wake := s.tracks, s.wake // add only appends: the snapshot stays valid
		s.mu.Unlock()
		for _, t := range tracks {
			if (kind == "" || t.Kind == kind) && (match == nil || match(t)) {
				return t, nil
			}
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-closed:
			return nil, ErrClosed
		}
	}
}

// newRemoteTrack describes a track that pion's OnTrack reported.
func newRemoteTrack(pc *webrtc.PeerConnection, track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) *RemoteTrack {
	rt := &RemoteTrack{
		Kind:     track.Kind().String(),
		Codec:    track.Codec().MimeType,
		StreamID: track.StreamID(),
		TrackID:  track.ID(),
		SSRC:     uint32(track.SSRC()),
		pc:       pc,
		track:    track,
		ended:    make(chan struct{}),
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == receiver {
			rt.Mid = tr.Mid()
			break
		}
	}
	return rt
}

// isKeyframeStart reports whether an RTP payload of that codec starts a
// keyframe.
func isKeyframeStart(mime string, b []byte) bool { return codec.KeyframeStart(mime, b) }

// SendStamp returns the send time (Unix nanoseconds) SyntheticPublisher
// embeds in a VP8 or Opus payload.
func SendStamp(mime string, b []byte) (int64, bool) {
	off := 0
	switch strings.ToLower(mime) {
	case "audio/opus":
	case "video/vp8":
		o, start, ok := vp8Descriptor(b)
		if !ok {
			return 0, false
		}
		off = o
		if start {
			off += vp8HeaderLen(b[off:])
		}
	default:
		return 0, false
	}
	if len(b) < off+8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b[off : off+8])), true
}

// vp8Descriptor parses the VP8 payload descriptor (RFC 7741 4.2) and returns
// the payload header offset and whether this packet starts partition 0 of a
// frame (S=1, PID=0).
func vp8Descriptor(b []byte) (off int, start bool, ok bool) {
	if len(b) < 1 {
		return 0, false, false
	}
	start = b[0]&0x10 != 0 && b[0]&0x07 == 0
	off = 1
	if b[0]&0x80 != 0 { // X
		if len(b) < 2 {
			return 0, false, false
		}
		x := b[1]
		off = 2
		if x&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(b) < off+1 {
				return 0, false, false
			}
			if b[off]&0x80 != 0 {
				off += 2
			} else {
				off++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			off++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX
			off++
		}
	}
	if off > len(b) {
		return 0, false, false
	}
	return off, start, true
}

// sendTimestamp reads the 8-byte big-endian UnixNano send time that
// SyntheticPublisher embeds: for VP8 after the payload descriptor (and the
// VP8 payload header in a frame's first packet), for Opus at the start of the
// payload. It returns now minus that time when the value is plausible.
func sendTimestamp(mime string, b []byte, now time.Time) (time.Duration, bool) {
	sent, ok := SendStamp(mime, b)
	if !ok {
		return 0, false
	}
	d := now.Sub(time.Unix(0, sent))
	if d < -maxClockAhead || d > maxLatency {
		return 0, false
	}
	return max(d, 0), true
}

// vp8HeaderLen is the VP8 payload header's length: 10 bytes on a keyframe
// (frame tag, start code, dimensions), 3 otherwise.
func vp8HeaderLen(b []byte) int {
	if len(b) > 0 && b[0]&0x01 == 0 {
		return vp8KeyHeaderLen
	}
	return vp8DeltaHeaderLen
}
