package bench

// The lab's publisher: VP8 a browser can decode, unlike client's
// SyntheticPublisher, whose frames are a valid VP8 header followed by filler
// (libvpx refuses the delta frames, and Chromium then asks for a keyframe
// five times a second; see docs/bench.md). Each frame here starts with a
// real encoded frame from clip.ivf, played in order from its keyframe, and
// is padded with zeros to the size the asked bit rate needs: a VP8 frame's
// last partition runs to the end of the data, and libvpx's arithmetic
// decoder never reads past what the encoder flushed, so the padding is
// ignored. Every packet ends with the 8-byte send time (big-endian
// UnixNano), also padding from the decoder's point of view.
//
// clip.ivf was made with:
//
//	ffmpeg -f lavfi -i "color=c=0x2a4d69:s=640x480:r=30,drawbox=x='mod(t*240\,600)':y='200+mod(t*90\,80)':w=40:h=40:c=0xffcc00:t=fill" \
//	  -frames:v 150 -c:v libvpx -g 1000 -keyint_min 1000 -b:v 150k -deadline good -cpu-used 0 \
//	  -auto-alt-ref 0 -lag-in-frames 0 clip.ivf
//
// (a yellow square moving over a flat background, one keyframe then 149
// delta frames each referring to the one before, all under 1 KB so that
// the real frame always fits in a frame's first packet, before any stamp).

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
)

//go:embed clip.ivf
var clipIVF []byte

const (
	clipMaxPayload   = 1200 // RTP payload bytes per video packet, as client's SyntheticPublisher
	vp8DescLen       = 4    // X=1, I=1, 15-bit picture id
	stampLen         = 8
	clipRoom         = clipMaxPayload - vp8DescLen - stampLen // frame bytes per packet
	clipKeyInterval  = 2 * time.Second                        // as SyntheticPublisher
	clipKeyFactor    = 4                                      // a keyframe is this many delta frames
	clipAudioPayload = 100                                    // bytes per 20 ms Opus packet
	opusPacketTime   = 20 * time.Millisecond
	opusTS           = 960 // 20 ms at 48 kHz
	// opusSilenceTOC is an Opus TOC byte (CELT fullband 20 ms, one frame):
	// the rest of the payload is that frame's data, which decodes to noise
	// at worst; nothing measures the audio's content.
	opusSilenceTOC = 0xf8
)

// ivfClip is a VP8 clip: frames[0] is a keyframe, every later frame a delta
// frame referring to the one before.
type ivfClip struct {
	frames        [][]byte
	width, height int
}

// parseIVF reads an IVF file of VP8 frames for the clip publisher; every
// frame must fit in one packet's room.
func parseIVF(b []byte) (*ivfClip, error) {
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		return nil, errors.New("ivf: not an IVF file")
	}
	if fourcc := string(b[8:12]); fourcc != "VP80" {
		return nil, fmt.Errorf("ivf: codec %q, want VP80", fourcc)
	}
	hdr := int(binary.LittleEndian.Uint16(b[6:8]))
	if hdr < 32 || hdr > len(b) {
		return nil, fmt.Errorf("ivf: header length %d", hdr)
	}
	c := &ivfClip{width: int(binary.LittleEndian.Uint16(b[12:14])), height: int(binary.LittleEndian.Uint16(b[14:16]))}
	for off := hdr; off < len(b); {
		if len(b)-off < 12 {
			return nil, fmt.Errorf("ivf: truncated frame header at %d", off)
		}
		n := int(binary.LittleEndian.Uint32(b[off : off+4]))
		off += 12
		if n < 3 || n > len(b)-off {
			return nil, fmt.Errorf("ivf: frame %d: size %d", len(c.frames), n)
		}
		f := b[off : off+n]
		off += n
		key := f[0]&1 == 0
		switch {
		case len(c.frames) == 0 && !key:
			return nil, errors.New("ivf: the first frame is not a keyframe")
		case len(c.frames) > 0 && key:
			return nil, fmt.Errorf("ivf: frame %d is a keyframe; want one keyframe, then delta frames", len(c.frames))
		case n > clipRoom:
			return nil, fmt.Errorf("ivf: frame %d is %d bytes, more than the %d of a packet", len(c.frames), n, clipRoom)
		}
		c.frames = append(c.frames, f)
	}
	if len(c.frames) == 0 {
		return nil, errors.New("ivf: no frames")
	}
	return c, nil
}

// trailerStamp is the send time at the end of a clip publisher's payload.
func trailerStamp(payload []byte) (int64, bool) {
	if len(payload) < stampLen {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(payload[len(payload)-stampLen:])), true
}

