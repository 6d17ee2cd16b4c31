package sfu

// A held session's PeerConnections replaced (reload.go tells why): the
// publisher PC by the new page's offer, the subscriber PC at the resume
// when the old one is gone or by the new page's answer.

import (
	"time"

	"github.com/pion/webrtc/v4"
)

// HoldPublisher keeps the participant's published tracks when its
// publisher PC closes or fails (on: its session is held), or ends the
// hold (off: its session resumed): they are kept until a publisher PC
// connects again, at most the reconnect grace, then a PC that closes
// ends them again.
func (p *Participant) HoldPublisher(on bool) {
	tracks := p.PublishedTracks() // room.mu before p.mu
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pubHeld = on
	if p.keepTimer != nil {
		p.keepTimer.Stop()
		p.keepTimer = nil
	}
	if on && !p.closed {
		// Under p.mu: a close (releaseKeep) is either before, and seen
		// here, or after, and cuts these.
		p.pubKeep = true
		for _, t := range tracks {
			t.KeepOnSourceEnd(true)
		}
	} else if !on && p.pubKeep {
		p.keepTimer = time.AfterFunc(p.room.sfu.cfg.ReconnectGrace, p.releaseUnlessHeld)
	}
}

// adoptWait is how long a resumed session's tracks are still kept once
// its new publisher PC has connected: pion hands over a track (OnTrack,
// adoptedTrack) at its first packet, which a browser sends only once its
// camera and encoder run again, after ICE and DTLS. On a loaded machine
// that took over 200 ms after the connection (Chromium's camera restart
// alone ~2 s), and a track released before its new source came had
// already lingered out: it ended, and its viewers lost it. A track the
// new page does not publish again ends this much later.
const adoptWait = 5 * time.Second

// publisherConnected ends the keeping of a resumed session's tracks,
// adoptWait after its publisher PC connected again. pion calls it.
func (p *Participant) publisherConnected() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.pubKeep || p.pubHeld {
		return
	}
	if p.keepTimer != nil {
		p.keepTimer.Stop()
	}
	p.keepTimer = time.AfterFunc(adoptWait, p.releaseUnlessHeld)
}

// releaseUnlessHeld ends the keeping unless the session is held again.
func (p *Participant) releaseUnlessHeld() {
	p.mu.Lock()
	release := p.pubKeep && !p.pubHeld
	p.mu.Unlock()
	if release {
		p.releaseKeep(false)
	}
}

// releaseKeep ends the keeping: a track whose source is gone ends (after
// its linger; cut: at once, the participant closes its publisher).
func (p *Participant) releaseKeep(cut bool) {
	tracks := p.PublishedTracks() // room.mu before p.mu
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.pubKeep
	p.pubKeep = false
	if p.keepTimer != nil {
		p.keepTimer.Stop()
		p.keepTimer = nil
	}
	if !was && !cut {
		return
	}
	for _, t := range tracks {
		if cut {
			t.EndOnSourceEnd()
		} else {
			t.KeepOnSourceEnd(false)
		}
	}
}

// publisherReplaced returns pub when offer needs a new publisher PC that
// takes over pub's tracks: the participant's tracks are kept (held, or
// resumed and not yet connected) and pub is closed or failed, or offer
// comes with another DTLS certificate (a reloaded page). nil: offer goes
// to pub as any offer.
func (p *Participant) publisherReplaced(pub *publisherPC, offer string) *publisherPC {
	if pub == nil {
		return nil
	}
	p.mu.Lock()
	keep := p.pubKeep
	p.mu.Unlock()
	if !keep {
		return nil
	}
	if pcGone(pub.pc) {
		return pub
	}
	if rd := pub.pc.RemoteDescription(); rd != nil && !SameDTLS(rd.SDP, offer) {
		return pub
	}
	return nil
}

