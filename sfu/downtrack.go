package sfu

import (
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaysfu/relayd/metrics"
)

// Queue sizes in packets, per writer (writer.go). A writer normally keeps
// up within a millisecond; the queue absorbs a keyframe burst (~50 packets
// at 1.5 Mbit/s) with room to spare. Past that the group is slow: drop
// video to the next keyframe rather than add latency.
const (
	videoQueueSize = 128
	audioQueueSize = 64
)

// A subscriber whose transport comes up starts from the newest keyframe in
// the up track's cache instead of waiting for a new one (a GOP cache, as
// RTMP servers keep), when that keyframe is at most replayMaxAge old and
// replayMaxPackets back: the first frame is then as fast as DTLS, where a
// keyframe request can wait out the 500 ms throttle. The bound on age
// bounds how far behind live the viewer starts (its jitter buffer then
// catches up); without such a keyframe the viewer waits for the next one,
// which is requested.
const (
	replayMaxAge     = int64(time.Second)
	replayMaxPackets = videoCacheSize / 2
)

// queue item flags
const (
	flagKeyframe = 1 << iota // first packet of a keyframe
	flagResync               // first packet after deliberate drops
)

type queueItem struct {
	ext     uint64
	arrival int64 // Now() at the reader; 0 for a packet replayed from the cache
	flags   uint8
	layer   uint8 // the simulcast layer's slot
}

// binding is what pion gives a track at Bind: where and as what to write.
type binding struct {
	ssrc   uint32
	pt     uint8
	twcc   uint8 // the transport-cc header extension's id; 0: not negotiated
	stream webrtc.TrackLocalWriter
}

