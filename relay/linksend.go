package relay

// The sending side of a link: a relay's destination on the peer node
// (remoteDest, a RemoteDest). Per relayed track, a DownTrack of the
// relayed up track goes on the link's PeerConnection: the peer's NACKs are
// answered from the source's shared cache, and its PLIs reach the source
// publisher through the relayed track's RequestKeyframe (one throttle, at
// the origin).

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/sfu"
)

var errDestGone = errors.New("remote destination gone")

type destState int

const (
	destPending destState = iota // join sent, no answer yet
	destActive                   // joined
	destDone                     // refused, ended, left or lost
)

// remoteDest is one relay participant in a room of the peer node.
type remoteDest struct {
	lk       *link
	id       string // names it in control messages
	room     string
	identity string
	ended    func(Error)
	woke     chan struct{} // the join's answer (or its failure) is in
	log      *slog.Logger

	// guarded by lk.mu
	state    destState
	returned bool  // Join returned it: from now on ended is called, once
	fail     Error // why a pending join failed
	tracks   map[*sfu.UpTrack]*outTrack
}

// outTrack is one relayed track sent over the link.
type outTrack struct {
	dst    *sfu.UpTrack
	dt     *sfu.DownTrack
	sender *webrtc.RTPSender // loop-owned
	once   sync.Once
}

func (ot *outTrack) close() {
	ot.once.Do(func() {
		ot.dst.RemoveDownTrack(ot.dt)
		ot.dt.Close()
	})
}

// loop operations of the sending side
type (
	opJoin struct {
		rd            *remoteDest
		name, srcRoom string
	}
	opPublish struct {
		rd *remoteDest
		ot *outTrack
	}
	opUnpublish struct {
		dest string
		ot   *outTrack
	}
	opLeave struct {
		dest string
		ots  []*outTrack
	}
)

func (rd *remoteDest) wakeJoin() {
	select {
	case rd.woke <- struct{}{}:
	default:
	}
}

// join asks the peer to admit identity into room as a relay participant.
func (lk *link) join(room, identity, name, srcRoom string, ended func(Error)) (RemoteDest, Error) {
	rd := &remoteDest{
		lk: lk, id: sfu.NewID("RD_"), room: room, identity: identity, ended: ended,
		woke: make(chan struct{}, 1), fail: ErrServerConnectionLost,
		tracks: map[*sfu.UpTrack]*outTrack{},
		log:    lk.log.With("room", room, "participant", identity),
	}
	lk.mu.Lock()
	if lk.closed {
		lk.mu.Unlock()
		return nil, ErrServerConnectionLost
	}
	lk.out[rd.id] = rd
	lk.mu.Unlock()
	lk.post(opJoin{rd: rd, name: name, srcRoom: srcRoom})

	t := time.NewTimer(joinTimeout)
	defer t.Stop()
	select {
	case <-rd.woke:
	case <-lk.dead:
	case <-t.C:
	}
	lk.mu.Lock()
	if rd.state == destActive {
		rd.returned = true
		lk.mu.Unlock()
		return rd, ErrNone
	}
	timedOut := rd.state == destPending
	rd.state = destDone
	if lk.out[rd.id] == rd {
		delete(lk.out, rd.id)
	}
	fail := rd.fail
	lk.mu.Unlock()
	if timedOut {
		rd.log.Warn("relay join timed out")
		lk.post(opLeave{dest: rd.id}) // undo it there if it comes late
	}
	return nil, fail
}

// onJoinAnswer handles the peer's joined, refused and ended for one of our
// destinations.
func (lk *link) onJoinAnswer(w *wire) {
	lk.mu.Lock()
	rd := lk.out[w.Dest]
	if rd == nil {
		lk.mu.Unlock()
		return
	}
	if w.T == "joined" {
		if rd.state == destPending {
			rd.state = destActive
		}
		lk.mu.Unlock()
		rd.wakeJoin()
		return
	}
	// refused, or ended: the room ended there or the relay participant
	// was removed.
	ended := w.T == "ended" && rd.state == destActive && rd.returned
	rd.state, rd.fail = destDone, ErrFailedJoinDest
	delete(lk.out, rd.id)
	ots := rd.takeTracksLocked()
	lk.mu.Unlock()
	rd.wakeJoin()
	if lk.dropTracks(ots) {
		lk.negotiate()
	}
	if ended {
		rd.log.Info("remote destination ended")
		rd.ended(ErrNone)
	}
}

