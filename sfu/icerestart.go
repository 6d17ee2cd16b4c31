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

// RestartSubscriberICE restarts ICE on the participant's subscriber PC:
// it makes and sets an offer with new ICE credentials (and every track
// the PC carries now) and returns its SDP, for the caller to send as the
// subscriber offer; "" when there is no subscriber PC. The offer replaces
// any offer still out (a held session's, never delivered): the client's
// answer to this one settles the negotiation, and changes made meanwhile
// are offered after it. The server's candidates of the new generation
// are held until FlushSubscriberCandidates, so that none reaches the
// client before the offer.
func (p *Participant) RestartSubscriberICE() (string, error) {
	var sdp string
	err := p.ops.do(func() error {
		var err error
		sdp, err = p.restartSubscriber()
		return err
	})
	return sdp, err
}

// restartSubscriber is RestartSubscriberICE's op.
func (p *Participant) restartSubscriber() (string, error) {
	if p.sub == nil || p.isClosed() {
		return "", nil
	}
	p.mu.Lock()
	p.delivered[TargetSubscriber] = false
	p.mu.Unlock()
	p.iceRestarting(TargetSubscriber)
	offer, err := p.sub.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return "", err
	}
	if err := p.sub.SetLocalDescription(offer); err != nil {
		return "", err
	}
	// The offer out before (if any) is superseded: no retry of it.
	p.offerSettled()
	p.negotiating = true
	p.renegotiate = false
	WaitGathering(p.sub)
	return p.sub.LocalDescription().SDP, nil
}

// FlushSubscriberCandidates trickles the server's subscriber candidates
// held since RestartSubscriberICE, once its offer has been queued for
// the client.
func (p *Participant) FlushSubscriberCandidates() { p.flushCandidates(TargetSubscriber) }

// ICEUfrag returns the first a=ice-ufrag of an SDP ("" when none): the
// ICE credentials' generation an offer belongs to.
func ICEUfrag(sdp string) string { return iceUfrag(sdp) }

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