// DownTrackParams lists a DownTrack's dependencies.
type DownTrackParams struct {
	Up       *UpTrack
	StreamID string // msid stream id: the publishing participant's identity
	// Notify, when set, gets the down track's own events (TrackLayer,
	// TrackBandwidth), from its writer's goroutine: it must not block.
	Notify func(Event)
	// bwe is the subscriber PC's estimator (bwe.go): packets carry its
	// transport-wide sequence numbers, its feedback is handed to it.
	bwe *bwe
	// direct is the subscriber PC's direct send path (directsend.go);
	// nil: pion's path and pion's sender reports.
	direct  *directSender
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// DownTrack sends one UpTrack to one subscriber's PeerConnection. It is a
// webrtc.TrackLocal of the subscriber PC and a member of one of the up
// track's writer groups (UpTrack.AddDownTrack, writer.go): that writer's
// goroutine reads each packet once for its group, and calls deliver, which
// rewrites it into the down track's own header. The writer owns the
// munger and the fields below it.
//
// Goroutines: rtcpLoop (started by AttachSender, or on the direct path
// when the PC's RTCP first reaches pion: rtcpreaders.go; ends when pion
// stops the RTPSender: RemoveTrack or the PeerConnection closing).
//
// Lifecycle: new -> bound (pion calls Bind after negotiation) -> ready
// (SetReady: the subscriber's transport is up; only then is anything
// written, starting from the newest cached keyframe) -> closed. A closed
// DownTrack cannot be reused.
type DownTrack struct {
	up       *UpTrack
	streamID string
	video    bool
	log      *slog.Logger

	mu        sync.Mutex
	bound     bool // guarded by mu
	connected bool // guarded by mu
	ready     atomic.Bool
	closed    atomic.Bool

	binding atomic.Pointer[binding]
	w       atomic.Pointer[writer] // set by UpTrack.AddDownTrack

	// Layer selection (downlayer.go): the adapter sets want, the writer
	// follows it and publishes the layer it forwards in curLayer.
	want     atomic.Uint32
	curLayer atomic.Int32
	demand   atomic.Int32 // the rank the settings ask for; -1: paused (dynacast.go)
	notify   func(Event)
	clock    int64 // the codec's clock rate
	bwe      *bwe  // nil: no estimate
	direct   *directSender
	rtcpOut  atomic.Pointer[webrtc.DTLSTransport] // with direct: where its sender reports go

	// Owned by the writer.
	started bool // something was written since ready (or a write failed)
	// After start replayed the cache up to skipThrough, queued packets up
	// to there are already sent.
	skipThrough uint64
	hasSkip     bool
	m           munger
	out         rtp.Header      // the header written: this subscriber's numbers
	ext         []rtp.Extension // the transport-cc extension, its payload twccBuf (made once per id)
	extID       uint8
	twccBuf     [2]byte
	skipLayer   uint8    // the layer skipThrough is of
	sel         layerSel // downlayer.go
	rep         reporter // with direct: its sender reports (report.go)
	wroteAt     int64    // Now() at the last write

	packetsOut, bytesOut           prometheus.Counter
	forwarded                      *atomic.Uint64 // Metrics.Forwarded
	dropWait, dropStale            prometheus.Counter
	dropNotReady                   prometheus.Counter
	latency                        prometheus.Histogram
	nackIn, rtxHit, rtxMiss, pliIn prometheus.Counter
	rtxBudget                      prometheus.Counter // refused by the retransmission budget
	rtxStale                       prometheus.Counter // refused: from before the subscriber's decoder restarted
	replayed                       prometheus.Counter
	probeBytes                     prometheus.Counter
	switches                       *prometheus.CounterVec
	pausedGauge                    prometheus.Gauge
	lastMarker                     bool // the last media packet written ended a frame (writer-owned)
}

// NewDownTrack makes a down track of p.Up. The caller adds it to a
// PeerConnection, calls AttachSender with the RTPSender, and adds it to the
// up track (UpTrack.AddDownTrack, which puts it on a writer).
func NewDownTrack(p DownTrackParams) *DownTrack {
	video := p.Up.Kind() == webrtc.RTPCodecTypeVideo
	kind := p.Up.Kind().String()
	m := p.Metrics
	d := &DownTrack{
		up:           p.Up,
		streamID:     p.StreamID,
		video:        video,
		log:          p.Logger.With("track", p.Up.ID(), "kind", kind),
		m:            newMunger(video, uint16(rand.Uint32()), rand.Uint32()),
		notify:       p.Notify,
		bwe:          p.bwe,
		direct:       p.direct,
		clock:        int64(max(p.Up.Codec().ClockRate, 1)),
		packetsOut:   m.PacketsOut.WithLabelValues(kind),
		forwarded:    &m.Forwarded,
		bytesOut:     m.BytesOut.WithLabelValues(kind),
		dropWait:     m.Drops.WithLabelValues(kind, "wait_keyframe"),
		dropStale:    m.Drops.WithLabelValues(kind, "stale"),
		dropNotReady: m.Drops.WithLabelValues(kind, "not_ready"),
		latency:      m.ForwardLatency,
		nackIn:       m.NACKs.WithLabelValues("from_subscriber"),
		rtxHit:       m.Retransmits.WithLabelValues("hit"),
		rtxMiss:      m.Retransmits.WithLabelValues("miss"),
		rtxBudget:    m.Retransmits.WithLabelValues("budget"),
		rtxStale:     m.Retransmits.WithLabelValues("stale"),
		pliIn:        m.PLIs.WithLabelValues("from_subscriber"),
		replayed:     m.KeyframeReplays,
		probeBytes:   m.ProbeBytes,
		switches:     m.LayerSwitches,
		pausedGauge:  m.PausedViewers,
	}
	d.initLayers()
	return d
}

// Up returns the up track this down track sends.
func (d *DownTrack) Up() *UpTrack { return d.up }

// Close ends the down track: nothing more is written (its writer may
// finish the packet it is on) and it leaves its writer. The RTCP reader
// ends when pion stops the sender.
func (d *DownTrack) Close() {
	if d.closed.Swap(true) {
		return
	}
	if b := d.binding.Load(); b != nil {
		d.direct.untrack(b.ssrc, d)
	}
	d.direct.forgetReader(d)
	d.up.RemoveDownTrack(d)
}

// upEnded implements groupMember: the up track ended, nothing more is
// written. The owner still calls Close.
func (d *DownTrack) upEnded() { d.closed.Store(true) }

// setWriter records the writer d is on, for its NACKs and its start; the
// up track calls it once, before d joins the writer's group.
func (d *DownTrack) setWriter(w *writer) { d.w.Store(w) }

// writer returns the writer d is on, or nil.
func (d *DownTrack) writer() *writer { return d.w.Load() }

// SetReady tells the down track that its subscriber's transport is
// connected. The writer starts once the track is also bound.
func (d *DownTrack) SetReady() {
	d.mu.Lock()
	d.connected = true
	d.mu.Unlock()
	d.checkReady()
}

func (d *DownTrack) checkReady() {
	d.mu.Lock()
	ok := d.bound && d.connected
	d.mu.Unlock()
	if ok && !d.ready.Swap(true) {
		if w := d.writer(); w != nil {
			w.kick(d) // start from the cache now, not at the next packet
		}
	}
}

// AttachSender has the down track read the subscriber's RTCP for this
// track from s: at once, or on the direct path when some of the PC's RTCP
// first reaches pion (rtcpreaders.go).
func (d *DownTrack) AttachSender(s *webrtc.RTPSender) {
	if t := s.Transport(); t != nil && d.direct != nil {
		d.rtcpOut.Store(t)
	}
	d.direct.readRTCP(d, s)
}

// ID implements webrtc.TrackLocal: the up track's id, so the subscriber's
// msid names the room's track.
func (d *DownTrack) ID() string { return d.up.ID() }

// RID implements webrtc.TrackLocal.
func (d *DownTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal: the publisher's identity, so a
// browser groups (and lip-syncs) one participant's audio and video.
func (d *DownTrack) StreamID() string { return d.streamID }

// Kind implements webrtc.TrackLocal.
func (d *DownTrack) Kind() webrtc.RTPCodecType { return d.up.Kind() }

// Bind implements webrtc.TrackLocal: pick the negotiated codec that is the
// up track's, and remember the SSRC and payload type to write with.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, ok := matchCodec(d.up.Codec(), ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	b := &binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), stream: ctx.WriteStream()}
	for _, e := range ctx.HeaderExtensions() {
		if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 15 {
			b.twcc = uint8(e.ID)
		}
	}
	if old := d.binding.Swap(b); old != nil {
		d.direct.untrack(old.ssrc, d)
	}
	d.direct.track(b.ssrc, d)
	d.mu.Lock()
	d.bound = true
	d.mu.Unlock()
	d.checkReady()
	return c, nil
}

// Unbind implements webrtc.TrackLocal.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	if old := d.binding.Swap(nil); old != nil {
		d.direct.untrack(old.ssrc, d)
	}
	return nil
}

