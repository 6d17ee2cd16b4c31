package relay

// The receiving side of a pipe: relay participants in this node's rooms,
// fed by the peer. A join admits one (the gate is this room's); a publish
// publishes an up track on it at once, whose source reads the packets of
// the SSRC the publish names.

import (
	"errors"
	"io"
	"log/slog"
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaysfu/relayd/sfu"
)

// ingressQueueSize bounds the packets that wait for an ingress track's
// reader: a keyframe burst (~50 packets at 1.5 Mbit/s) with room to spare.
const ingressQueueSize = 256

// ingressDest is a relay participant here, fed through the pipe.
type ingressDest struct {
	id       string
	room     string
	identity string
	srcRoom  string
	log      *slog.Logger
	p        *sfu.Participant    // guarded by pipe.mu
	tracks   map[uint32]*ingress // by SSRC, guarded by pipe.mu
}

// detachLocked takes d's tracks out of the pipe's tables; it returns
// them, and d's participant, for the caller to end outside the lock.
func (d *ingressDest) detachLocked(p *pipe) (*sfu.Participant, []*ingressSource) {
	srcs := make([]*ingressSource, 0, len(d.tracks))
	for ssrc, ing := range d.tracks {
		srcs = append(srcs, ing.src)
		if p.inBySSRC[ssrc] == ing {
			delete(p.inBySSRC, ssrc)
		}
	}
	d.tracks = map[uint32]*ingress{}
	return d.p, srcs
}

// end closes the sources (their readers return and unpublish the tracks:
// track.unpublished there), then takes the participant out
// (participant.left); leave false: it is out already.
func end(part *sfu.Participant, srcs []*ingressSource, leave bool) {
	for _, s := range srcs {
		s.close()
	}
	if leave && part != nil {
		part.Leave()
	}
}

// ingress is one relayed track (one layer of it, for simulcast: each on
// an SSRC of its own) received through the pipe.
type ingress struct {
	d     *ingressDest
	up    *sfu.UpTrack
	src   *ingressSource
	group []*ingress // every layer's ingress of the track (itself included)
}

// ingressSink receives a relay participant's events here: SessionEnded
// (the room ended, or a newer relay of that identity replaced it) ends the
// destination for the sending node.
type ingressSink struct {
	p    *pipe
	dest string
}

func (s *ingressSink) Notify(ev sfu.Event) {
	if _, ok := ev.(sfu.SessionEnded); ok {
		s.p.destEnded(s.dest)
	}
}

// onJoin admits a relay participant: the gate is this room's.
func (p *pipe) onJoin(m wire) Error {
	refuse := func(why string) Error {
		p.log.Info("relay join refused", "room", m.Room, "participant", m.Identity, "why", why)
		return ErrFailedJoinDest
	}
	room := p.l.cfg.SFU.Room(m.Room)
	switch {
	case m.Dest == "" || m.Identity == "":
		return refuse("bad join")
	case room == nil:
		return refuse("no such room")
	case !room.MayPublishAs(m.Identity, sfu.RoleRelay):
		return refuse("may not publish there")
	}
	d := &ingressDest{
		id: m.Dest, room: m.Room, identity: m.Identity, srcRoom: m.SrcRoom, tracks: map[uint32]*ingress{},
		log: p.log.With("room", m.Room, "participant", m.Identity),
	}
	p.mu.Lock()
	if p.closed || p.in[m.Dest] != nil {
		p.mu.Unlock()
		return refuse("joined already")
	}
	p.in[m.Dest] = d
	p.mu.Unlock()
	part, _, err := room.Join(sfu.ParticipantParams{
		Identity: m.Identity, Name: m.Name, Role: sfu.RoleRelay, RelayFrom: m.SrcRoom,
		Events: &ingressSink{p: p, dest: m.Dest},
	})
	p.mu.Lock()
	if err != nil {
		if p.in[m.Dest] == d {
			delete(p.in, m.Dest)
		}
		p.mu.Unlock()
		return refuse(err.Error())
	}
	if p.closed || p.in[m.Dest] != d {
		p.mu.Unlock()
		part.Leave()
		return ErrServerConnectionLost
	}
	d.p = part
	p.mu.Unlock()
	d.log.Info("relay participant joined over link", "from", m.SrcRoom)
	return ErrNone
}

