package sfu

// The packet path, in one place:
//
//  1. UpTrack.Run (one goroutine per published track) reads a packet from
//     its Source (a publisher's TrackRemote, or a relay's ingress), parses
//     the header once, computes the extended sequence number and whether
//     the packet starts a keyframe, and stores it once in the track's Cache.
//  2. It loads the copy-on-write sink snapshot and calls WriteRTP on each
//     sink. Sinks never block. The track's DownTracks are in groups of up
//     to 32, each served by a writer (writer.go), which is one sink: it
//     only enqueues a 24-byte item in its bounded queue, or drops (video:
//     until the next keyframe).
//  3. Each writer's goroutine takes items from its queue, copies the packet
//     out of the Cache and parses it once for its group, and hands it to
//     each DownTrack of the group, which rewrites SSRC, payload type,
//     sequence number and timestamp into its own header for its subscriber
//     (munger.go) and writes it to the subscriber's PeerConnection: over
//     UDP, encrypted with the PC's SRTP keys straight into the socket's
//     sendmmsg batch (directsend.go, batchconn.go); otherwise (ICE-TCP)
//     through pion's write path.
//  4. Back: a subscriber's RTCP is read off the socket by its one reader
//     and decrypted with the PC's keys (directrecv.go; otherwise, through
//     pion, by the DownTrack's rtcpLoop). Its NACK is answered from the
//     same Cache; its PLI or FIR becomes UpTrack.RequestKeyframe,
//     throttled to one per 500 ms; its transport-cc feedback feeds the
//     subscriber's estimator (bwe.go).
//
// There is no other forwarding loop: the relay's egress and the recorder
// are Sinks, the relay's ingress is a Source.

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaysfu/relayd/metrics"

	"github.com/relaysfu/relayd/internal/codec"
)

// keyframeInterval is the least time between two keyframe requests sent to a
// publisher for one track. A keyframe is 5-20x a delta frame: asking more
// often than twice a second lets a few lossy subscribers congest everyone.
const keyframeInterval = 500 * time.Millisecond

// Cache sizes in packets. Video: 512 packets are ~3.5 s at 1.5 Mbit/s, longer
// than any useful retransmission, and 768 KB per published track. Audio is
// rarely NACKed; 128 packets are 2.5 s of 20 ms Opus.
const (
	videoCacheSize = 512
	audioCacheSize = 128
)