// adoptTracks gives next, the PC replacing old, old's up tracks by the
// mids of offer that take over old's (MatchMids).
func (p *Participant) adoptTracks(old, next *publisherPC, offer string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next.adopt = map[string]*UpTrack{}
	for mid, was := range MatchMids(old.offer, offer) {
		if up := old.byMid[was]; up != nil {
			next.adopt[mid] = up
		}
	}
	p.log.Info("publisher PC replaced", "tracks", len(next.adopt))
	p.room.sfu.cfg.Metrics.Resume.PCReplaced.WithLabelValues(string(TargetPublisher)).Inc()
}

// adoptedTrack makes tr (mid's, of pub) the new source of the up track
// pub took over for mid, if any, and then waits, counted in pub's
// readers, until that track ends; it reports whether it did. It runs in
// pion's OnTrack goroutine.
func (p *Participant) adoptedTrack(pub *publisherPC, mid string, tr *webrtc.TrackRemote) bool {
	p.mu.Lock()
	up := pub.adopt[mid]
	p.mu.Unlock()
	if up == nil {
		return false
	}
	slot, run, ok := up.ReplaceSource(tr.RID(), p.source(pub, tr))
	if !ok {
		return true // ended meanwhile: the new PC's track is not published
	}
	p.trackOfMid(pub, mid, up)
	if run {
		up.RunLayer(slot)
	}
	<-up.Done()
	return true
}

// trackOfMid notes up as mid's track of pub.
func (p *Participant) trackOfMid(pub *publisherPC, mid string, up *UpTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pub.byMid == nil {
		pub.byMid = map[string]*UpTrack{}
	}
	pub.byMid[mid] = up
}

// midOf returns the mid of recv's transceiver on pc ("" if none).
func midOf(pc *webrtc.PeerConnection, recv *webrtc.RTPReceiver) string {
	for _, t := range pc.GetTransceivers() {
		if t.Receiver() == recv {
			return t.Mid()
		}
	}
	return ""
}

// subscriberGone reports whether the subscriber PC must be replaced for
// a resumed session: it closed or failed (the page reloaded). Op only.
func (p *Participant) subscriberGone() bool {
	return p.sub != nil && pcGone(p.sub)
}

// replaceSubscriber closes the subscriber PC and makes a new one with the
// same tracks (new down tracks of the same up tracks), offered at once:
// the page that reloaded has a new PC to answer it. Op only.
func (p *Participant) replaceSubscriber() {
	ups := make([]*UpTrack, 0, len(p.down))
	for up, e := range p.down {
		ups = append(ups, up)
		p.removeAdapted(e.dt)
		e.dt.Close()
	}
	clear(p.down)
	old := p.sub
	p.sub = nil
	p.subConnected = false
	p.offerSettled()
	p.restartPending = false
	p.mu.Lock()
	p.delivered[TargetSubscriber] = false
	delete(p.localCands, TargetSubscriber)
	p.mu.Unlock()
	delete(p.remoteCands, TargetSubscriber)
	_ = old.Close()
	p.log.Info("subscriber PC replaced", "tracks", len(ups))
	p.room.sfu.cfg.Metrics.Resume.PCReplaced.WithLabelValues(string(TargetSubscriber)).Inc()
	for _, up := range ups {
		p.addDown(up)
	}
	p.renegotiate = true
	p.negotiate()
}

// source is tr's, of pub, as an UpTrack Source: a 1.1 session's lingers
// once its PC is gone (sourceLinger).
func (p *Participant) source(pub *publisherPC, tr *webrtc.TrackRemote) *remoteSource {
	s := &remoteSource{track: tr, pc: pub.pc}
	if p.v11 {
		s.lingerFor = sourceLinger
	}
	return s
}

// linger implements lingerer: a 1.1 session's track whose PC is gone
// waits for the session to be held.
func (s *remoteSource) linger() time.Duration {
	if s.lingerFor > 0 && pcGone(s.pc) {
		return s.lingerFor
	}
	return 0
}
