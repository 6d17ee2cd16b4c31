package relay

// The sending side of a pipe: a relay's destination on the peer node
// (remoteDest, a RemoteDest), and per relayed track an outTrack: a Sink
// of the relayed up track that queues each packet for the pipe's writer,
// which sends it from the source's cache with the track's SSRC.

import (
	"errors"
	"log/slog"
	"math/rand/v2"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaysfu/relayd/sfu"
)

var errDestGone = errors.New("remote destination gone")

// remoteDest is one relay participant in a room of the peer node.
type remoteDest struct {
	p        *pipe
	id       string // names it in control messages
	room     string
	identity string
	ended    func(Error)
	log      *slog.Logger

	// guarded by p.mu
	live       bool // joined, and not left, ended or lost
	returned   bool // Join returned it: from now on ended is called, once
	endedEarly bool // the peer said ended before the join's answer was in
	tracks     map[*sfu.UpTrack]*outTrack
}

// join asks the peer to admit identity into room as a relay participant.
func (p *pipe) join(room, identity, name, srcRoom string, ended func(Error)) (RemoteDest, Error) {
	rd := &remoteDest{
		p: p, id: sfu.NewID("RD_"), room: room, identity: identity, ended: ended,
		tracks: map[*sfu.UpTrack]*outTrack{},
		log:    p.log.With("dest", room, "participant", identity),
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrServerConnectionLost
	}
	p.dests[rd.id] = rd
	p.mu.Unlock()
	r, err := p.call(wire{T: "join", Dest: rd.id, Room: room, Identity: identity, Name: name, SrcRoom: srcRoom})
	p.mu.Lock()
	fail := ErrNone
	switch {
	case err != nil || p.closed:
		fail = ErrServerConnectionLost
	case r.Error != 0:
		fail = Error(r.Error)
	}
	if fail != ErrNone {
		delete(p.dests, rd.id)
		p.mu.Unlock()
		return nil, fail
	}
	rd.live, rd.returned = true, true
	early := rd.endedEarly
	p.mu.Unlock()
	if early {
		rd.end()
	}
	return rd, ErrNone
}

// onEnded: the peer says our destination ended there (its room ended, or
// the relay participant was removed).
func (p *pipe) onEnded(dest string) {
	p.mu.Lock()
	rd := p.dests[dest]
	if rd != nil && !rd.returned {
		rd.endedEarly = true
		rd = nil
	}
	p.mu.Unlock()
	if rd != nil {
		rd.end()
	}
}

// end drops the destination after the peer ended it, and tells the relay.
func (rd *remoteDest) end() {
	if rd.detach() {
		rd.log.Info("remote destination ended")
		rd.ended(ErrNone)
	}
}

// detach takes a live rd out of the pipe and its tracks off their up
// tracks; false: it was not live.
func (rd *remoteDest) detach() bool {
	p := rd.p
	p.mu.Lock()
	if !rd.live {
		p.mu.Unlock()
		return false
	}
	rd.live = false
	delete(p.dests, rd.id)
	ots := rd.takeTracksLocked()
	p.mu.Unlock()
	for _, ot := range ots {
		ot.dst.RemoveSink(ot)
	}
	return true
}

// Publish implements RemoteDest: the track gets an SSRC of this pipe and
// is announced; its packets follow.
func (rd *remoteDest) Publish(dst *sfu.UpTrack) error {
	p := rd.p
	rids := dst.LayerRIDInfos()
	ot := newOutTrack(p, dst, 0)
	ot.group = []*outTrack{ot}
	for i := 1; i < len(rids); i++ {
		ot.group = append(ot.group, newOutTrack(p, dst, i))
	}
	p.mu.Lock()
	for _, o := range ot.group {
		for o.ssrc <= keepaliveSSRC || p.outBySSRC[o.ssrc] != nil {
			o.ssrc = rand.Uint32()
		}
		p.outBySSRC[o.ssrc] = o // taken now: the next layer draws another
	}
	if p.closed || !rd.live || rd.tracks[dst] != nil {
		for _, o := range ot.group {
			delete(p.outBySSRC, o.ssrc)
		}
		p.mu.Unlock()
		return errDestGone
	}
	rd.tracks[dst] = ot
	p.mu.Unlock()
	msg := wire{T: "publish", Dest: rd.id, Track: dst.ID(), Kind: dst.Kind().String(), SSRC: ot.ssrc, Codec: toWireCodec(dst.Codec()), Muted: dst.Muted()}
	for i, r := range rids {
		msg.Layers = append(msg.Layers, wireLayer{RID: r.RID, SSRC: ot.group[i].ssrc, MaxBitrate: r.MaxBitrate})
	}
	r, err := p.call(msg)
	if err == nil && r.Error != 0 {
		err = errors.New("refused")
	}
	for _, o := range ot.group {
		if err == nil && !dst.AddSink(o) {
			err = errDestGone
		}
	}
	if err != nil {
		rd.drop(dst)
		return err
	}
	return nil
}

// Unpublish implements RemoteDest: dst ends, and so does its copy there.
func (rd *remoteDest) Unpublish(dst *sfu.UpTrack) {
	ot := rd.drop(dst)
	dst.Close()
	if ot != nil {
		rd.p.tell(wire{T: "unpublish", Dest: rd.id, SSRC: ot.ssrc}, "")
	}
}

// drop takes dst's outTrack out of the tables and off dst.
func (rd *remoteDest) drop(dst *sfu.UpTrack) *outTrack {
	p := rd.p
	p.mu.Lock()
	ot := rd.tracks[dst]
	if ot != nil {
		delete(rd.tracks, dst)
		for _, o := range ot.group {
			if p.outBySSRC[o.ssrc] == o {
				delete(p.outBySSRC, o.ssrc)
			}
		}
	}
	p.mu.Unlock()
	if ot != nil {
		for _, o := range ot.group {
			dst.RemoveSink(o)
		}
	}
	return ot
}