// onPublish publishes a relayed track on its relay participant and starts
// its reader.
func (p *pipe) onPublish(m wire) Error {
	kind := webrtc.NewRTPCodecType(m.Kind)
	if kind == 0 || m.Track == "" || m.Codec == nil || m.SSRC <= keepaliveSSRC {
		return ErrFailedJoinDest
	}
	p.mu.Lock()
	d := p.in[m.Dest]
	if p.closed || d == nil || d.p == nil || p.inBySSRC[m.SSRC] != nil {
		p.mu.Unlock()
		return ErrFailedJoinDest
	}
	if len(m.Layers) > 0 {
		return p.publishLayers(m, kind, d)
	}
	src := newIngressSource(p, m.SSRC, p.l.cfg.Metrics.Drops.WithLabelValues(m.Kind, "queue_full"))
	up := sfu.NewUpTrack(sfu.UpTrackParams{
		ID: m.Track, Participant: d.identity, Kind: kind, Codec: m.Codec.capability(),
		Source: src, Relayed: true, Logger: d.log, Metrics: p.l.cfg.Metrics,
	})
	if m.Muted {
		up.SetMuted(true) // its source is muted: it starts so
	}
	ing := &ingress{d: d, up: up, src: src}
	ing.group = []*ingress{ing}
	d.tracks[m.SSRC] = ing
	p.inBySSRC[m.SSRC] = ing
	part := d.p
	p.wg.Add(1)
	p.mu.Unlock()
	if err := part.PublishTrack(up); err != nil {
		d.log.Info("relayed track refused", "track", m.Track, "err", err)
		src.close()
		p.forgetIngress(ing)
		p.wg.Done()
		return ErrFailedJoinDest
	}
	go func() {
		defer p.wg.Done()
		up.Run()
		part.UnpublishTrack(up)
		p.forgetIngress(ing)
	}()
	return ErrNone
}

// publishLayers is onPublish for a simulcast track (with p.mu held, which
// it releases): one source per layer, each on its SSRC, read into the
// layer of one up track; the track is unpublished when its last layer's
// reader ends.
func (p *pipe) publishLayers(m wire, kind webrtc.RTPCodecType, d *ingressDest) Error {
	if len(m.Layers) > sfu.MaxLayers || m.Layers[0].SSRC != m.SSRC {
		p.mu.Unlock()
		return ErrFailedJoinDest
	}
	rids := make([]sfu.RIDInfo, len(m.Layers))
	for i, l := range m.Layers {
		if l.SSRC <= keepaliveSSRC || p.inBySSRC[l.SSRC] != nil || l.RID == "" {
			p.mu.Unlock()
			return ErrFailedJoinDest
		}
		rids[i] = sfu.RIDInfo{RID: l.RID, MaxBitrate: l.MaxBitrate}
	}
	up := sfu.NewUpTrack(sfu.UpTrackParams{
		ID: m.Track, Participant: d.identity, Kind: kind, Codec: m.Codec.capability(),
		RIDs: rids, Relayed: true, Logger: d.log, Metrics: p.l.cfg.Metrics,
	})
	if m.Muted {
		up.SetMuted(true) // its source is muted: it starts so
	}
	var group []*ingress
	var slots []int
	for _, l := range m.Layers {
		src := newIngressSource(p, l.SSRC, p.l.cfg.Metrics.Drops.WithLabelValues(m.Kind, "queue_full"))
		slot, ok := up.AttachLayer(l.RID, src)
		if !ok { // a rid twice
			for _, g := range group {
				g.src.close()
			}
			src.close()
			p.mu.Unlock()
			return ErrFailedJoinDest
		}
		group = append(group, &ingress{d: d, up: up, src: src})
		slots = append(slots, slot)
	}
	for i, ing := range group {
		ing.group = group
		d.tracks[m.Layers[i].SSRC] = ing
		p.inBySSRC[m.Layers[i].SSRC] = ing
	}
	part := d.p
	p.wg.Add(len(group) + 1)
	p.mu.Unlock()
	for i, ing := range group {
		go func() {
			defer p.wg.Done()
			up.RunLayer(slots[i])
			p.forgetIngress(ing)
		}()
	}
	if err := part.PublishTrack(up); err != nil {
		d.log.Info("relayed track refused", "track", m.Track, "err", err)
		for _, ing := range group {
			ing.src.close()
		}
		p.wg.Done()
		return ErrFailedJoinDest
	}
	go func() {
		defer p.wg.Done()
		<-up.Done()
		part.UnpublishTrack(up)
	}()
	return ErrNone
}

