package sfu

// ICE restarts (PROTOCOL.md 1.1 §5): a client whose network changed (or
// whose session resumed) restarts ICE on both its PCs without
// republishing. On the publisher PC the client offers with new ICE
// credentials and pion answers the restart on the same PC (answerOffer):
// tracks, ids and mids stay. On the subscriber PC the server offers:
// RestartSubscriberICE makes that offer, with new credentials of its own.
//
// Each restart is counted, and its outcome (the PC connected again, or
// failed or closed first) and duration observed, in metrics.Resume.

import (
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// RestartSubscriberICE restarts ICE on the participant's subscriber PC
// (if it has one) for a resumed session: an offer with new ICE
// credentials and every track the PC carries now, posted as its
// SubscriberOffer. It returns once that offer, and every event posted
// before it, has been delivered to the participant's EventSink, so the
// caller knows the offer is the last one it got. The server's candidates
// of the new generation follow the offer. It also ends HoldSubscriber.
//
// pion cannot restart while an offer of the PC is still unanswered (it
// refuses a new local offer in have-local-offer, and a rollback): then
// that offer is posted again instead, and the restart follows its answer.
func (p *Participant) RestartSubscriberICE() error {
	err := p.ops.do(func() error { return p.restartSubscriber(true) })
	p.inbox.flush()
	return err
}

// restartSubscriber is RestartSubscriberICE's op (resend: an unanswered
// offer is posted again).
func (p *Participant) restartSubscriber(resend bool) error {
	p.subHeld = false
	if p.sub == nil || p.isClosed() {
		return nil
	}
	if p.subscriberGone() {
		// The page reloaded (reloadpc.go): a new PC, offered at once.
		p.replaceSubscriber()
		return nil
	}
	if p.negotiating {
		// Cancel the retry of a refused offer: it is sent now.
		p.retryPending = false
		if p.retryTimer != nil {
			p.retryTimer.Stop()
			p.retryTimer = nil
		}
		p.restartPending = true
		if ld := p.sub.PendingLocalDescription(); resend && ld != nil {
			p.inbox.post(SubscriberOffer{SDP: ld.SDP})
		}
		return nil
	}
	p.restartPending = false
	p.mu.Lock()
	p.delivered[TargetSubscriber] = false
	p.mu.Unlock()
	p.iceRestarting(TargetSubscriber)
	offer, err := p.sub.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return err
	}
	if err := p.sub.SetLocalDescription(offer); err != nil {
		return err
	}
	p.negotiating = true
	p.renegotiate = false
	WaitGathering(p.sub)
	p.inbox.post(SubscriberOffer{SDP: p.sub.LocalDescription().SDP})
	p.flushCandidates(TargetSubscriber)
	return nil
}

// HoldSubscriber stops (on) the subscriber PC's offers while the
// participant's session is held: no one would get them, and an offer out
// would keep the resume from restarting ICE at once. Changes wait and go
// with the restart's offer (RestartSubscriberICE ends the hold).
func (p *Participant) HoldSubscriber(on bool) {
	p.ops.post(func() {
		p.subHeld = on
		if !on {
			p.negotiate()
		}
	})
}

func iceUfrag(sdp string) string {
	const attr = "a=ice-ufrag:"
	i := strings.Index(sdp, attr)
	if i < 0 {
		return ""
	}
	rest := sdp[i+len(attr):]
	if j := strings.IndexAny(rest, "\r\n"); j >= 0 {
		rest = rest[:j]
	}
	return strings.TrimSpace(rest)
}

// IsICERestart reports whether offer restarts ICE on a PC whose current
// remote description is prev (nil: a first offer, no restart): its ICE
// username fragment changed (RFC 8445 §9: a restart is new credentials).
func IsICERestart(prev *webrtc.SessionDescription, offer string) bool {
	if prev == nil {
		return false
	}
	old, cur := iceUfrag(prev.SDP), iceUfrag(offer)
	return old != "" && cur != "" && old != cur
}

// iceRestarting notes that t's PC restarts ICE now, for the outcome and
// duration metrics (iceStateChanged).
func (p *Participant) iceRestarting(t Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.restartAt == nil {
		p.restartAt = map[Target]time.Time{}
	}
	if _, pending := p.restartAt[t]; pending {
		// The restart before never settled: count it failed.
		p.room.sfu.cfg.Metrics.Resume.ICERestarts.WithLabelValues(string(t), "failed").Inc()
	}
	p.restartAt[t] = time.Now()
}

// iceStateChanged settles a pending ICE restart of t's PC: connected
// observes its duration; failed or closed counts it failed. pion calls it
// from its own goroutine.
func (p *Participant) iceStateChanged(t Target, s webrtc.PeerConnectionState) {
	var outcome string
	switch s {
	case webrtc.PeerConnectionStateConnected:
		outcome = "connected"
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		outcome = "failed"
	default:
		return
	}
	p.mu.Lock()
	at, ok := p.restartAt[t]
	delete(p.restartAt, t)
	p.mu.Unlock()
	if !ok {
		return
	}
	m := p.room.sfu.cfg.Metrics.Resume
	m.ICERestarts.WithLabelValues(string(t), outcome).Inc()
	if outcome == "connected" {
		m.ICERestartSeconds.WithLabelValues(string(t)).Observe(time.Since(at).Seconds())
		if t == TargetSubscriber {
			p.ops.post(p.keyframesAfterRestart)
		} else {
			// The publisher's restarted path carries media again: what
			// was lost meanwhile is past retransmission, so ask for a
			// keyframe (a request made during the restart may have been
			// lost with the old path).
			go p.keyframesOfPublished()
		}
	}
}

// keyframesAfterRestart asks for a keyframe of every track the subscriber
// PC carries, once its restarted ICE connected: what was lost meanwhile
// is past retransmission, and its decoders restart at once.
func (p *Participant) keyframesAfterRestart() {
	for up := range p.down {
		up.RequestKeyframe()
	}
}

// keyframesOfPublished asks for a keyframe of each of the participant's
// published tracks.
func (p *Participant) keyframesOfPublished() {
	for _, up := range p.PublishedTracks() {
		up.RequestKeyframe()
	}
}