// Leave implements RemoteDest. (The relay has unpublished every track
// before.)
func (rd *remoteDest) Leave() {
	if rd.detach() {
		rd.p.tell(wire{T: "leave", Dest: rd.id}, "")
	}
}

// takeTracksLocked empties rd's tracks and returns them.
func (rd *remoteDest) takeTracksLocked() []*outTrack {
	ots := make([]*outTrack, 0, len(rd.tracks))
	for _, ot := range rd.tracks {
		for _, o := range ot.group {
			ots = append(ots, o)
			if rd.p.outBySSRC[o.ssrc] == o {
				delete(rd.p.outBySSRC, o.ssrc)
			}
		}
	}
	rd.tracks = map[*sfu.UpTrack]*outTrack{}
	return ots
}

// nackHistory is how many sent packets an outTrack can find again for a
// NACK: the source's video cache holds 512 (sfu/uptrack.go), so more
// would find nothing.
const nackHistory = 512

// outTrack is one relayed track sent through the pipe: a Sink of the
// relayed up track. WriteRTP runs in the source's reader goroutine and
// only queues; the rest is the pipe writer's.
type outTrack struct {
	p     *pipe
	dst   *sfu.UpTrack
	ssrc  uint32
	layer int         // the simulcast layer (slot) it carries; 0 for a track that is not simulcast
	group []*outTrack // on the first layer's: every layer's (itself first); set before it is shared

	// writer-owned: the sequence numbers on the wire run on without gaps
	// across a pause (resync); sent maps them back to the cache.
	seq     uint16 // the next one
	offset  uint16 // wire = source + offset
	started bool
	sent    [nackHistory]struct {
		seq uint16
		ext uint64
		ok  bool
	}

	packets, bytes, drops, nackIn, rtxHit, rtxMiss, pliIn prometheus.Counter
}

func newOutTrack(p *pipe, dst *sfu.UpTrack, layer int) *outTrack {
	kind := dst.Kind().String()
	m := p.l.cfg.Metrics
	return &outTrack{
		p: p, dst: dst, layer: layer,
		packets: m.PacketsOut.WithLabelValues(kind), bytes: m.BytesOut.WithLabelValues(kind),
		drops: m.Drops.WithLabelValues(kind, "queue_full"), nackIn: m.NACKs.WithLabelValues("from_subscriber"),
		rtxHit: m.Retransmits.WithLabelValues("hit"), rtxMiss: m.Retransmits.WithLabelValues("miss"),
		pliIn: m.PLIs.WithLabelValues("from_subscriber"),
		seq:   uint16(rand.Uint32()),
	}
}

// WriteRTP implements sfu.Sink.
func (ot *outTrack) WriteRTP(p *sfu.Packet) {
	if int(p.Layer) != ot.layer {
		return // another layer's outTrack sends it
	}
	if !ot.p.enqueue(outItem{ot: ot, ext: p.Ext, resync: p.Discontinuity}) {
		ot.drops.Inc()
	}
}

// Close implements sfu.Sink: the relayed track ended (Unpublish tells
// the peer).
func (ot *outTrack) Close() {}

// next makes the packet of it ready to encrypt: read from the cache into
// buf, SSRC and sequence number rewritten. nil: gone from the cache.
func (ot *outTrack) next(it outItem, buf []byte, hdr *rtp.Header) []byte {
	n := ot.dst.LayerCache(ot.layer).Get(it.ext, buf)
	if n == 0 {
		ot.drops.Inc()
		return nil
	}
	if _, err := hdr.Unmarshal(buf[:n]); err != nil {
		return nil
	}
	if !ot.started || it.resync {
		ot.offset = ot.seq - hdr.SequenceNumber
		ot.started = true
	}
	seq := hdr.SequenceNumber + ot.offset
	if d := seq - ot.seq; d < 1<<15 {
		ot.seq = seq + 1 // not a late one
	}
	s := &ot.sent[seq%nackHistory]
	s.seq, s.ext, s.ok = seq, it.ext, true
	ot.packets.Inc()
	ot.bytes.Add(float64(n))
	return ot.rewrite(buf[:n], hdr, seq)
}

// retransmit makes the packet the peer NACKed as seq ready again.
func (ot *outTrack) retransmit(seq uint16, buf []byte, hdr *rtp.Header) []byte {
	s := ot.sent[seq%nackHistory]
	n := 0
	if s.ok && s.seq == seq {
		n = ot.dst.LayerCache(ot.layer).Get(s.ext, buf)
	}
	if n == 0 {
		ot.rtxMiss.Inc()
		return nil
	}
	if _, err := hdr.Unmarshal(buf[:n]); err != nil {
		return nil
	}
	ot.rtxHit.Inc()
	return ot.rewrite(buf[:n], hdr, seq)
}

// rewrite sets the pipe's SSRC and sequence number in b (and hdr, which
// the encryption reads).
func (ot *outTrack) rewrite(b []byte, hdr *rtp.Header, seq uint16) []byte {
	hdr.SSRC, hdr.SequenceNumber = ot.ssrc, seq
	b[2], b[3] = byte(seq>>8), byte(seq)
	b[8], b[9], b[10], b[11] = byte(ot.ssrc>>24), byte(ot.ssrc>>16), byte(ot.ssrc>>8), byte(ot.ssrc)
	return b
}

var (
	_ RemoteDest = (*remoteDest)(nil)
	_ Remote     = (*Links)(nil)
	_ sfu.Sink   = (*outTrack)(nil)
)
