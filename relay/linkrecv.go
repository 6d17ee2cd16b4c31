package relay

// The receiving side of a link: relay participants in this node's rooms,
// fed by the peer. A "publish" message publishes an up track at once (so
// the room sees track.published as with a local relay); its source reads
// the pion track that the next negotiation brings, matched by the track id
// in its msid.

import (
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/sfu"
)

// ingressDest is a relay participant here, fed over the link.
type ingressDest struct {
	id       string
	room     string
	identity string
	log      *slog.Logger
	p        *sfu.Participant    // guarded by link.mu
	tracks   map[string]*ingress // by track id, guarded by link.mu
}

// closeTracks ends every track's source: their readers return.
func (d *ingressDest) closeTracks() {
	for _, ing := range d.tracks {
		ing.src.close()
	}
}

// ingress is one relayed track received over the link.
type ingress struct {
	d   *ingressDest
	id  string
	up  *sfu.UpTrack
	src *ingressSource
}

// ingressSink receives a relay participant's events here: SessionEnded
// (the room ended, or a newer relay of that identity replaced it) ends the
// destination for the sending node.
type ingressSink struct {
	lk   *link
	dest string
}

func (s *ingressSink) Notify(ev sfu.Event) {
	if _, ok := ev.(sfu.SessionEnded); ok {
		s.lk.post(evDestEnded{s.dest})
	}
}

// onJoin admits a relay participant: the gate is this room's.
func (lk *link) onJoin(w *wire) {
	refuse := func(why string) {
		lk.log.Info("relay join refused", "room", w.Room, "participant", w.Identity, "why", why)
		lk.send(wire{T: "refused", Dest: w.Dest, Error: int(ErrFailedJoinDest)})
	}
	room := lk.l.cfg.SFU.Room(w.Room)
	switch {
	case w.Dest == "" || w.Identity == "":
		refuse("bad join")
		return
	case room == nil:
		refuse("no such room")
		return
	case !room.MayPublishAs(w.Identity, sfu.RoleRelay):
		refuse("may not publish there")
		return
	}
	d := &ingressDest{
		id: w.Dest, room: w.Room, identity: w.Identity, tracks: map[string]*ingress{},
		log: lk.log.With("room", w.Room, "participant", w.Identity),
	}
	lk.mu.Lock()
	if lk.closed || lk.in[w.Dest] != nil {
		lk.mu.Unlock()
		return
	}
	lk.in[w.Dest] = d
	lk.mu.Unlock()
	p, _, err := room.Join(sfu.ParticipantParams{
		Identity: w.Identity, Name: w.Name, Role: sfu.RoleRelay, RelayFrom: w.SrcRoom,
		Events: &ingressSink{lk: lk, dest: w.Dest},
	})
	lk.mu.Lock()
	if err != nil {
		if lk.in[w.Dest] == d {
			delete(lk.in, w.Dest)
		}
		lk.mu.Unlock()
		refuse(err.Error())
		return
	}
	if lk.closed || lk.in[w.Dest] != d {
		lk.mu.Unlock()
		p.Leave()
		return
	}
	d.p = p
	lk.mu.Unlock()
	d.log.Info("relay participant joined over link", "from", w.SrcRoom)
	lk.send(wire{T: "joined", Dest: w.Dest})
}

// onPublish publishes a relayed track on its relay participant and starts
// its reader.
func (lk *link) onPublish(w *wire) {
	kind := webrtc.NewRTPCodecType(w.Kind)
	if kind == 0 || w.Track == "" || w.Codec == nil {
		return
	}
	lk.mu.Lock()
	d := lk.in[w.Dest]
	if lk.closed || d == nil || d.p == nil || lk.byTrack[w.Track] != nil {
		lk.mu.Unlock()
		return
	}
	src := &ingressSource{pc: lk.pc.Load(), bound: make(chan struct{}), done: make(chan struct{})}
	up := sfu.NewUpTrack(sfu.UpTrackParams{
		ID: w.Track, Participant: d.identity, Kind: kind, Codec: w.Codec.capability(),
		Source: src, Relayed: true, Logger: d.log, Metrics: lk.l.cfg.Metrics,
	})
	ing := &ingress{d: d, id: w.Track, up: up, src: src}
	d.tracks[w.Track] = ing
	lk.byTrack[w.Track] = ing
	p := d.p
	lk.wg.Add(1)
	lk.mu.Unlock()
	if err := p.PublishTrack(up); err != nil {
		d.log.Info("relayed track refused", "track", w.Track, "err", err)
		src.close()
		lk.forgetIngress(ing)
		lk.wg.Done()
		return
	}
	go func() {
		defer lk.wg.Done()
		up.Run()
		p.UnpublishTrack(up)
		lk.forgetIngress(ing)
	}()
}