// UpTrackParams lists an UpTrack's dependencies.
type UpTrackParams struct {
	ID          string // track id announced to the room
	Participant string // publisher's identity: the msid stream id subscribers see
	Kind        webrtc.RTPCodecType
	Codec       webrtc.RTPCodecCapability // codec the source sends
	Source      Source                    // the one layer's source (a track that is not simulcast)
	// RIDs, for a simulcast track, are its layers in a=simulcast order
	// (SimulcastRIDs); their sources come with AttachLayer. Empty: one
	// layer, read from Source.
	RIDs    []RIDInfo
	Relayed bool   // the track comes from a relay: it is never relayed again
	Flush   func() // APIs.Flush: called by a writer after each packet's group (may be nil)
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// UpTrack is one published track: one reader goroutine (Run, started by
// the owner), one packet Cache shared by every subscriber, a copy-on-write
// list of sinks, and its own pool of writers that serve its DownTracks
// (writer.go).
//
// Lifecycle: NewUpTrack, then the owner runs Run in a goroutine; Run returns
// when the source ends (its owner closes it), and then closes every sink.
type UpTrack struct {
	id          string
	participant string
	kind        webrtc.RTPCodecType
	codec       webrtc.RTPCodecCapability
	relayed     bool
	src         Source     // layer 0's source as made (tests)
	origin      *UpTrack   // for a relayed track: the track it carries
	layers      []*upLayer // by slot (simulcast.go); a relayed copy shares its origin's
	cache       *Cache     // layers[0].cache
	log         *slog.Logger
	m           *metrics.Metrics
	video       bool
	flush       func() // nil: the batch timer sends

	// sinks is read by the reader on every packet without a lock and
	// replaced (never modified) under mu: LiveKit's downTracksShadow.
	sinks atomic.Pointer[[]Sink]

	mu       sync.Mutex
	closed   bool          // guarded by mu: no sink is added after Close
	keep     bool          // guarded by mu: a layer whose source ends waits for another (reload.go)
	cut      bool          // guarded by mu: nor lingers (its publisher closes)
	wake     chan struct{} // guarded by mu: closed when a source is replaced or keep ends
	writers  []*writer     // guarded by mu: the pool of the down tracks' writers
	readers  int           // guarded by mu: layer readers running (RunLayer)
	writerWG sync.WaitGroup

	mute       atomic.Uint32          // muteOff, muteOn, muteResuming (mute.go)
	resumeMask atomic.Uint32          // while muteResuming: the layers not yet resumed
	onPacket   atomic.Pointer[func()] // OnNextPacket's function, until called
	watchers   map[*UpTrack]func()    // guarded by mu: OnLayersChanged's functions, by the track (or copy) they watch for

	done      chan struct{}
	closeOnce sync.Once

	layerRates layerRates // simulcast.go
	created    int64      // Now() when made

	packetsIn, bytesIn prometheus.Counter
	pliUp              prometheus.Counter
	drops              prometheus.Counter
}

// NewUpTrack makes an up track; call Run to start reading.
func NewUpTrack(p UpTrackParams) *UpTrack { return newUpTrack(p, nil) }

// newUpTrack makes an up track with the given cache, or a new one.
func newUpTrack(p UpTrackParams, cache *Cache) *UpTrack {
	video := p.Kind == webrtc.RTPCodecTypeVideo
	kind := p.Kind.String()
	n := max(1, min(len(p.RIDs), MaxLayers))
	layers := make([]*upLayer, n)
	for i := range layers {
		c := cache
		if i > 0 || c == nil {
			size := audioCacheSize
			if video {
				size = videoCacheSize
			}
			c = NewCache(size)
		}
		layers[i] = &upLayer{slot: i, cache: c}
		if i < len(p.RIDs) {
			layers[i].rid, layers[i].maxBitrate = p.RIDs[i].RID, p.RIDs[i].MaxBitrate
		}
	}
	cache = layers[0].cache
	if p.Source != nil {
		layers[0].src.Store(&sourceBox{p.Source})
	}
	t := &UpTrack{
		id:          p.ID,
		participant: p.Participant,
		kind:        p.Kind,
		codec:       p.Codec,
		relayed:     p.Relayed,
		src:         p.Source,
		layers:      layers,
		cache:       cache,
		log:         p.Logger.With("track", p.ID, "kind", kind),
		m:           p.Metrics,
		video:       video,
		flush:       p.Flush,
		done:        make(chan struct{}),
		packetsIn:   p.Metrics.PacketsIn.WithLabelValues(kind),
		bytesIn:     p.Metrics.BytesIn.WithLabelValues(kind),
		pliUp:       p.Metrics.PLIs.WithLabelValues("to_publisher"),
		drops:       p.Metrics.Drops.WithLabelValues(kind, "stale"),
	}
	t.sinks.Store(&[]Sink{})
	t.created = Now()
	if p.Source != nil {
		t.readers = 1
	}
	return t
}

// NewRelayedUpTrack makes an up track in another room that carries origin's
// packets (a same-process relay). It shares origin's Cache, so NACKs in every
// room are answered from one copy, and passes keyframe requests to origin,
// so all rooms share one throttle. It has no reader of its own: the relay's
// egress, a Sink of origin, calls Forward from origin's reader goroutine, so
// origin's reader stays the one forwarding loop. Close ends it.
func NewRelayedUpTrack(origin *UpTrack, p UpTrackParams) *UpTrack {
	p.Kind = origin.kind
	p.Codec = origin.codec
	p.Relayed = true
	p.Source = relayedSource{origin}
	if p.Flush == nil {
		p.Flush = origin.flush
	}
	p.Source = nil
	t := newUpTrack(p, origin.cache)
	t.src = relayedSource{origin}
	t.layers = origin.layers // one cache per layer for every room
	t.origin = origin
	return t
}

// relayedSource sends a relayed track's keyframe requests to its origin.
type relayedSource struct{ origin *UpTrack }

func (s relayedSource) ReadRTP([]byte) (int, error) { return 0, io.EOF }
func (s relayedSource) RequestKeyframe() error {
	s.origin.RequestKeyframe()
	return nil
}

// AttachLayer gives a simulcast track the source of layer rid (pion's
// OnTrack for that rid) and returns its slot, for RunLayer. ok is false
// when the track has ended, has no such rid, or has its source already.
func (t *UpTrack) AttachLayer(rid string, src Source) (slot int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	slot = t.layerOfRID(rid)
	if t.closed || t.origin != nil || slot < 0 || t.layers[slot].source() != nil {
		return -1, false
	}
	t.layers[slot].src.Store(&sourceBox{src})
	t.readers++
	return slot, true
}

// Forward fans a packet of origin out to a relayed track's sinks. Only
// origin's reader goroutine calls it (through the relay's egress sink).
func (t *UpTrack) Forward(p *Packet) {
	t.packetsIn.Inc()
	t.bytesIn.Add(float64(len(p.Raw)))
	for _, s := range *t.sinks.Load() {
		s.WriteRTP(p)
	}
	t.packetForwarded()
}

// Close ends a relayed up track: its sinks are closed and Done is closed.
// (A track with a reader ends when its source does.)
func (t *UpTrack) Close() { t.finish() }

// ID returns the track id.
func (t *UpTrack) ID() string { return t.id }

// Participant returns the publisher's identity.
func (t *UpTrack) Participant() string { return t.participant }

// Kind returns audio or video.
func (t *UpTrack) Kind() webrtc.RTPCodecType { return t.kind }

// Codec returns the codec the publisher sends.
func (t *UpTrack) Codec() webrtc.RTPCodecCapability { return t.codec }

// Relayed reports whether the track came in through a relay.
func (t *UpTrack) Relayed() bool { return t.relayed }

// Cache returns the track's packet cache (for sinks that read packets back).
func (t *UpTrack) Cache() *Cache { return t.cache }

// Done is closed when the track has ended.
func (t *UpTrack) Done() <-chan struct{} { return t.done }

// Run reads the source until it ends, fanning every packet out to the sinks.
// It returns when the source returns an error or the track is closed, and
// closes all sinks before returning (a simulcast track: when its last
// layer's reader has ended).
func (t *UpTrack) Run() { t.RunLayer(0) }

// RunLayer reads layer slot's source (AttachLayer) until it ends; the
// track ends with its last reader.
func (t *UpTrack) RunLayer(slot int) {
	defer t.readerEnded()
	l := t.layers[slot]
	src := l.source()
	if src == nil {
		return
	}
	buf := make([]byte, MaxPacketSize)
	for {
		n, err := src.ReadRTP(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
				t.log.Debug("up track read ended", "err", err, "rid", l.rid)
			}
			// A held publisher's PC may be replaced (reload.go): wait
			// for the new one's source.
			if src = t.nextSource(l, src); src == nil {
				return
			}
			continue
		}
		if cur := l.source(); cur != src {
			// Replaced while this source still sends: its packets stop
			// here, the new source's continue the track.
			src = cur
			l.rebase = true
			continue
		}
		t.ingestLayer(l, buf[:n])
	}
}