// matchCodec finds want among the negotiated codecs: same MIME type and,
// when several, the same format parameters (H.264 profile, VP9 profile).
func matchCodec(want webrtc.RTPCodecCapability, have []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var first *webrtc.RTPCodecParameters
	for i := range have {
		c := &have[i]
		if !strings.EqualFold(c.MimeType, want.MimeType) {
			continue
		}
		if c.SDPFmtpLine == want.SDPFmtpLine {
			return *c, true
		}
		if first == nil {
			first = c
		}
	}
	if first == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return *first, true
}

// codecPreference is the one codec a subscriber transceiver offers: the up
// track's, without RTX (retransmissions go on the main SSRC, from the
// shared cache), with transport-cc (the per-subscriber estimate,
// bwe.go).
func codecPreference(c webrtc.RTPCodecCapability, video bool) []webrtc.RTPCodecParameters {
	c.RTCPFeedback = nil
	if video {
		c.RTCPFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}, {Type: webrtc.TypeRTCPFBTransportCC}}
	} else {
		c.RTCPFeedback = []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}
	}
	return []webrtc.RTPCodecParameters{{RTPCodecCapability: c}}
}

// deliver implements groupMember: it writes one packet of the up track,
// read once for the writer's group, to this subscriber, once it is ready.
// The first packet after ready is preceded by the packets since the newest
// cached keyframe (replay, read into aux).
func (d *DownTrack) deliver(it queueItem, p, aux *cachedPacket) {
	if d.closed.Load() || !d.ready.Load() {
		return // nothing is queued for later: it starts from the cache
	}
	if !d.layerGate(it, p) {
		return
	}
	if d.hasSkip && it.layer == d.skipLayer {
		if it.ext <= d.skipThrough {
			return // replayed by start already
		}
		d.hasSkip = false
	}
	if !d.started {
		d.started = true
		if d.video && it.flags&flagKeyframe == 0 {
			d.replay(it.ext, it.layer, aux)
			if !d.started {
				return // the transport is not writable yet
			}
		}
	}
	d.forward(it, p)
}

