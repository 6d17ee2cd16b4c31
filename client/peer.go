package client

// The PeerConnections' signaling: creation, trickle in both directions, and
// the worker that answers the server's subscriber offers.

import (
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// peer is one PeerConnection and its trickle state.
type peer struct {
	target string
	pc     *webrtc.PeerConnection

	// localMu orders our trickles; it is held while sending, never while
	// calling into pion.
	localMu    sync.Mutex
	canTrickle bool                       // our offer/answer for it was written
	localQueue []*webrtc.ICECandidateInit // held until canTrickle

	// remoteMu orders the server's candidates; held while calling
	// AddICECandidate, never while sending.
	remoteMu    sync.Mutex
	remoteReady bool // it has a remote description
	remoteQueue []webrtc.ICECandidateInit

	negotiated atomic.Bool // one offer/answer exchange completed
}

func usable(p *peer) bool {
	if p == nil {
		return false
	}
	s := p.pc.ConnectionState()
	return s != webrtc.PeerConnectionStateClosed && s != webrtc.PeerConnectionStateFailed
}

// newPeer creates a PeerConnection for target unless the client is closing.
func (c *Client) newPeer(target string) (*peer, error) {
	pc, err := c.api.NewPeerConnection(c.ice.configuration(c.done))
	if err != nil {
		return nil, err
	}
	p := &peer{target: target, pc: pc}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		var init *webrtc.ICECandidateInit
		if cand != nil {
			v := cand.ToJSON()
			init = &v
		}
		p.localMu.Lock()
		defer p.localMu.Unlock()
		if !p.canTrickle {
			p.localQueue = append(p.localQueue, init)
			return
		}
		c.sendTrickle(p, init)
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.log.Debug("peer connection state", "target", target, "state", s.String())
	})
	if target == TargetSubscriber {
		pc.OnTrack(func(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
			rt := newRemoteTrack(pc, track, receiver)
			c.mu.Lock()
			if c.closing {
				c.mu.Unlock()
				return
			}
			c.wg.Add(1)
			c.mu.Unlock()
			c.log.Debug("track", "kind", rt.Kind, "codec", rt.Codec, "stream", rt.StreamID, "track", rt.TrackID, "mid", rt.Mid)
			c.tracks.add(rt)
			go func() {
				defer c.wg.Done()
				if c.trackReader != nil {
					defer close(rt.ended)
					c.trackReader(rt)
					return
				}
				rt.readLoop()
			}()
		})
	}

	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		_ = pc.Close()
		return nil, ErrClosed
	}
	if target == TargetPublisher {
		c.pub = p
	} else {
		c.sub = p
		p.remoteQueue, c.earlySub = c.earlySub, nil
	}
	c.mu.Unlock()
	return p, nil
}

func (c *Client) isCurrent(p *peer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pub == p || c.sub == p
}

// sendTrickle sends one local candidate (nil: end of candidates). p.localMu
// is held.
func (c *Client) sendTrickle(p *peer, cand *webrtc.ICECandidateInit) {
	if !c.isCurrent(p) {
		return
	}
	if err := c.Notify("trickle", TrickleParams{Target: p.target, Candidate: cand}); err != nil {
		c.log.Debug("trickle send failed", "target", p.target, "err", err)
	}
}

// startTrickle releases the local candidates held until the offer/answer
// was written.
func (c *Client) startTrickle(p *peer) {
	p.localMu.Lock()
	defer p.localMu.Unlock()
	if p.canTrickle {
		return
	}
	p.canTrickle = true
	for _, cand := range p.localQueue {
		c.sendTrickle(p, cand)
	}
	p.localQueue = nil
}

// remoteDescriptionSet adds the remote candidates queued so far.
func (p *peer) remoteDescriptionSet(log *slog.Logger) {
	p.remoteMu.Lock()
	defer p.remoteMu.Unlock()
	p.remoteReady = true
	for _, cand := range p.remoteQueue {
		if err := p.pc.AddICECandidate(cand); err != nil {
			log.Debug("adding remote candidate", "target", p.target, "err", err)
		}
	}
	p.remoteQueue = nil
}