// readerEnded ends the track when its last layer reader has ended.
func (t *UpTrack) readerEnded() {
	t.mu.Lock()
	t.readers--
	last := t.readers <= 0
	t.mu.Unlock()
	if last {
		t.finish()
	}
}

// ingest handles one packet of layer 0 (tests).
func (t *UpTrack) ingest(raw []byte) { t.ingestLayer(t.layers[0], raw) }

// ingestLayer handles one packet read from layer l's source: parse,
// cache, fan out. Only l's reader goroutine calls it.
func (t *UpTrack) ingestLayer(l *upLayer, raw []byte) {
	n := len(raw)
	payload, ok := parseRTP(raw, &l.hdr)
	if !ok {
		t.drops.Inc() // garbage from the wire: count, never crash
		return
	}
	keyframe := t.video && codec.KeyframeStart(t.codec.MimeType, payload)
	rebased := false
	if l.rebase {
		if t.video && !keyframe {
			t.RequestLayerKeyframe(l.slot) // a new source starts at its keyframe
			return
		}
		t.rebaseLayer(l)
		rebased = true
	}
	ext := l.unwrap.Unwrap(l.hdr.SequenceNumber) + l.extShift
	if l.tsShift != 0 {
		l.hdr.Timestamp += l.tsShift
		binary.BigEndian.PutUint32(raw[4:8], l.hdr.Timestamp)
	}
	forward, discontinuity := t.muteGate(l, keyframe)
	if !forward {
		return // muted: nothing is stored or forwarded
	}
	if !l.cache.Store(ext, raw) {
		// A duplicate (retransmission that arrived twice) or a packet
		// too old for any subscriber: nothing to forward.
		t.drops.Inc()
		return
	}
	if discontinuity {
		t.resumed(l)
	}
	discontinuity = discontinuity || rebased
	l.lastTS = l.hdr.Timestamp
	t.packetsIn.Inc()
	t.bytesIn.Add(float64(n))
	now := Now()
	l.bytes.Add(uint64(n))
	l.lastAt.Store(now)

	l.pkt = Packet{
		Header:        &l.hdr,
		Payload:       payload,
		Raw:           raw,
		Ext:           ext,
		Layer:         uint8(l.slot),
		Keyframe:      keyframe,
		Arrival:       now,
		Discontinuity: discontinuity,
	}
	if keyframe {
		l.cache.MarkKeyframe(ext, now)
		l.keyframe.Store(now)
		if l.rid != "" {
			t.keyframeSize(l, payload)
		}
	}
	for _, s := range *t.sinks.Load() {
		s.WriteRTP(&l.pkt)
	}
	t.packetForwarded()
}

