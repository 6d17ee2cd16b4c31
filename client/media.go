package client

// SyntheticPublisher: a VP8 + Opus source that behaves like a real encoder
// (frame sizes, keyframes on a timer and on PLI/FIR, correct VP8
// packetization) and embeds a send timestamp in every packet.

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

const (
	vp8DescriptorLen  = 4  // X=1, I=1 with a 15-bit picture id
	vp8KeyHeaderLen   = 10 // frame tag, start code, width, height
	vp8DeltaHeaderLen = 3  // frame tag
	sendStampLen      = 8
	opusFrame         = 20 * time.Millisecond
	opusSamples       = 960 // 20 ms at 48 kHz
	keyframeFactor    = 4   // a keyframe is this many delta frames
)

// PublisherOptions configures a SyntheticPublisher. Zero values take the
// defaults.
type PublisherOptions struct {
	StreamID     string // msid stream id; default "synthetic-<random hex>"
	VideoTrackID string // default "video"
	AudioTrackID string // default "audio"
	NoVideo      bool   // no video track
	NoAudio      bool   // no audio track

	FPS              int           // default 30
	BitrateBps       int           // total video bitrate, default 500_000
	KeyframeInterval time.Duration // default 2s; negative: only the first keyframe and those asked for by PLI/FIR
	MaxPayload       int           // RTP payload bytes per video packet, default 1200
	AudioPayload     int           // bytes per Opus packet, default 100
	Width, Height    int           // written in keyframe headers, default 640x480
	// DropRatio loses this share of packets before they are sent (a lossy
	// uplink): they are never retransmitted, since the sender never had them.
	DropRatio float64
}

// SyntheticTrack is one of a SyntheticPublisher's tracks: a
// TrackLocalStaticRTP that also takes the RTCP its sender receives.
// Client.Publish hands it over (see RTCPHandler); on a PeerConnection of
// your own, read the RTPSender's RTCP and pass it to HandleRTCP.
type SyntheticTrack struct {
	*webrtc.TrackLocalStaticRTP
	p     *SyntheticPublisher
	video bool
}

// HandleRTCP counts PLIs, FIRs and NACKs and turns PLI/FIR on the video
// track into a keyframe on the next frame.
func (t *SyntheticTrack) HandleRTCP(pkts []rtcp.Packet) {
	for _, pkt := range pkts {
		switch pkt.(type) {
		case *rtcp.PictureLossIndication:
			t.p.plis.Add(1)
			if t.video {
				t.p.keyframeWanted.Store(true)
			}
		case *rtcp.FullIntraRequest:
			t.p.firs.Add(1)
			if t.video {
				t.p.keyframeWanted.Store(true)
			}
		case *rtcp.TransportLayerNack:
			t.p.nacks.Add(1)
		}
	}
}

// SyntheticPublisher generates media on its tracks between Start and Stop.
type SyntheticPublisher struct {
	opts  PublisherOptions
	video *SyntheticTrack
	audio *SyntheticTrack

	mu      sync.Mutex
	started bool
	stopped bool
	stop    chan struct{}
	wg      sync.WaitGroup

	keyframeWanted atomic.Bool
	keyframes      atomic.Int64
	plis, firs     atomic.Int64
	nacks          atomic.Int64
	packets        atomic.Int64
	bytes          atomic.Int64
}

// NewSyntheticPublisher makes a VP8 video track and an Opus audio track
// (unless NoVideo / NoAudio).
func NewSyntheticPublisher(opts PublisherOptions) (*SyntheticPublisher, error) {
	if opts.StreamID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		opts.StreamID = "synthetic-" + hex.EncodeToString(b[:])
	}
	if opts.VideoTrackID == "" {
		opts.VideoTrackID = "video"
	}
	if opts.AudioTrackID == "" {
		opts.AudioTrackID = "audio"
	}
	if opts.FPS <= 0 {
		opts.FPS = 30
	}
	if opts.BitrateBps <= 0 {
		opts.BitrateBps = 500_000
	}
	if opts.KeyframeInterval == 0 {
		opts.KeyframeInterval = 2 * time.Second
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 1200
	}
	opts.MaxPayload = max(opts.MaxPayload, vp8DescriptorLen+vp8KeyHeaderLen+sendStampLen+1)
	if opts.AudioPayload <= 0 {
		opts.AudioPayload = 100
	}
	opts.AudioPayload = max(opts.AudioPayload, sendStampLen)
	if opts.Width <= 0 || opts.Height <= 0 {
		opts.Width, opts.Height = 640, 480
	}

	p := &SyntheticPublisher{opts: opts, stop: make(chan struct{})}
	if !opts.NoVideo {
		t, err := webrtc.NewTrackLocalStaticRTP(
			webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, opts.VideoTrackID, opts.StreamID)
		if err != nil {
			return nil, err
		}
		p.video = &SyntheticTrack{TrackLocalStaticRTP: t, p: p, video: true}
	}
	if !opts.NoAudio {
		t, err := webrtc.NewTrackLocalStaticRTP(
			webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, opts.AudioTrackID, opts.StreamID)
		if err != nil {
			return nil, err
		}
		p.audio = &SyntheticTrack{TrackLocalStaticRTP: t, p: p}
	}
	return p, nil
}

