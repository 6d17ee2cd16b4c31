package sfu

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// publisherPC is a participant's publisher PeerConnection and the
// goroutines reading its tracks (onTrack), so that closing it can wait for
// exactly its tracks to be unpublished.
type publisherPC struct {
	pc      *webrtc.PeerConnection
	readers sync.WaitGroup

	// Guarded by the participant's mu: the rids of the last offer by
	// mid, and the simulcast up track of each receiver (simulcast.go).
	rids      map[string][]RIDInfo
	simulcast map[*webrtc.RTPReceiver]*UpTrack
	// Guarded by the participant's mu (reloadpc.go): the last offer
	// applied, the up track of each mid, and for a PC that replaced
	// another, the up tracks its mids take over.
	offer string
	byMid map[string]*UpTrack
	adopt map[string]*UpTrack
}

// HandleOffer answers the client's publisher-PC offer. deliver is called
// with the answer before any server candidate for that PC is sent, so the
// client gets its answer first; it is called from the participant's op
// goroutine with no lock held, before HandleOffer returns, and must not
// call the participant's methods that wait for an op (HandleOffer,
// SetSubscriberAnswer, AddICECandidate, ClosePublisher, SetRole, Leave).
func (p *Participant) HandleOffer(offer string, deliver func(answer string)) error {
	offer = withoutRecvRIDs(offer) // the server sends nothing on this PC
	if err := ValidateSDP(offer); err != nil {
		return err
	}
	if !p.room.MayPublish(p) {
		return ErrForbidden
	}
	return p.ops.do(func() error { return p.answerOffer(offer, deliver) })
}

// answerOffer is HandleOffer's op.
func (p *Participant) answerOffer(offer string, deliver func(answer string)) error {
	if p.isClosed() {
		return ErrClosed
	}
	// Asked again in order with the ops: SetRole's ClosePublisher may
	// have run since HandleOffer asked.
	if !p.room.MayPublish(p) {
		return ErrForbidden
	}
	pub, created := p.pub, false
	replaced := p.publisherReplaced(pub, offer)
	if replaced != nil {
		pub = nil
	}
	if pub == nil {
		pc, err := p.newPC(TargetPublisher)
		if err != nil {
			return err
		}
		pub, created = &publisherPC{pc: pc}, true
		if replaced != nil {
			p.adoptTracks(replaced, pub, offer)
		}
		pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) { p.onTrack(pub, tr, recv) })
		p.setPub(pub)
	}
	pc := pub.pc
	fail := func(err error) error {
		if created {
			p.setPub(replaced)
			_ = pc.Close()
		}
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	if IsICERestart(pc.RemoteDescription(), offer) {
		// The client restarts ICE (icerestart.go): the new generation's
		// candidates wait for the answer.
		p.mu.Lock()
		p.delivered[TargetPublisher] = false
		p.mu.Unlock()
		p.iceRestarting(TargetPublisher)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(err)
	}
	rids := SimulcastRIDs(offer)
	p.mu.Lock()
	pub.rids = rids
	pub.offer = offer
	p.mu.Unlock()
	noRTXForSimulcast(pc, offer, rids)
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(err)
	}
	p.applyCandidates(TargetPublisher, pc)
	WaitGathering(pc)
	deliver(pc.LocalDescription().SDP)
	p.flushCandidates(TargetPublisher)
	if replaced != nil {
		// Its tracks' readers wait for the new PC's sources.
		_ = replaced.pc.Close()
	}
	return nil
}

// setPub replaces the publisher PC; only ops call it.
func (p *Participant) setPub(pub *publisherPC) {
	p.mu.Lock()
	p.pub = pub
	p.mu.Unlock()
}

// onTrack runs in pion's goroutine for each track the publisher sends: it
// publishes the track, reads it until the PC closes, then unpublishes it.
func (p *Participant) onTrack(pub *publisherPC, tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.closed || p.pub != pub {
		p.mu.Unlock()
		return // closed, or closing: its readers are being waited for
	}
	p.pubWG.Add(2)
	pub.readers.Add(2)
	p.mu.Unlock()
	done := func() {
		pub.readers.Done()
		p.pubWG.Done()
	}
	defer done()
	rid := tr.RID()
	mid := midOf(pub.pc, recv)
	go func() {
		// Read the publisher's RTCP (sender reports) so the receiver
		// report interceptor sees it; ends when the PC closes.
		defer done()
		buf := make([]byte, 1500)
		for {
			var err error
			if rid != "" {
				_, _, err = recv.ReadSimulcast(buf, rid)
			} else {
				_, _, err = recv.Read(buf)
			}
			if err != nil {
				return
			}
		}
	}()
	if p.adoptedTrack(pub, mid, tr) {
		return
	}
	if rid != "" {
		p.runSimulcastLayer(pub, tr, recv)
		return
	}
	up := NewUpTrack(UpTrackParams{
		ID:          NewID("TR_"),
		Participant: p.identity,
		Kind:        tr.Kind(),
		Codec:       tr.Codec().RTPCodecCapability,
		Source:      p.source(pub, tr),
		Logger:      p.log,
		Metrics:     p.room.sfu.cfg.Metrics,
		Flush:       p.room.sfu.cfg.API.Flush,
	})
	p.trackOfMid(pub, mid, up)
	if !p.room.publish(p, up) {
		return // may not publish (any more): the PC is being closed
	}
	up.Run()
	p.room.unpublish(p, up)
}

