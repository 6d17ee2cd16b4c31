package sfu

import (
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"
)

// The subscriber PC, where the server offers. The room asks for changes
// (subscribe, unsubscribe) from any goroutine; they are queued under p.mu
// and one op, syncSubscriber, applies all that are waiting and offers
// once. One offer is out at a time: what changes meanwhile is offered
// when its answer is in.

// A refused offer is sent again after offerRetryDelay: offerRetryFirst,
// doubling up to offerRetryMax. The first retry comes fast, since a
// refusal is most likely a client busy with something else for a moment;
// a client that keeps refusing gets one offer every 16 s, which costs
// nothing and lets it recover.
const (
	offerRetryFirst = 500 * time.Millisecond
	offerRetryMax   = 16 * time.Second
)

// offerRetryDelay is how long to wait before sending a refused offer again
// after the n-th refusal in a row (n >= 1).
func offerRetryDelay(n int) time.Duration {
	d := offerRetryFirst
	for i := 1; i < n && d < offerRetryMax; i++ {
		d *= 2
	}
	return min(d, offerRetryMax)
}

// subChange is one subscription the room asked for: add (or remove) the
// down track of up.
type subChange struct {
	up  *UpTrack
	add bool
}

// subscribe asks for down tracks of ups on the subscriber PC. It never
// blocks: the op queue adds them and renegotiates once.
func (p *Participant) subscribe(ups []*UpTrack) { p.changeSubs(ups, true) }

// subscribeNow is subscribe, returning once the op has run: the offer is
// posted (or, if one is out, the tracks wait for the next).
func (p *Participant) subscribeNow(ups []*UpTrack) {
	p.changeSubs(ups, true)
	_ = p.ops.do(func() error { p.syncSubscriber(); return nil })
}

// unsubscribe asks for the down track of up to be removed.
func (p *Participant) unsubscribe(up *UpTrack) { p.changeSubs([]*UpTrack{up}, false) }

func (p *Participant) changeSubs(ups []*UpTrack, add bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	for _, up := range ups {
		p.subChanges = append(p.subChanges, subChange{up: up, add: add})
	}
	queue := !p.syncQueued
	p.syncQueued = true
	p.mu.Unlock()
	if queue {
		p.ops.post(p.syncSubscriber)
	}
}

// syncSubscriber is the op that applies every subscription change asked
// for so far, then offers them (or, while an offer is out, leaves them for
// the next).
func (p *Participant) syncSubscriber() {
	p.mu.Lock()
	changes := p.subChanges
	p.subChanges = nil
	p.syncQueued = false
	p.mu.Unlock()
	for _, c := range changes {
		changed := false
		if c.add {
			changed = p.addDown(c.up)
		} else {
			changed = p.removeDown(c.up)
		}
		p.renegotiate = p.renegotiate || changed
	}
	p.negotiate()
}

// addDown adds a down track of up to the subscriber PC (made on first
// use); it reports whether the PC changed.
func (p *Participant) addDown(up *UpTrack) bool {
	if p.down[up] != nil {
		return false
	}
	if p.sub == nil {
		pc, err := p.newPC(TargetSubscriber)
		if err != nil {
			p.log.Error("subscriber pc", "err", err)
			return false
		}
		p.sub = pc
	}
	dt := NewDownTrack(DownTrackParams{
		Up: up, StreamID: up.Participant(), Logger: p.log, Metrics: p.room.sfu.cfg.Metrics,
		Notify: func(ev Event) { p.inbox.post(ev) },
		bwe:    p.bwe,
		direct: p.direct,
	})
	dt.SetTarget(p.initialTarget(up))
	if !up.AddDownTrack(dt) {
		dt.Close() // the track ended meanwhile
		return false
	}
	sender, err := p.sub.AddTrack(dt)
	if err != nil {
		dt.Close()
		p.log.Warn("add track", "err", err)
		return false
	}
	for _, tr := range p.sub.GetTransceivers() {
		if tr.Sender() == sender {
			if err := tr.SetCodecPreferences(codecPreference(up.Codec(), up.Kind() == webrtc.RTPCodecTypeVideo)); err != nil {
				p.log.Warn("codec preferences", "err", err)
			}
		}
	}
	dt.AttachSender(sender)
	if p.subConnected {
		dt.SetReady()
	}
	p.down[up] = &downEntry{dt: dt, sender: sender}
	p.addAdapted(dt)
	up.keyframeForNewSubscriber(dt.Target().Slot) // the new subscriber starts at a keyframe
	return true
}

// removeDown removes the down track of up; it reports whether the PC
// changed.
func (p *Participant) removeDown(up *UpTrack) bool {
	e := p.down[up]
	if e == nil {
		return false
	}
	delete(p.down, up)
	p.removeAdapted(e.dt)
	e.dt.Close()
	if err := p.sub.RemoveTrack(e.sender); err != nil {
		p.log.Debug("remove track", "err", err)
	}
	return true
}