// Tracks returns the tracks to publish: video first, then audio.
func (p *SyntheticPublisher) Tracks() []webrtc.TrackLocal {
	var out []webrtc.TrackLocal
	if p.video != nil {
		out = append(out, p.video)
	}
	if p.audio != nil {
		out = append(out, p.audio)
	}
	return out
}

// Video returns the video track (nil with NoVideo).
func (p *SyntheticPublisher) Video() *SyntheticTrack { return p.video }

// Audio returns the audio track (nil with NoAudio).
func (p *SyntheticPublisher) Audio() *SyntheticTrack { return p.audio }

// Start starts sending: the first video frame is a keyframe. Packets written
// before the tracks are bound to a negotiated sender are lost, as with a
// real encoder. Start after Stop does nothing.
func (p *SyntheticPublisher) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.stopped {
		return
	}
	p.started = true
	if p.video != nil {
		p.wg.Add(1)
		go p.videoLoop()
	}
	if p.audio != nil {
		p.wg.Add(1)
		go p.audioLoop()
	}
}

// Stop stops sending and waits for the sending goroutines. Idempotent.
func (p *SyntheticPublisher) Stop() {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.stop)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// RequestKeyframe makes the next video frame a keyframe.
func (p *SyntheticPublisher) RequestKeyframe() { p.keyframeWanted.Store(true) }

// KeyframesSent counts keyframes sent (the first frame included).
func (p *SyntheticPublisher) KeyframesSent() int { return int(p.keyframes.Load()) }

// PLIsReceived counts PLI packets received on either track's sender.
func (p *SyntheticPublisher) PLIsReceived() int { return int(p.plis.Load()) }

// FIRsReceived counts FIR packets received.
func (p *SyntheticPublisher) FIRsReceived() int { return int(p.firs.Load()) }

// NACKsReceived counts NACK packets (not sequence numbers) received.
func (p *SyntheticPublisher) NACKsReceived() int { return int(p.nacks.Load()) }

// PacketsSent counts RTP packets written (audio and video, not retransmissions).
func (p *SyntheticPublisher) PacketsSent() int { return int(p.packets.Load()) }

// BytesSent counts RTP payload bytes written.
func (p *SyntheticPublisher) BytesSent() int { return int(p.bytes.Load()) }

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// frameSizes returns the delta and key frame sizes (bytes) that make the
// configured bitrate with one keyframe per interval.
func (p *SyntheticPublisher) frameSizes() (delta, key int) {
	bytesPerSec := float64(p.opts.BitrateBps) / 8
	fps := float64(p.opts.FPS)
	if p.opts.KeyframeInterval <= 0 {
		delta = int(bytesPerSec / fps)
	} else {
		perInterval := p.opts.KeyframeInterval.Seconds() * fps // frames per keyframe interval
		if perInterval < 1 {
			perInterval = 1
		}
		delta = int(bytesPerSec * p.opts.KeyframeInterval.Seconds() / (perInterval - 1 + keyframeFactor))
	}
	delta = max(delta, vp8DeltaHeaderLen+sendStampLen)
	return delta, delta * keyframeFactor
}