// clipFrameSizes are the delta and key frame sizes (bytes, stamps included)
// that make bitrate at fps with a keyframe every clipKeyInterval.
func clipFrameSizes(bitrate, fps int) (delta, key int) {
	perInterval := max(clipKeyInterval.Seconds()*float64(fps), 1)
	delta = int(float64(bitrate) / 8 * clipKeyInterval.Seconds() / (perInterval - 1 + clipKeyFactor))
	return delta, delta * clipKeyFactor
}

// packetize splits one frame into RTP payloads appended to out: the real
// frame, then zeros up to size bytes, cut into packets filled to clipRoom
// (so the real frame, at most clipRoom, is whole in the first), each with
// the VP8 descriptor in front and the stamp at the end.
func packetize(out [][]byte, frame []byte, size int, picID uint16, stamp int64) [][]byte {
	size = max(size, len(frame))
	for off := 0; off < size; off += clipRoom {
		n := min(clipRoom, size-off)
		b := make([]byte, 0, vp8DescLen+n+stampLen)
		d0 := byte(0x80) // X
		if off == 0 {
			d0 |= 0x10 // S, partition 0
		}
		b = append(b, d0, 0x80, 0x80|byte(picID>>8), byte(picID))
		if off < len(frame) {
			b = append(b, frame[off:min(len(frame), off+n)]...)
		}
		b = append(b, make([]byte, vp8DescLen+n-len(b))...)
		b = binary.BigEndian.AppendUint64(b, uint64(stamp))
		out = append(out, b)
	}
	return out
}

// feedback is what the publisher hears back from the server: counters only
// go up, except rrMaxFractionLost (reset at the window's start) and the
// last values.
type feedback struct {
	nackPackets, nackedSeqs atomic.Int64
	plis, firs              atomic.Int64
	rembs                   atomic.Int64
	rembLastBps             atomic.Uint64 // float64 bits
	twcc                    atomic.Int64
	rrs                     atomic.Int64  // receiver reports about the video
	rrMaxFractionLost       atomic.Uint32 // in 1/256
	rrTotalLost             atomic.Int64  // the last cumulative count
}

// clipTrack is one track of a clipPublisher. It takes its sender's RTCP
// (client.Publish hands it over) and records the SSRC it was bound with.
type clipTrack struct {
	*webrtc.TrackLocalStaticRTP
	p     *clipPublisher
	video bool
	ssrc  atomic.Uint32
}

// Bind records the SSRC the track sends with, for its receiver reports.
func (t *clipTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	t.ssrc.Store(uint32(ctx.SSRC()))
	return t.TrackLocalStaticRTP.Bind(ctx)
}

// HandleRTCP counts the feedback and turns a PLI or FIR on the video into a
// keyframe on the next frame.
func (t *clipTrack) HandleRTCP(pkts []rtcp.Packet) {
	if t.p.fb.count(pkts, t.video, t.ssrc.Load()) && t.video {
		t.p.keyframeWanted.Store(true)
	}
}

// layerFeedback counts the feedback of one simulcast layer (whose
// client.LayerTrack turns a PLI into its own keyframe request). ssrc is set
// once the layer is negotiated.
type layerFeedback struct {
	fb   *feedback
	ssrc atomic.Uint32
}

func (l *layerFeedback) HandleRTCP(pkts []rtcp.Packet) { l.fb.count(pkts, true, l.ssrc.Load()) }

// count counts pkts; video reports are those about ssrc. It reports
// whether a PLI or FIR was among them.
func (fb *feedback) count(pkts []rtcp.Packet, video bool, ssrc uint32) (keyframe bool) {
	for _, pkt := range pkts {
		switch p := pkt.(type) {
		case *rtcp.PictureLossIndication:
			fb.plis.Add(1)
			keyframe = true
		case *rtcp.FullIntraRequest:
			fb.firs.Add(1)
			keyframe = true
		case *rtcp.TransportLayerNack:
			fb.nackPackets.Add(1)
			for _, pair := range p.Nacks {
				fb.nackedSeqs.Add(int64(len(pair.PacketList())))
			}
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			fb.rembs.Add(1)
			fb.rembLastBps.Store(math.Float64bits(float64(p.Bitrate)))
		case *rtcp.TransportLayerCC:
			fb.twcc.Add(1)
		case *rtcp.ReceiverReport:
			fb.receptionReports(p.Reports, video, ssrc)
		case *rtcp.SenderReport:
			fb.receptionReports(p.Reports, video, ssrc)
		}
	}
	return keyframe
}