// onRTP hands a packet to the ingress of its SSRC (the UDP reader).
func (p *pipe) onRTP(ssrc uint32, b []byte) {
	p.mu.Lock()
	ing := p.inBySSRC[ssrc]
	p.mu.Unlock()
	if ing != nil {
		ing.src.push(b)
	}
}

// onUnpublish ends one relayed track: its reader returns and unpublishes it.
func (p *pipe) onUnpublish(dest string, ssrc uint32) {
	p.mu.Lock()
	var ing *ingress
	if d := p.in[dest]; d != nil {
		ing = d.tracks[ssrc]
	}
	p.mu.Unlock()
	if ing != nil {
		for _, g := range ing.group {
			g.src.close()
			p.forgetIngress(g)
		}
	}
}

// onLeave takes a relay participant out of its room: track.unpublished,
// then participant.left.
func (p *pipe) onLeave(dest string) {
	d, part, srcs := p.dropDest(dest)
	if d == nil {
		return
	}
	end(part, srcs, true)
	d.log.Info("relay participant left over link")
}

// destEnded: a relay participant here got SessionEnded; the sending node
// drops that destination. Its address is the pipe's, or its source
// room's node's when it dialed us.
func (p *pipe) destEnded(dest string) {
	d, part, srcs := p.dropDest(dest)
	if d == nil {
		return
	}
	end(part, srcs, false)
	url := ""
	if node, u, ok := p.l.cfg.Locate(d.srcRoom); ok && node == p.peer {
		url = u
	}
	p.tell(wire{T: "ended", Dest: dest}, url)
}

// dropDest removes a destination from the tables and returns it, with
// its participant and the sources of the tracks it had.
func (p *pipe) dropDest(dest string) (*ingressDest, *sfu.Participant, []*ingressSource) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.in[dest]
	if d == nil {
		return nil, nil, nil
	}
	delete(p.in, dest)
	part, srcs := d.detachLocked(p)
	return d, part, srcs
}

func (p *pipe) forgetIngress(ing *ingress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ssrc := ing.src.ssrc
	if ing.d.tracks[ssrc] == ing {
		delete(ing.d.tracks, ssrc)
	}
	if p.inBySSRC[ssrc] == ing {
		delete(p.inBySSRC, ssrc)
	}
}

// ingressSource is an ingress up track's Source: the packets of its SSRC,
// queued by the UDP reader, read through the pipe's NACK generator (which
// asks the sending node for what is missing).
type ingressSource struct {
	p      *pipe
	ssrc   uint32
	ch     chan []byte
	done   chan struct{}
	once   sync.Once
	info   *interceptor.StreamInfo
	reader interceptor.RTPReader
	drops  prometheus.Counter
}

func newIngressSource(p *pipe, ssrc uint32, drops prometheus.Counter) *ingressSource {
	s := &ingressSource{
		p: p, ssrc: ssrc, ch: make(chan []byte, ingressQueueSize), done: make(chan struct{}), drops: drops,
		info: &interceptor.StreamInfo{SSRC: ssrc, RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}},
	}
	s.reader = p.nack.BindRemoteStream(s.info, interceptor.RTPReaderFunc(s.next))
	return s
}

// push queues a packet (a copy); when the reader is behind, it is dropped.
func (s *ingressSource) push(b []byte) {
	select {
	case s.ch <- append([]byte(nil), b...):
	default:
		s.drops.Inc()
	}
}

func (s *ingressSource) next(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
	select {
	case pkt := <-s.ch:
		return copy(b, pkt), a, nil
	case <-s.done:
		return 0, nil, io.EOF
	}
}

// close ends the source: a read waiting or to come returns io.EOF.
func (s *ingressSource) close() {
	s.once.Do(func() {
		close(s.done)
		s.p.nack.UnbindRemoteStream(s.info)
	})
}

// ReadRTP implements sfu.Source.
func (s *ingressSource) ReadRTP(buf []byte) (int, error) {
	for {
		n, _, err := s.reader.Read(buf, nil)
		if err == nil {
			return n, nil
		}
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		// not RTP: the next one
	}
}

// RequestKeyframe implements sfu.Source: a PLI to the sending node.
func (s *ingressSource) RequestKeyframe() error {
	s.p.sendRTCP(&rtcp.PictureLossIndication{SenderSSRC: keepaliveSSRC, MediaSSRC: s.ssrc})
	return nil
}

var (
	_ sfu.Source    = (*ingressSource)(nil)
	_ sfu.EventSink = (*ingressSink)(nil)
)