// runSimulcastLayer runs one rid of a simulcast track (pion calls OnTrack
// once per rid): the first of the receiver's rids to arrive makes the up
// track, publishes it, reads its layer, and unpublishes the track once
// every layer has ended; the others read their layer.
func (p *Participant) runSimulcastLayer(pub *publisherPC, tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	mid := midOf(pub.pc, recv)
	p.mu.Lock()
	up := pub.simulcast[recv]
	owner := up == nil
	if owner {
		rids := pub.rids[mid]
		if len(rids) == 0 {
			for _, t := range recv.Tracks() { // no offer rids for the mid: pion's
				if len(rids) < MaxLayers && t.RID() != "" {
					rids = append(rids, RIDInfo{RID: t.RID()})
				}
			}
		}
		up = NewUpTrack(UpTrackParams{
			ID:          NewID("TR_"),
			Participant: p.identity,
			Kind:        tr.Kind(),
			Codec:       tr.Codec().RTPCodecCapability,
			RIDs:        rids,
			Logger:      p.log,
			Metrics:     p.room.sfu.cfg.Metrics,
			Flush:       p.room.sfu.cfg.API.Flush,
		})
		if pub.simulcast == nil {
			pub.simulcast = map[*webrtc.RTPReceiver]*UpTrack{}
		}
		pub.simulcast[recv] = up
		if pub.byMid == nil {
			pub.byMid = map[string]*UpTrack{}
		}
		pub.byMid[mid] = up
	}
	p.mu.Unlock()
	slot, ok := up.AttachLayer(tr.RID(), p.source(pub, tr))
	if !owner {
		if ok {
			up.RunLayer(slot)
		}
		return
	}
	defer func() {
		p.mu.Lock()
		delete(pub.simulcast, recv)
		p.mu.Unlock()
	}()
	if !ok {
		up.Close()
		return
	}
	if !p.room.publish(p, up) {
		up.Close() // may not publish (any more): the PC is being closed
		return
	}
	p.startDynacast()
	up.RunLayer(slot)
	<-up.Done()
	p.room.unpublish(p, up)
}

// remoteSource is a publisher's WebRTC track as an UpTrack Source.
type remoteSource struct {
	track     *webrtc.TrackRemote
	pc        *webrtc.PeerConnection
	lingerFor time.Duration // reloadpc.go
}

func (s *remoteSource) ReadRTP(buf []byte) (int, error) {
	n, _, err := s.track.Read(buf)
	return n, err
}

func (s *remoteSource) RequestKeyframe() error {
	return s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(s.track.SSRC())}})
}

// ClosePublisher closes the publisher PC: its tracks are unpublished on
// every subscriber at once. It returns when they are (every subscriber
// told, its down tracks stopped; the subscribers' renegotiations follow on
// their own op queues). Since it waits for the goroutines that read the
// tracks, it must not be called from one of them: not from the observer's
// TrackChanged for one of p's own tracks (call it from another goroutine).
func (p *Participant) ClosePublisher() {
	var pub *publisherPC
	if err := p.ops.do(func() error { pub = p.closePublisher(); return nil }); err != nil {
		// Closing: close's op closes the PC; its readers are counted.
		p.pubWG.Wait()
		return
	}
	if pub != nil {
		// Outside the op: the readers unpublish their tracks, which
		// calls the observer, which may call back into p.
		pub.readers.Wait()
	}
}

// closePublisher is ClosePublisher's op: it closes the publisher PC and
// forgets its candidates; the next offer makes a new PC.
func (p *Participant) closePublisher() *publisherPC {
	p.releaseKeep(true) // its tracks end with it
	p.mu.Lock()
	pub := p.pub
	p.pub = nil
	p.delivered[TargetPublisher] = false
	delete(p.localCands, TargetPublisher)
	p.mu.Unlock()
	delete(p.remoteCands, TargetPublisher)
	if pub != nil {
		_ = pub.pc.GracefulClose()
	}
	return pub
}