func (fb *feedback) receptionReports(rs []rtcp.ReceptionReport, video bool, ssrc uint32) {
	if !video {
		return
	}
	for _, r := range rs {
		if r.SSRC != ssrc || ssrc == 0 {
			continue
		}
		fb.rrs.Add(1)
		fb.rrTotalLost.Store(int64(r.TotalLost))
		for {
			m := fb.rrMaxFractionLost.Load()
			if uint32(r.FractionLost) <= m || fb.rrMaxFractionLost.CompareAndSwap(m, uint32(r.FractionLost)) {
				break
			}
		}
	}
}

// clipLayer is one encoded video stream of a clipPublisher: its only one,
// or one simulcast layer (simulcast.go) with a clip of its own size.
type clipLayer struct {
	rid     string // "" without simulcast
	clip    *ivfClip
	bitrate int
	write   func(*rtp.Packet) error
	// active reports whether the server needs the layer (publisher.layers);
	// nil: always. keyWanted reports (and clears) a keyframe request.
	active    func() bool
	keyWanted func() bool
	fb        *layerFeedback // simulcast: its RTCP counts
	dropped   func() int64   // simulcast: what the layer track dropped; nil: none

	packets, winPackets   atomic.Int64
	winKeyframes, winKeyR atomic.Int64
	winActiveNS           atomic.Int64 // time of the window it was active (sent), up to activeSince
	activeSince           atomic.Int64 // UnixNano it became active; 0 while inactive

	// owned by videoLoop
	seq       uint16
	ts0       uint32
	picID     uint16
	lastKey   time.Time
	next      int
	wasActive bool
}

// clipPublisher sends the clip as VP8 (and Opus, unless audio is off) on
// two tracks, counting what it sends by send time (window) and the feedback
// it receives. With simulcast its video is three layers of three clips
// (simulcast.go). Its goroutines (one per track) run between start and
// stop.
type clipPublisher struct {
	fps          int
	win          *window
	video, audio *clipTrack             // video: nil with simulcast
	sim          *client.SimulcastTrack // nil without
	layers       []*clipLayer

	keyframeWanted atomic.Bool
	fb             feedback

	sent, sentVideo, sentAudio atomic.Int64 // every packet
	winVideo, winAudio         atomic.Int64 // packets whose send time is in the window
	keyframes, keyOnRequest    atomic.Int64
	winKeyframes, winKeyOnReq  atomic.Int64 // in the window (by send time)

	mu      sync.Mutex
	started bool
	stopped bool
	stopc   chan struct{}
	wg      sync.WaitGroup
}

func newClipPublisher(streamID string, fps, bitrate int, audio bool, w *window) (*clipPublisher, error) {
	clip, err := parseIVF(clipIVF)
	if err != nil {
		return nil, err
	}
	p := &clipPublisher{fps: fps, win: w, stopc: make(chan struct{})}
	vt, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", streamID)
	if err != nil {
		return nil, err
	}
	p.video = &clipTrack{TrackLocalStaticRTP: vt, p: p, video: true}
	p.layers = []*clipLayer{{
		clip: clip, bitrate: bitrate, write: p.video.WriteRTP,
		keyWanted: func() bool { return p.keyframeWanted.Swap(false) },
	}}
	if err := p.addAudio(streamID, audio); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *clipPublisher) addAudio(streamID string, audio bool) error {
	if !audio {
		return nil
	}
	at, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", streamID)
	if err != nil {
		return err
	}
	p.audio = &clipTrack{TrackLocalStaticRTP: at, p: p}
	return nil
}

// tracks are the tracks to publish, video first (with simulcast: every
// layer, lowest first).
func (p *clipPublisher) tracks() []webrtc.TrackLocal {
	var out []webrtc.TrackLocal
	if p.sim != nil {
		out = p.sim.Tracks()
	} else {
		out = []webrtc.TrackLocal{p.video}
	}
	if p.audio != nil {
		out = append(out, p.audio)
	}
	return out
}

func (p *clipPublisher) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.stopped {
		return
	}
	p.started = true
	p.wg.Go(p.videoLoop)
	if p.audio != nil {
		p.wg.Go(p.audioLoop)
	}
}

// stop ends the sending goroutines and waits for them. Idempotent.
func (p *clipPublisher) stop() {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.stopc)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *clipPublisher) videoLoop() {
	tick := time.NewTicker(time.Second / time.Duration(p.fps))
	defer tick.Stop()
	start := time.Now()
	for _, l := range p.layers {
		l.seq, l.ts0, l.picID = uint16(rand.Uint32()), rand.Uint32(), uint16(rand.Uint32())&0x7fff
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2}}
	var payloads [][]byte
	for {
		now := time.Now()
		for _, l := range p.layers {
			payloads = p.sendFrame(l, pkt, payloads[:0], now, start)
		}
		select {
		case <-p.stopc:
			p.closeActive(time.Now())
			return
		case <-tick.C:
		}
	}
}