// subscriberConnected is the op run when the subscriber PC connects: its
// down tracks may start.
func (p *Participant) subscriberConnected() {
	path := "pion"
	if p.direct != nil {
		path = p.direct.connected() // before the tracks start: they all go direct
	}
	p.room.sfu.cfg.Metrics.SendPaths.WithLabelValues(path).Inc()
	p.subConnected = true
	for _, e := range p.down {
		e.dt.SetReady()
	}
}

// negotiate sends a new subscriber offer if the PC changed since the last
// one and no offer is out; an op.
func (p *Participant) negotiate() {
	if !p.renegotiate || p.negotiating || p.sub == nil || p.subHeld {
		return
	}
	offer, err := p.sub.CreateOffer(nil)
	if err != nil {
		p.log.Error("create offer", "err", err)
		return
	}
	if err := p.sub.SetLocalDescription(offer); err != nil {
		p.log.Error("set local offer", "err", err)
		return
	}
	p.negotiating = true
	p.renegotiate = false
	WaitGathering(p.sub)
	p.inbox.post(SubscriberOffer{SDP: p.sub.LocalDescription().SDP})
	p.flushCandidates(TargetSubscriber)
}

// SetSubscriberAnswer applies the client's answer to the last subscriber
// offer. An answer refused before it is applied (ValidateAnswer, or pion
// refusing it whole) gets ErrBadSDP and changes nothing: the offer is
// still out, and a proper answer to it is still taken. An answer pion
// applied in part also gets ErrBadSDP; the server then offers again from
// where the PC stands.
func (p *Participant) SetSubscriberAnswer(answer string) error {
	return p.ops.do(func() error { return p.applyAnswer(answer) })
}

// applyAnswer is SetSubscriberAnswer's op. The next offer, if the PC
// changed meanwhile, is an op of its own: the caller does not wait for it.
func (p *Participant) applyAnswer(answer string) error {
	if !p.negotiating || p.sub == nil {
		return ErrWrongState
	}
	if err := ValidateAnswer(answer, p.offeredMedia()); err != nil {
		return err
	}
	if rd := p.sub.CurrentRemoteDescription(); rd != nil && !SameDTLS(rd.SDP, answer) {
		// A reloaded page answered with a new PC (reloadpc.go): the
		// old one cannot take its certificate; a new PC is offered.
		p.replaceSubscriber()
		return nil
	}
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		if p.sub.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
			p.offerSettled()
			p.renegotiate = true
			p.ops.post(p.negotiate)
		}
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	p.offerSettled()
	p.applyCandidates(TargetSubscriber, p.sub)
	switch {
	case p.restartPending:
		// A resume's ICE restart waited for this answer (icerestart.go).
		p.ops.post(func() {
			if err := p.restartSubscriber(false); err != nil {
				p.log.Warn("restarting the subscriber's ICE", "err", err)
			}
		})
	case p.renegotiate:
		p.ops.post(p.negotiate)
	}
	return nil
}

// offerSettled ends the negotiation of the offer that was out.
func (p *Participant) offerSettled() {
	p.negotiating = false
	p.offerRetries = 0
	p.retryPending = false
	if p.retryTimer != nil {
		p.retryTimer.Stop()
		p.retryTimer = nil
	}
}

// offeredMedia is the number of m-lines of the subscriber offer awaiting
// its answer.
func (p *Participant) offeredMedia() int {
	ld := p.sub.PendingLocalDescription()
	if ld == nil {
		return 0
	}
	d, err := ld.Unmarshal()
	if err != nil {
		return 0
	}
	return len(d.MediaDescriptions)
}

// SubscriberOfferFailed tells the participant that the client answered the
// subscriber offer with an error. pion cannot roll a local offer back (a
// rollback in have-local-offer is refused), and a new PC would need a new
// one on the client too, so the offer stays pending and the same offer is
// sent again after offerRetryDelay, until the client answers it; changes
// made meanwhile are offered after that answer, as during any negotiation.
func (p *Participant) SubscriberOfferFailed() { p.ops.post(p.offerRefused) }

// offerRefused is SubscriberOfferFailed's op.
func (p *Participant) offerRefused() {
	if !p.negotiating || p.retryPending {
		return
	}
	p.offerRetries++
	p.retryPending = true
	delay := offerRetryDelay(p.offerRetries)
	p.log.Info("subscriber offer refused; offering it again", "refusals", p.offerRetries, "in", delay)
	p.retryTimer = time.AfterFunc(delay, func() { p.ops.post(p.resendOffer) })
}

// resendOffer is the op that sends the pending subscriber offer again.
func (p *Participant) resendOffer() {
	if !p.retryPending {
		return // answered meanwhile
	}
	p.retryPending = false
	p.retryTimer = nil
	ld := p.sub.PendingLocalDescription()
	if !p.negotiating || ld == nil || p.subHeld {
		return
	}
	p.inbox.post(SubscriberOffer{SDP: ld.SDP})
}