// start implements groupMember: when d becomes ready, a video subscriber
// is sent the cache from the newest keyframe up to the newest packet at
// once, instead of at the next packet (up to a frame interval later).
// Without a recent keyframe it starts at the next packet, from a new
// keyframe (deliver).
func (d *DownTrack) start(aux *cachedPacket) {
	if d.started || !d.video || d.closed.Load() || !d.ready.Load() {
		return
	}
	slot, ok := d.startLayer()
	if !ok {
		return
	}
	head, ok := d.up.layers[slot].cache.Newest()
	if !ok {
		return
	}
	d.started = true
	if !d.replay(head+1, uint8(slot), aux) {
		d.started = false
		return
	}
	if d.started { // false: the transport was not writable yet
		d.skipThrough, d.skipLayer, d.hasSkip = head, uint8(slot), true
	}
}

// replay writes the cached packets from the newest keyframe up to (not
// including) ext, each read into aux, when that keyframe is recent enough
// (replayMaxAge) and the track owns its cache: a relayed track shares its
// origin's, which may hold packets the relay was not to send (paused). It
// reports whether there was such a keyframe.
func (d *DownTrack) replay(ext uint64, layer uint8, aux *cachedPacket) bool {
	if d.up.origin != nil {
		return false
	}
	cache := d.up.layers[layer].cache
	kf, at, ok := cache.LastKeyframe()
	if !ok || kf >= ext || ext-kf > replayMaxPackets || Now()-at > replayMaxAge {
		return false
	}
	d.replayed.Inc()
	for e := kf; e < ext && d.started; e++ {
		var flags uint8
		if e == kf {
			flags = flagKeyframe
		}
		aux.read(cache, e)
		it := queueItem{ext: e, flags: flags, layer: layer}
		if e == kf && !d.layerGate(it, aux) {
			return true // not this layer's keyframe to start from any more
		}
		d.forward(it, aux)
	}
	return true
}

// forward writes packet p, queued as it, to the subscriber.
func (d *DownTrack) forward(it queueItem, p *cachedPacket) {
	b := d.binding.Load()
	if b == nil {
		d.dropNotReady.Inc()
		return
	}
	if !p.ok {
		d.dropStale.Inc() // overwritten in the cache: we are far behind
		return
	}
	seq, ts, why := d.m.translate(it.ext, p.hdr.Timestamp, it.flags&flagKeyframe != 0, it.flags&flagResync != 0)
	switch why {
	case dropWaitKeyframe:
		d.dropWait.Inc()
		d.up.RequestLayerKeyframe(int(it.layer))
		return
	case dropStale:
		d.dropStale.Inc()
		return
	}
	n, ok := d.write(b, seq, ts, p)
	if !ok {
		return
	}
	d.sent()
	d.packetsOut.Inc()
	d.forwarded.Add(1)
	d.bytesOut.Add(float64(n))
	now := d.wroteAt
	if it.arrival != 0 {
		d.latency.Observe(float64(now-it.arrival) / 1e9)
	}
	if d.direct != nil {
		d.rep.media(ts, now)
		d.sendReport(b, now)
	}
}

// write sends p's payload under a header of the subscriber's own: its
// SSRC, payload type, sequence number and timestamp. Extensions are not
// forwarded (their ids are the publisher's negotiation, not ours).
func (d *DownTrack) write(b *binding, seq uint16, ts uint32, p *cachedPacket) (int, bool) {
	d.lastMarker = p.hdr.Marker
	return d.writePayload(b, seq, ts, p.hdr.Marker, false, p.payload)
}