// sendFrame sends the layer's next frame (a keyframe on request, every
// clipKeyInterval, at the clip's end and when the layer comes back), or
// nothing while the layer is not needed.
func (p *clipPublisher) sendFrame(l *clipLayer, pkt *rtp.Packet, payloads [][]byte, now, start time.Time) [][]byte {
	active := l.active == nil || l.active()
	p.trackActive(l, active, now)
	if !active {
		l.keyWanted() // a request for a stopped layer is moot
		return payloads
	}
	delta, key := clipFrameSizes(l.bitrate, p.fps)
	requested := l.keyWanted()
	isKey := l.lastKey.IsZero() || requested || now.Sub(l.lastKey) >= clipKeyInterval || l.next >= len(l.clip.frames)
	size := delta
	stamp := now.UnixNano()
	inWin := p.win.contains(stamp)
	if isKey {
		l.next, size, l.lastKey = 0, key, now
		p.keyframes.Add(1)
		if requested {
			p.keyOnRequest.Add(1)
		}
		if inWin {
			p.winKeyframes.Add(1)
			l.winKeyframes.Add(1)
			if requested {
				p.winKeyOnReq.Add(1)
				l.winKeyR.Add(1)
			}
		}
	}
	payloads = packetize(payloads, l.clip.frames[l.next], size, l.picID, stamp)
	l.next++
	l.picID = (l.picID + 1) & 0x7fff
	pkt.Timestamp = l.ts0 + uint32(now.Sub(start)*90000/time.Second)
	for i, b := range payloads {
		pkt.SequenceNumber = l.seq
		pkt.Marker = i == len(payloads)-1
		pkt.Payload = b
		pkt.Extensions, pkt.Extension = nil, false
		l.seq++
		_ = l.write(pkt) // an error: a binding whose PeerConnection went away
		p.sent.Add(1)
		p.sentVideo.Add(1)
		l.packets.Add(1)
		if inWin {
			p.winVideo.Add(1)
			l.winPackets.Add(1)
		}
	}
	return payloads
}

// trackActive accounts for the time of the window the layer was sent.
func (p *clipPublisher) trackActive(l *clipLayer, active bool, now time.Time) {
	ns := now.UnixNano()
	switch {
	case active && !l.wasActive:
		l.wasActive = true
		l.activeSince.Store(ns)
		l.lastKey = time.Time{} // back: start with a keyframe
	case !active && l.wasActive:
		l.wasActive = false
		l.winActiveNS.Add(overlapNS(l.activeSince.Swap(0), ns, p.win))
	}
}

// activeInWindow is the time of the window the layer was sent, as seen at
// now.
func (l *clipLayer) activeInWindow(now int64, w *window) time.Duration {
	d := l.winActiveNS.Load()
	if since := l.activeSince.Load(); since != 0 {
		d += overlapNS(since, now, w)
	}
	return time.Duration(d)
}

// closeActive ends the layers' active spans at the loop's end.
func (p *clipPublisher) closeActive(now time.Time) {
	for _, l := range p.layers {
		p.trackActive(l, false, now)
	}
}

// overlapNS is how much of [from, to) lies in the window.
func overlapNS(from, to int64, w *window) int64 {
	ws, we := w.start.Load(), w.end.Load()
	return max(0, min(to, we)-max(from, ws))
}

func (p *clipPublisher) audioLoop() {
	tick := time.NewTicker(opusPacketTime)
	defer tick.Stop()
	seq := uint16(rand.Uint32())
	ts := rand.Uint32()
	buf := make([]byte, clipAudioPayload)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true}}
	for {
		stamp := time.Now().UnixNano()
		clear(buf)
		buf[0] = opusSilenceTOC
		binary.BigEndian.PutUint64(buf[len(buf)-stampLen:], uint64(stamp))
		pkt.SequenceNumber, pkt.Timestamp, pkt.Payload = seq, ts, buf
		_ = p.audio.WriteRTP(pkt)
		pkt.Marker = false
		p.sent.Add(1)
		p.sentAudio.Add(1)
		if p.win.contains(stamp) {
			p.winAudio.Add(1)
		}
		seq++
		ts += opusTS
		select {
		case <-p.stopc:
			return
		case <-tick.C:
		}
	}
}
