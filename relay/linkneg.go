package relay

// Renegotiation of a link, over its data channel. The node that dialed is
// the only offerer for the life of the link, so offers never cross:
//
//   - The offerer adds or removes its tracks, then offers (one offer at a
//     time; a change during a negotiation waits for the answer, then
//     offers again).
//   - The answerer adds its tracks with AddTrack: pion puts each on a free
//     m-line of that kind, or on a new transceiver that the next offer's
//     new m-line takes (JSEP's rule for an answerer's addTrack). It then
//     sends "need" {audio, video}: how many transceivers of each kind it
//     has. The offerer adds recvonly transceivers until it has as many
//     and offers; the answer carries the answerer's tracks. Removing a
//     track also sends "need", for the offer that takes it off the wire.
//   - The offerer confirms each answer it applied ("applied"): only then
//     do the answerer's new tracks start sending, so that no packet
//     arrives before the offerer knows its SSRC.
//
// Every m-line the offerer makes can receive (its own tracks' are
// sendrecv, the others recvonly), so each one can carry one track each
// way, and the counts are all the offerer needs to know.

import "github.com/pion/webrtc/v4"

// negotiation is the offerer's state; only the loop touches it.
type negotiation struct {
	negotiating bool // an offer is out, its answer not yet in
	again       bool // something changed meanwhile
	want        [2]int
	unready     []*outTrack // answerer: tracks in no answer yet
	awaiting    []*outTrack // answerer: tracks in the last answer, not yet applied
}

var kinds = [2]webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo}

// negotiate brings the peer up to date with this side's tracks.
func (lk *link) negotiate() {
	pc := lk.pc.Load()
	if pc == nil || lk.isDead() {
		return
	}
	if !lk.offerer {
		lk.send(wire{T: "need", Audio: countKind(pc, kinds[0]), Video: countKind(pc, kinds[1])})
		return
	}
	if lk.neg.negotiating {
		lk.neg.again = true
		return
	}
	for i, kind := range kinds {
		for n := countKind(pc, kind); n < lk.neg.want[i]; n++ {
			if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				lk.log.Warn("link transceiver", "err", err)
				break
			}
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		lk.failed("cannot offer", pc, err)
		return
	}
	lk.neg.negotiating, lk.neg.again = true, false
	lk.send(wire{T: "offer", SDP: pc.LocalDescription().SDP})
}

// failed ends the link after a negotiation error (quietly when the
// PeerConnection was closing anyway).
func (lk *link) failed(why string, pc *webrtc.PeerConnection, err error) {
	if pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
		lk.kill("peer connection closed")
		return
	}
	lk.log.Warn("link negotiation failed", "why", why, "err", err)
	lk.kill(why)
}

func countKind(pc *webrtc.PeerConnection, kind webrtc.RTPCodecType) int {
	n := 0
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() == kind {
			n++
		}
	}
	return n
}

// onNeed: the answerer wants an offer with at least this many m-lines.
func (lk *link) onNeed(audio, video int) {
	if !lk.offerer {
		return
	}
	lk.neg.want = [2]int{audio, video}
	lk.negotiate()
}

// onAnswer applies the answer to our last offer.
func (lk *link) onAnswer(sdp string) {
	pc := lk.pc.Load()
	if !lk.offerer || !lk.neg.negotiating || pc == nil {
		return
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		lk.failed("bad answer", pc, err)
		return
	}
	lk.neg.negotiating = false
	lk.send(wire{T: "applied"})
	if lk.neg.again {
		lk.negotiate()
	}
}

// onOffer answers the offerer.
func (lk *link) onOffer(sdp string) {
	pc := lk.pc.Load()
	if lk.offerer || pc == nil {
		return
	}
	err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp})
	var answer webrtc.SessionDescription
	if err == nil {
		answer, err = pc.CreateAnswer(nil)
	}
	if err == nil {
		err = pc.SetLocalDescription(answer)
	}
	if err != nil {
		lk.failed("bad offer", pc, err)
		return
	}
	lk.send(wire{T: "answer", SDP: pc.LocalDescription().SDP})
	// Tracks on an m-line of this answer start once it is applied.
	mids := map[*webrtc.RTPSender]bool{}
	for _, tr := range pc.GetTransceivers() {
		if s := tr.Sender(); s != nil && tr.Mid() != "" {
			mids[s] = true
		}
	}
	unready := lk.neg.unready[:0]
	for _, ot := range lk.neg.unready {
		if mids[ot.sender] {
			lk.neg.awaiting = append(lk.neg.awaiting, ot)
		} else if ot.sender != nil {
			unready = append(unready, ot)
		}
	}
	clear(lk.neg.unready[len(unready):])
	lk.neg.unready = unready
}

// onApplied: the offerer applied our last answer; its tracks may send.
func (lk *link) onApplied() {
	for _, ot := range lk.neg.awaiting {
		ot.dt.SetReady()
	}
	clear(lk.neg.awaiting)
	lk.neg.awaiting = lk.neg.awaiting[:0]
}
