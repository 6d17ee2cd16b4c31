package sfu

import (
	"fmt"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// maxQueuedCandidates bounds the remote candidates kept before a PC has its
// remote description: a browser sends a handful; more is abuse.
const maxQueuedCandidates = 64

// gatherTimeout bounds the wait for local ICE candidates before an offer or
// answer is sent. With one UDP mux and no STUN, gathering takes well under a
// millisecond; the bound only matters if something is broken.
const gatherTimeout = 2 * time.Second

// WaitGathering waits until pc has gathered its local ICE candidates (so
// that its local description carries them), at most gatherTimeout.
func WaitGathering(pc *webrtc.PeerConnection) {
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-webrtc.GatheringCompletePromise(pc):
	case <-t.C:
	}
}

// newPC makes one of the participant's PeerConnections; only ops call it.
func (p *Participant) newPC(t Target) (*webrtc.PeerConnection, error) {
	api := p.room.sfu.cfg.API.Publisher
	var direct *directSender
	if t == TargetSubscriber {
		api, direct = p.room.sfu.cfg.API.newSubscriberAPI(p.log)
		p.direct = direct
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { p.onLocalCandidate(t, c) })
	watchPair(pc, p.room.sfu.cfg.Metrics, p.room.sfu.cfg.API.RelayTransport, direct)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.log.Debug("peer connection state", "pc", string(t), "state", s.String())
		if direct != nil && s == webrtc.PeerConnectionStateClosed {
			direct.close()
		}
		p.iceStateChanged(t, s)
		if t == TargetSubscriber && s == webrtc.PeerConnectionStateConnected {
			p.ops.post(p.subscriberConnected)
		}
		if t == TargetPublisher && s == webrtc.PeerConnectionStateConnected {
			p.publisherConnected()
		}
	})
	return pc, nil
}

// ValidateCandidate reports whether c is a candidate line pion accepts;
// the empty candidate (end of candidates) is valid.
func ValidateCandidate(c webrtc.ICECandidateInit) error {
	if c.Candidate == "" {
		return nil
	}
	if _, err := ice.UnmarshalCandidate(c.Candidate); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

// AddICECandidate adds a client candidate to one of its PCs, queued until
// that PC has a remote description. It runs as an op: after the
// negotiation asked for before it.
func (p *Participant) AddICECandidate(t Target, c webrtc.ICECandidateInit) error {
	if err := ValidateCandidate(c); err != nil {
		return err
	}
	if c.Candidate == "" {
		return nil // end of candidates: nothing to do with ICE-lite-free pion
	}
	return p.ops.do(func() error { return p.addCandidate(t, c) })
}

// addCandidate is AddICECandidate's op.
func (p *Participant) addCandidate(t Target, c webrtc.ICECandidateInit) error {
	pc := p.pcOf(t)
	if pc == nil || pc.RemoteDescription() == nil {
		q := p.remoteCands[t]
		if len(q) >= maxQueuedCandidates {
			q = q[1:]
		}
		p.remoteCands[t] = append(q, c)
		return nil
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

// pcOf returns the PC of target t, or nil; only ops call it.
func (p *Participant) pcOf(t Target) *webrtc.PeerConnection {
	if t == TargetSubscriber {
		return p.sub
	}
	if p.pub != nil {
		return p.pub.pc
	}
	return nil
}

// applyCandidates adds the queued remote candidates of t to pc, which now
// has its remote description; only ops call it.
func (p *Participant) applyCandidates(t Target, pc *webrtc.PeerConnection) {
	for _, c := range p.remoteCands[t] {
		if err := pc.AddICECandidate(c); err != nil {
			p.log.Debug("queued candidate", "err", err)
		}
	}
	delete(p.remoteCands, t)
}

// onLocalCandidate holds a server candidate until its PC's description has
// been sent (flushCandidates), then trickles it. Candidates are also in
// the description itself: gathering completes before it is sent.
func (p *Participant) onLocalCandidate(t Target, c *webrtc.ICECandidate) {
	var init *webrtc.ICECandidateInit
	if c != nil {
		j := c.ToJSON()
		init = &j
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.delivered[t] {
		p.localCands[t] = append(p.localCands[t], init)
		return
	}
	p.inbox.post(ICECandidate{Target: t, Candidate: init})
}

// flushCandidates trickles the candidates held for t, once its description
// has been sent (or posted: the mailbox keeps the order).
func (p *Participant) flushCandidates(t Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.delivered[t] {
		return
	}
	p.delivered[t] = true
	for _, c := range p.localCands[t] {
		p.inbox.post(ICECandidate{Target: t, Candidate: c})
	}
	delete(p.localCands, t)
}