// Publish implements RemoteDest.
func (rd *remoteDest) Publish(dst *sfu.UpTrack) error {
	lk := rd.lk
	dt := sfu.NewDownTrack(sfu.DownTrackParams{Up: dst, StreamID: rd.identity, Logger: rd.log, Metrics: lk.l.cfg.Metrics})
	ot := &outTrack{dst: dst, dt: dt}
	lk.mu.Lock()
	if lk.closed || rd.state != destActive || rd.tracks[dst] != nil {
		lk.mu.Unlock()
		dt.Close()
		return errDestGone
	}
	rd.tracks[dst] = ot
	lk.mu.Unlock()
	if !dst.AddDownTrack(dt) {
		rd.Unpublish(dst)
		return errDestGone
	}
	lk.post(opPublish{rd: rd, ot: ot})
	return nil
}

// Unpublish implements RemoteDest.
func (rd *remoteDest) Unpublish(dst *sfu.UpTrack) {
	lk := rd.lk
	lk.mu.Lock()
	ot := rd.tracks[dst]
	delete(rd.tracks, dst)
	lk.mu.Unlock()
	dst.Close()
	if ot != nil {
		ot.close()
		lk.post(opUnpublish{dest: rd.id, ot: ot})
	}
}

// Leave implements RemoteDest.
func (rd *remoteDest) Leave() {
	lk := rd.lk
	lk.mu.Lock()
	if rd.state != destActive {
		lk.mu.Unlock()
		return
	}
	rd.state = destDone
	delete(lk.out, rd.id)
	ots := rd.takeTracksLocked()
	lk.mu.Unlock()
	for _, ot := range ots {
		ot.dst.Close()
		ot.close()
	}
	lk.post(opLeave{dest: rd.id, ots: ots})
}

// publish puts ot on the PeerConnection and announces it (loop).
func (lk *link) publish(rd *remoteDest, ot *outTrack) {
	lk.mu.Lock()
	gone := lk.closed || rd.state != destActive || rd.tracks[ot.dst] != ot
	lk.mu.Unlock()
	pc := lk.pc.Load()
	if gone || pc == nil {
		return
	}
	sender, err := pc.AddTrack(ot.dt)
	if err != nil {
		rd.log.Warn("relay track not sent", "track", ot.dst.ID(), "err", err)
		return
	}
	ot.sender = sender
	ot.dt.AttachSender(sender)
	if lk.offerer {
		ot.dt.SetReady() // the link is connected: joins wait for it
	} else {
		lk.neg.unready = append(lk.neg.unready, ot) // see linkneg.go
	}
	lk.send(wire{
		T: "publish", Dest: rd.id, Track: ot.dst.ID(), Kind: ot.dst.Kind().String(),
		Codec: toWireCodec(ot.dst.Codec()),
	})
	lk.negotiate()
}

// unpublish takes tracks off the PeerConnection and tells the peer (loop).
func (lk *link) unpublish(dest string, ots []*outTrack) {
	removed := lk.dropTracks(ots)
	for _, ot := range ots {
		lk.send(wire{T: "unpublish", Dest: dest, Track: ot.dst.ID()})
	}
	if removed {
		lk.negotiate()
	}
}

// dropTracks closes ots and removes their senders; it reports whether any
// was on the PeerConnection (loop).
func (lk *link) dropTracks(ots []*outTrack) bool {
	pc := lk.pc.Load()
	removed := false
	for _, ot := range ots {
		ot.close()
		if ot.sender == nil || pc == nil {
			continue
		}
		if err := pc.RemoveTrack(ot.sender); err != nil {
			lk.log.Debug("remove relayed track", "track", ot.dst.ID(), "err", err)
		}
		ot.sender = nil // an unready answerer track is dropped at the next answer
		removed = true
	}
	return removed
}

// takeTracksLocked empties rd's tracks and returns them, for the caller to
// close outside the link's lock.
func (rd *remoteDest) takeTracksLocked() []*outTrack {
	ots := make([]*outTrack, 0, len(rd.tracks))
	for _, ot := range rd.tracks {
		ots = append(ots, ot)
	}
	rd.tracks = nil
	return ots
}