func (p *SyntheticPublisher) videoLoop() {
	defer p.wg.Done()
	interval := time.Second / time.Duration(p.opts.FPS)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	delta, key := p.frameSizes()
	seq := uint16(randUint32())
	ts0 := randUint32()
	picID := uint16(randUint32()) & 0x7fff
	start := time.Now()
	lastKey := time.Time{}
	buf := make([]byte, p.opts.MaxPayload)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2}}

	for {
		now := time.Now()
		isKey := lastKey.IsZero() || p.keyframeWanted.Swap(false) ||
			(p.opts.KeyframeInterval > 0 && now.Sub(lastKey) >= p.opts.KeyframeInterval)
		size := delta
		if isKey {
			size = key
			lastKey = now
			p.keyframes.Add(1)
		}
		ts := ts0 + uint32(now.Sub(start)*90000/time.Second)
		p.sendFrame(pkt, buf, &seq, ts, picID, size, isKey)
		picID = (picID + 1) & 0x7fff

		select {
		case <-p.stop:
			return
		case <-ticker.C:
		}
	}
}

// sendFrame packetizes one frame of size bytes (after the descriptors) into
// packets of equal size, each: VP8 descriptor, [VP8 payload header], 8-byte
// send time, filler.
func (p *SyntheticPublisher) sendFrame(pkt *rtp.Packet, buf []byte, seq *uint16, ts uint32, picID uint16, size int, isKey bool) {
	hdrLen := vp8DeltaHeaderLen
	if isKey {
		hdrLen = vp8KeyHeaderLen
	}
	size = max(size, hdrLen+sendStampLen)
	room := p.opts.MaxPayload - vp8DescriptorLen - sendStampLen // frame bytes per packet besides the stamp
	frameBytes := size - sendStampLen                           // the first packet's stamp is part of size
	n := (frameBytes + room - 1) / room
	n = max(n, 1)
	chunk := (frameBytes + n - 1) / n

	remaining := frameBytes
	for i := 0; i < n; i++ {
		c := min(chunk, remaining)
		remaining -= c
		b := buf[:0]
		first := i == 0
		d0 := byte(0x80) // X
		if first {
			d0 |= 0x10 // S, PID 0
		}
		b = append(b, d0, 0x80, 0x80|byte(picID>>8), byte(picID))
		if first {
			c = max(c, hdrLen)
			b = appendVP8Header(b, isKey, size, p.opts.Width, p.opts.Height)
			c -= hdrLen
		}
		b = binary.BigEndian.AppendUint64(b, uint64(time.Now().UnixNano()))
		for j := 0; j < c; j++ {
			b = append(b, byte(j))
		}

		pkt.SequenceNumber = *seq
		pkt.Timestamp = ts
		pkt.Marker = i == n-1
		pkt.Payload = b
		*seq++
		if p.opts.DropRatio > 0 && mrand.Float64() < p.opts.DropRatio {
			continue
		}
		_ = p.video.WriteRTP(pkt) // errors: a binding whose PeerConnection went away
		p.packets.Add(1)
		p.bytes.Add(int64(len(b)))
	}
}

// appendVP8Header writes the VP8 payload header (RFC 7741 4.3): the 3-byte
// frame tag with P=0 on keyframes, P=1 otherwise, and on keyframes the start
// code and dimensions.
func appendVP8Header(b []byte, key bool, size, width, height int) []byte {
	firstPart := uint32(min(size/4, 0x7ffff))
	tag := firstPart<<5 | 1<<4 // show_frame, version 0
	if !key {
		tag |= 1 // P: inter frame
	}
	b = append(b, byte(tag), byte(tag>>8), byte(tag>>16))
	if key {
		b = append(b, 0x9d, 0x01, 0x2a)
		b = binary.LittleEndian.AppendUint16(b, uint16(width&0x3fff))
		b = binary.LittleEndian.AppendUint16(b, uint16(height&0x3fff))
	}
	return b
}

func (p *SyntheticPublisher) audioLoop() {
	defer p.wg.Done()
	ticker := time.NewTicker(opusFrame)
	defer ticker.Stop()
	seq := uint16(randUint32())
	ts := randUint32()
	buf := make([]byte, p.opts.AudioPayload)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true}}
	for {
		b := binary.BigEndian.AppendUint64(buf[:0], uint64(time.Now().UnixNano()))
		for len(b) < p.opts.AudioPayload {
			b = append(b, byte(len(b)))
		}
		pkt.SequenceNumber = seq
		pkt.Timestamp = ts
		pkt.Payload = b
		if p.opts.DropRatio == 0 || mrand.Float64() >= p.opts.DropRatio {
			_ = p.audio.WriteRTP(pkt)
		}
		pkt.Marker = false
		p.packets.Add(1)
		p.bytes.Add(int64(len(b)))
		seq++
		ts += opusSamples

		select {
		case <-p.stop:
			return
		case <-ticker.C:
		}
	}
}