// keyframeSize records the size of a simulcast layer's keyframe; a change
// calls the OnLayersChanged function (the track object's layers).
func (t *UpTrack) keyframeSize(l *upLayer, payload []byte) {
	w, h, ok := codec.KeyframeSize(t.codec.MimeType, payload)
	if !ok || w > 0xffff || h > 0xffff {
		return
	}
	size := uint32(w)<<16 | uint32(h)
	if l.size.Swap(size) != size {
		t.mu.Lock()
		fs := make([]func(), 0, len(t.watchers))
		for _, f := range t.watchers {
			fs = append(fs, f)
		}
		t.mu.Unlock()
		for _, f := range fs {
			f()
		}
	}
}

// OnLayersChanged has f called, from a reader goroutine (it must return
// at once), whenever the track's layers (Layers) may have changed; nil
// stops it. A relayed copy's layers are its origin's: so are its calls.
func (t *UpTrack) OnLayersChanged(f func()) {
	o := t
	if t.origin != nil {
		o = t.origin
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if f == nil {
		delete(o.watchers, t)
		return
	}
	if o.watchers == nil {
		o.watchers = map[*UpTrack]func(){}
	}
	o.watchers[t] = f
}

// finish closes the track and every sink (the writers close their down
// tracks), and waits for the writers to stop; called once by Run.
func (t *UpTrack) finish() {
	t.mu.Lock()
	t.closed = true
	t.wakeLocked()
	sinks := *t.sinks.Load()
	t.sinks.Store(&[]Sink{})
	t.writers = nil
	t.mu.Unlock()
	for _, s := range sinks {
		s.Close()
	}
	t.writerWG.Wait()
	t.closeOnce.Do(func() { close(t.done) })
}

// AddSink subscribes s to the track: the reader calls its WriteRTP for
// every packet. It returns false when the track has ended (s is not added
// and not closed). A WebRTC subscriber is added with AddDownTrack instead.
func (t *UpTrack) AddSink(s Sink) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.addSinkLocked(s)
	return true
}

func (t *UpTrack) addSinkLocked(s Sink) {
	old := *t.sinks.Load()
	next := make([]Sink, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, s)
	t.sinks.Store(&next)
}

// RemoveSink unsubscribes s; it does not close it.
func (t *UpTrack) RemoveSink(s Sink) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeSinkLocked(s)
}

func (t *UpTrack) removeSinkLocked(s Sink) {
	old := *t.sinks.Load()
	next := make([]Sink, 0, len(old))
	for _, x := range old {
		if x != s {
			next = append(next, x)
		}
	}
	t.sinks.Store(&next)
}

// SinkCount returns the number of sinks, each down track counted.
func (t *UpTrack) SinkCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(*t.sinks.Load()) - len(t.writers)
	for _, w := range t.writers {
		n += w.n
	}
	return n
}

// keyframeForNewSubscriber asks for a keyframe for a subscriber about to
// start, unless the cached one is younger than keyframeInterval: by the
// time the subscriber's DTLS is up (100-500 ms) it is still young enough
// to start from (DownTrack.replay), and the publisher is spared a
// keyframe per joining viewer.
func (t *UpTrack) keyframeForNewSubscriber(slot int) {
	if slot < 0 || slot >= len(t.layers) {
		return
	}
	if t.origin == nil {
		if _, at, ok := t.layers[slot].cache.LastKeyframe(); ok && Now()-at < int64(keyframeInterval) {
			return
		}
	}
	t.RequestLayerKeyframe(slot)
}

// RequestKeyframe asks the source of every layer for a keyframe (see
// RequestLayerKeyframe).
func (t *UpTrack) RequestKeyframe() {
	for i := range t.layers {
		t.RequestLayerKeyframe(i)
	}
}

// RequestLayerKeyframe asks layer slot's source for a keyframe, at most
// once per keyframeInterval however many subscribers ask. A request
// inside the interval is not dropped but deferred to its end (once), so a
// subscriber that joins just after another waits at most keyframeInterval
// for its first frame, not until someone asks again.
func (t *UpTrack) RequestLayerKeyframe(slot int) {
	if !t.video || slot < 0 || slot >= len(t.layers) {
		return
	}
	if t.origin != nil {
		t.origin.RequestLayerKeyframe(slot) // one throttle, at the origin
		return
	}
	l := t.layers[slot]
	src := l.source()
	if src == nil {
		return // the layer has not arrived
	}
	now := Now()
	last := l.lastKeyframeReq.Load()
	if last != 0 && now-last < int64(keyframeInterval) {
		if l.deferredKeyframe.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(last+int64(keyframeInterval)-now), func() {
				l.deferredKeyframe.Store(false)
				select {
				case <-t.done:
				default:
					t.RequestLayerKeyframe(slot)
				}
			})
		}
		return
	}
	if !l.lastKeyframeReq.CompareAndSwap(last, now) {
		return // another goroutine just asked
	}
	t.pliUp.Inc()
	if err := src.RequestKeyframe(); err != nil {
		t.log.Debug("keyframe request failed", "err", err)
	}
}