func (p *peer) addRemoteCandidate(cand webrtc.ICECandidateInit, log *slog.Logger) {
	p.remoteMu.Lock()
	defer p.remoteMu.Unlock()
	if !p.remoteReady {
		p.remoteQueue = append(p.remoteQueue, cand)
		return
	}
	if err := p.pc.AddICECandidate(cand); err != nil {
		log.Debug("adding remote candidate", "target", p.target, "err", err)
	}
}

// signalLoop handles the server's "offer" requests and "trickle"
// notifications in arrival order.
func (c *Client) signalLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.sigWake:
		}
		c.sigMu.Lock()
		q := c.sigQueue
		c.sigQueue = nil
		c.sigMu.Unlock()
		for _, s := range q {
			if s.method == "offer" {
				c.answerSubscriberOffer(s.id, s.params)
			} else {
				c.remoteTrickle(s.params)
			}
		}
	}
}

func (c *Client) enqueueSignal(s signal) {
	c.sigMu.Lock()
	c.sigQueue = append(c.sigQueue, s)
	c.sigMu.Unlock()
	select {
	case c.sigWake <- struct{}{}:
	default:
	}
}

func (c *Client) answerSubscriberOffer(id, params json.RawMessage) {
	var offer SDPParams
	if err := json.Unmarshal(params, &offer); err != nil || offer.SDP == "" {
		c.reply(id, nil, &RPCError{Code: CodeInvalidParams, Message: "offer needs {sdp}"})
		return
	}
	c.mu.Lock()
	p := c.sub
	c.mu.Unlock()
	// A failed subscriber PC is kept: the server's offer is a re-offer of
	// its own PC (an ICE restart, after a resume), which a new PC could
	// not take up.
	if p == nil || p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed || newCertificate(p.pc, offer.SDP) {
		if p != nil {
			_ = p.pc.Close()
		}
		var err error
		if p, err = c.newPeer(TargetSubscriber); err != nil {
			c.reply(id, nil, &RPCError{Code: CodeInternalError, Message: err.Error()})
			return
		}
	}
	p.holdTrickle() // an ICE restart's candidates follow the answer
	c.refreshInterfaces()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer.SDP}); err != nil {
		c.startTrickle(p)
		c.log.Debug("bad subscriber offer", "err", err)
		c.reply(id, nil, &RPCError{Code: CodeInvalidParams, Message: "invalid sdp: " + err.Error()})
		return
	}
	p.remoteDescriptionSet(c.log)
	answer, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(answer)
	}
	if err != nil {
		c.reply(id, nil, &RPCError{Code: CodeInternalError, Message: err.Error()})
		return
	}
	c.reply(id, SDPParams{SDP: answer.SDP}, nil)
	c.subOffers.Add(1)
	c.startTrickle(p)
}

func (c *Client) remoteTrickle(params json.RawMessage) {
	var t TrickleParams
	if err := json.Unmarshal(params, &t); err != nil {
		c.log.Debug("bad trickle", "err", err)
		return
	}
	if t.Candidate == nil || t.Candidate.Candidate == "" {
		return // end of candidates
	}
	c.mu.Lock()
	var p *peer
	switch t.Target {
	case TargetPublisher:
		p = c.pub
	case TargetSubscriber:
		p = c.sub
		if p == nil {
			// Early candidates for a subscriber PC that does not exist yet:
			// keep them for it.
			c.earlySub = append(c.earlySub, *t.Candidate)
		}
	}
	c.mu.Unlock()
	if p != nil {
		p.addRemoteCandidate(*t.Candidate, c.log)
	}
}

// newCertificate reports whether offer comes from another server PC than
// pc's current remote description (another a=fingerprint): the server
// replaced its PC (a session resumed after a reload), and so must we.
func newCertificate(pc *webrtc.PeerConnection, offer string) bool {
	rd := pc.CurrentRemoteDescription()
	if rd == nil {
		return false
	}
	a, b := firstFingerprint(rd.SDP), firstFingerprint(offer)
	return a != "" && b != "" && a != b
}

func firstFingerprint(desc string) string {
	for _, line := range strings.Split(desc, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:"); ok {
			return strings.ToLower(strings.TrimSpace(v))
		}
	}
	return ""
}