// writePayload writes one packet with the subscriber's header (padding:
// payload is all padding, its last byte the count). With transport-cc
// negotiated it carries the PC's next transport-wide sequence number,
// recorded for the estimate.
func (d *DownTrack) writePayload(b *binding, seq uint16, ts uint32, marker, padding bool, payload []byte) (int, bool) {
	d.out = rtp.Header{
		Version:        2,
		Padding:        padding,
		Marker:         marker,
		PayloadType:    b.pt,
		SequenceNumber: seq,
		Timestamp:      ts,
		SSRC:           b.ssrc,
	}
	var tseq uint16
	if b.twcc != 0 && d.bwe != nil {
		if d.extID != b.twcc {
			var h rtp.Header
			_ = h.SetExtension(b.twcc, d.twccBuf[:]) // the payload aliases twccBuf
			d.ext, d.extID = h.Extensions, b.twcc
		}
		tseq = d.bwe.hist.take()
		d.twccBuf = [2]byte{byte(tseq >> 8), byte(tseq)}
		d.out.Extension = true
		d.out.ExtensionProfile = rtp.ExtensionProfileOneByte
		d.out.Extensions = d.ext
	}
	var n int
	var err error
	direct := false
	if d.direct != nil {
		n, direct, err = d.direct.writeRTP(&d.out, payload)
	}
	if !direct {
		n, err = b.stream.WriteRTP(&d.out, payload)
	}
	d.wroteAt = Now() // one clock read per packet, for all that follow
	if n > 0 && d.out.Extension {
		d.bwe.hist.record(tseq, n, d.wroteAt)
	}
	if err != nil {
		if !errors.Is(err, io.ErrClosedPipe) {
			d.log.Debug("down track write failed", "err", err)
		}
		return 0, false
	}
	if n == 0 {
		// pion reports the transport connected a few microseconds before
		// SRTP is ready and until then drops writes silently. Never wait
		// here (the writer serves a whole group): start over with the
		// next packet, from the cached keyframe again.
		d.dropNotReady.Inc()
		d.started = false
		d.m.stop()
		return 0, false
	}
	if d.direct != nil {
		if padding {
			payload = nil
		}
		d.rep.count(len(payload))
	}
	return n, true
}

// retransmit implements groupMember: it answers a NACK for outgoing
// sequence number out from the up track's cache, read into aux.
func (d *DownTrack) retransmit(out uint16, aux *cachedPacket) {
	b := d.binding.Load()
	sp, ok := d.m.upstream(out)
	if b == nil || !ok {
		d.rtxMiss.Inc()
		return
	}
	if d.video && (sp.layer != d.m.layer || sp.ext < d.m.restartAt || d.sel.draining) {
		// From before the keyframe the subscriber's decoder restarted
		// at (a layer switch, or a resync after drops), or of a layer
		// being drained: no use to it, and on a full link it would
		// take the retransmission budget the new keyframe needs.
		d.rtxStale.Inc()
		return
	}
	if !aux.read(d.up.layers[sp.layer].cache, sp.ext) {
		d.rtxMiss.Inc()
		return
	}
	if d.bwe != nil && !d.bwe.allowRetransmit(len(aux.payload)+12, Now()) {
		d.rtxBudget.Inc() // over the subscriber's retransmission budget (bwe.go)
		return
	}
	if _, ok := d.write(b, out, sp.ts, aux); ok {
		d.rtxHit.Inc()
	}
}

// rtcpLoop reads the subscriber's RTCP for this track until pion stops the
// sender.
func (d *DownTrack) rtcpLoop(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			return
		}
		d.handleRTCP(buf[:n])
	}
}

// handleRTCP acts on one RTCP datagram from the subscriber: PLI and FIR
// become a (throttled) keyframe request upstream, NACKed packets are queued
// for the writer, which answers them from the cache. Garbage is ignored.
func (d *DownTrack) handleRTCP(b []byte) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	for _, p := range pkts {
		d.handleRTCPPacket(p)
	}
}

// handleRTCPPacket acts on one RTCP packet about this track (or, for
// transport-cc feedback, about its PC): from rtcpLoop, or from the media
// socket's reader on the direct path (directrecv.go). It never blocks.
func (d *DownTrack) handleRTCPPacket(p rtcp.Packet) {
	switch p := p.(type) {
	case *rtcp.TransportLayerCC:
		if d.bwe != nil {
			d.bwe.feedback(p, Now())
		}
	case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
		d.pliIn.Inc()
		d.up.RequestLayerKeyframe(d.keyframeLayer())
	case *rtcp.TransportLayerNack:
		for _, pair := range p.Nacks {
			pair.Range(func(seq uint16) bool {
				d.nackIn.Inc()
				if !d.nack(seq) {
					d.rtxMiss.Inc()
				}
				return true
			})
		}
	}
}

// nack queues a retransmission of outgoing seq on the down track's writer.
func (d *DownTrack) nack(seq uint16) bool {
	w := d.writer()
	return w != nil && !d.closed.Load() && w.nack(d, seq)
}
