package client

// The publisher side: Publish / Unpublish on the publisher PeerConnection.
//
// pion cannot roll back a local offer (have-local-offer -> stable), so an
// offer the server refuses on an already negotiated PeerConnection stays
// pending: the next Publish or Unpublish sends it again before offering its
// own change.

import (
	"context"
	"errors"
	"fmt"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Publish sends tracks on the publisher PeerConnection: it creates it (on
// the first call, and again if the server closed it), adds each track not
// already on it (sendonly), sends "offer" {sdp}, applies the answer and
// trickles with target "publisher". Publishing a track twice is a no-op.
//
// A JSON-RPC error (e.g. 4003) comes back as *RPCError and leaves the client
// usable. If the PeerConnection had never been negotiated it is dropped and
// the next Publish starts over. Otherwise (a refused renegotiation) the
// tracks stay added and the refused offer stays pending; the next Publish or
// Unpublish sends it again first.
func (c *Client) Publish(ctx context.Context, tracks ...webrtc.TrackLocal) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()

	c.mu.Lock()
	p := c.pub
	c.mu.Unlock()
	if !usable(p) {
		if p != nil {
			_ = p.pc.Close()
		}
		var err error
		if p, err = c.newPeer(TargetPublisher); err != nil {
			return err
		}
	}

	for _, t := range tracks {
		if err := c.addLocalTrack(p, t); err != nil { // simulcast.go
			c.dropUnnegotiated(p)
			return err
		}
	}
	if err := c.negotiatePublisher(ctx, p); err != nil {
		c.dropUnnegotiated(p)
		return err
	}
	return nil
}

// Unpublish stops sending the tracks (their transceivers become inactive)
// and renegotiates with an "offer". On a JSON-RPC error the tracks stay
// removed and the offer stays pending (see Publish).
func (c *Client) Unpublish(ctx context.Context, tracks ...webrtc.TrackLocal) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	p := c.pub
	c.mu.Unlock()
	if !usable(p) {
		return errors.New("client: no publisher connection")
	}
	for _, t := range tracks {
		if s := senderOf(p.pc, t); s != nil {
			if err := p.pc.RemoveTrack(s); err != nil {
				return err
			}
		}
	}
	return c.negotiatePublisher(ctx, p)
}

func senderOf(pc *webrtc.PeerConnection, t webrtc.TrackLocal) *webrtc.RTPSender {
	t = baseTrack(t) // a simulcast layer: its sender's first layer
	for _, s := range pc.GetSenders() {
		if s.Track() == t {
			return s
		}
	}
	return nil
}

// negotiatePublisher brings the publisher PC to stable with the current
// transceivers: a pending (earlier refused) offer is sent again first.
func (c *Client) negotiatePublisher(ctx context.Context, p *peer) error {
	if pending := p.pc.PendingLocalDescription(); pending != nil &&
		p.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		if err := c.exchangeOffer(ctx, p, pending.SDP); err != nil {
			return err
		}
	}
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("client: create offer: %w", err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("client: set local offer: %w", err)
	}
	return c.exchangeOffer(ctx, p, c.withRIDRestrictions(offer.SDP))
}

// exchangeOffer sends the local offer (already set) and applies the answer.
func (c *Client) exchangeOffer(ctx context.Context, p *peer, sdp string) error {
	var answer SDPParams
	if err := c.call(ctx, "offer", SDPParams{SDP: sdp}, &answer, func() { c.startTrickle(p) }); err != nil {
		return err
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.SDP}); err != nil {
		return fmt.Errorf("client: set remote answer: %w", err)
	}
	p.remoteDescriptionSet(c.log)
	p.negotiated.Store(true)
	return nil
}

// dropUnnegotiated closes the publisher PC after a failed first Publish, so
// that the next one starts from a fresh PeerConnection.
func (c *Client) dropUnnegotiated(p *peer) {
	if p.negotiated.Load() {
		return
	}
	c.mu.Lock()
	if c.pub == p {
		c.pub = nil
	}
	c.mu.Unlock()
	_ = p.pc.Close()
}

// readSenderRTCP drains a sender's RTCP (which runs the interceptors, e.g.
// the NACK responder) and hands it to h, until the sender stops.
func (c *Client) readSenderRTCP(s *webrtc.RTPSender, h RTCPHandler) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := s.Read(buf)
			if err != nil {
				return // the sender stopped
			}
			pkts, err := rtcp.Unmarshal(buf[:n])
			if err != nil || h == nil {
				continue // ReadRTCP would give up here; the responder must go on
			}
			h.HandleRTCP(pkts)
		}
	}()
}