// onUnpublish ends one relayed track: its reader returns and unpublishes it.
func (lk *link) onUnpublish(dest, track string) {
	lk.mu.Lock()
	var ing *ingress
	if d := lk.in[dest]; d != nil {
		ing = d.tracks[track]
	}
	if ing != nil {
		delete(ing.d.tracks, track)
		delete(lk.byTrack, track)
	}
	lk.mu.Unlock()
	if ing != nil {
		ing.src.close()
	}
}

// onLeave takes a relay participant out of its room: track.unpublished,
// then participant.left.
func (lk *link) onLeave(dest string) {
	d := lk.dropDest(dest)
	if d == nil {
		return
	}
	d.closeTracks()
	if d.p != nil {
		d.p.Leave()
	}
	d.log.Info("relay participant left over link")
}

// destEnded: a relay participant here got SessionEnded; the sending node
// drops that destination.
func (lk *link) destEnded(dest string) {
	d := lk.dropDest(dest)
	if d == nil {
		return
	}
	d.closeTracks()
	lk.send(wire{T: "ended", Dest: dest})
}

// dropDest removes a destination from the tables and returns it, with
// the tracks it had.
func (lk *link) dropDest(dest string) *ingressDest {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	d := lk.in[dest]
	if d == nil {
		return nil
	}
	delete(lk.in, dest)
	tracks := d.tracks
	for id := range tracks {
		delete(lk.byTrack, id)
	}
	d.tracks = map[string]*ingress{}
	return &ingressDest{id: d.id, room: d.room, identity: d.identity, log: d.log, p: d.p, tracks: tracks}
}

func (lk *link) forgetIngress(ing *ingress) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if lk.closed {
		return
	}
	if ing.d.tracks[ing.id] == ing {
		delete(ing.d.tracks, ing.id)
	}
	if lk.byTrack[ing.id] == ing {
		delete(lk.byTrack, ing.id)
	}
}

// onTrack binds a pion track of the link to the ingress its msid names,
// then reads the sender's RTCP (for the receiver-report interceptor) until
// the track goes. It runs in pion's goroutine for the track.
func (lk *link) onTrack(pc *webrtc.PeerConnection, tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	lk.mu.Lock()
	if lk.closed {
		lk.mu.Unlock()
		return
	}
	ing := lk.byTrack[tr.ID()]
	lk.wg.Add(1)
	lk.mu.Unlock()
	defer lk.wg.Done()
	if ing != nil {
		ing.src.bind(tr)
	} else {
		lk.log.Debug("relayed track nobody published", "track", tr.ID())
	}
	buf := make([]byte, 1500)
	for {
		if _, _, err := recv.Read(buf); err != nil {
			return
		}
	}
}

// ingressSource is an ingress up track's Source: the pion track, once the
// negotiation has brought it; until then reads wait and a keyframe request
// is kept for it.
type ingressSource struct {
	pc    *webrtc.PeerConnection
	bound chan struct{} // closed by bind; track is set before
	done  chan struct{} // closed by close
	track *webrtc.TrackRemote

	mu       sync.Mutex
	closed   bool
	wantsKey bool
}

func (s *ingressSource) bind(tr *webrtc.TrackRemote) {
	s.mu.Lock()
	if s.closed || s.track != nil {
		s.mu.Unlock()
		return
	}
	s.track = tr
	close(s.bound)
	key := s.wantsKey
	s.mu.Unlock()
	if key {
		_ = s.RequestKeyframe()
	}
}

// close ends the source: a read waiting or in progress returns io.EOF.
func (s *ingressSource) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	tr := s.track
	s.mu.Unlock()
	if tr != nil {
		_ = tr.SetReadDeadline(time.Now()) // wakes a blocked Read
	}
}

func (s *ingressSource) ReadRTP(buf []byte) (int, error) {
	select {
	case <-s.bound:
	case <-s.done:
		return 0, io.EOF
	}
	n, _, err := s.track.Read(buf)
	if err != nil {
		select {
		case <-s.done:
			return 0, io.EOF
		default:
		}
		return 0, err
	}
	return n, nil
}

func (s *ingressSource) RequestKeyframe() error {
	s.mu.Lock()
	tr := s.track
	if tr == nil {
		s.wantsKey = true
	}
	s.mu.Unlock()
	if tr == nil || s.pc == nil {
		return nil
	}
	return s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
}

var (
	_ RemoteDest    = (*remoteDest)(nil)
	_ Remote        = (*Links)(nil)
	_ sfu.Source    = (*ingressSource)(nil)
	_ sfu.EventSink = (*ingressSink)(nil)
)
