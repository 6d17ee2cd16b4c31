package sfu

import (
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// withoutRecvRIDs returns a publisher offer without the simulcast streams
// it asks to *receive*: its "a=rid:<id> recv" lines and the recv half of
// its a=simulcast line (RFC 8853). The publisher PC only receives, so the
// server could never send them; dropping them is how an answerer declines
// them (RFC 8853 5.3).
//
// Why it matters: pion, as a publisher, copies the rids of the last answer
// into its next offer as recv rids beside its own send ones, and pion, as
// the server, answered each of those with one more recv rid: the third
// negotiation of a Go simulcast publisher (a second Publish, then an ICE
// restart) carried 9 rids and was refused. Browsers send send rids only,
// and their offers pass unchanged (the very string: nothing is rewritten
// unless a line goes).
func withoutRecvRIDs(offer string) string {
	if !strings.Contains(offer, " recv") {
		return offer
	}
	lines := strings.SplitAfter(offer, "\n")
	out := make([]string, 0, len(lines))
	changed := false
	for _, line := range lines {
		body := strings.TrimRight(line, "\r\n")
		eol := line[len(body):]
		switch {
		case strings.HasPrefix(body, "a=rid:"):
			if f := strings.Fields(body[len("a=rid:"):]); len(f) >= 2 && f[1] == "recv" {
				changed = true
				continue
			}
		case strings.HasPrefix(body, "a=simulcast:"):
			send, ok := simulcastSend(body[len("a=simulcast:"):])
			if !ok {
				break // not a form this knows: pion judges it
			}
			if send == "" {
				changed = true
				continue
			}
			if l := "a=simulcast:send " + send; l != body {
				line, changed = l+eol, true
			}
		}
		out = append(out, line)
	}
	if !changed {
		return offer
	}
	return strings.Join(out, "")
}

// simulcastSend returns the send list of an a=simulcast value
// ("send q;h;f recv x;y", "recv x send q;h;f", "recv x": "" ) and whether
// the value is one of those forms.
func simulcastSend(v string) (string, bool) {
	f := strings.Fields(v)
	if len(f) != 2 && len(f) != 4 {
		return "", false
	}
	send := ""
	for i := 0; i < len(f); i += 2 {
		switch f[i] {
		case "send":
			if send != "" {
				return "", false
			}
			send = f[i+1]
		case "recv":
		default:
			return "", false
		}
	}
	return send, true
}

// noRTXForSimulcast has the answer to a publisher offer negotiate no RTX
// on the m-lines that send simulcast (rids: SimulcastRIDs of the offer)
// and declare their RTX streams with a=ssrc-group:FID, as pion publishers
// do: the publisher then resends NACKed packets on the layer's own SSRC.
//
// Why: a pion publisher's retransmissions (pion's NACK responder) copy the
// original packet's header, rid extension included, with no rrid (RFC
// 8852); pion's receiver, which ignores a simulcast m-line's FID groups,
// takes such an RTX packet for a new stream of that rid and points the
// layer's track at it: from then on the layer's reader gets only
// retransmissions, and the media stream is read by no one. The first loss
// did it (an ICE restart loses a few packets: in a loopback test the
// layers stopped after a restart in 2-5 runs of 8; with this, 0 of 10).
// Browsers' simulcast sections declare no SSRCs (their RTX carries rrid,
// which pion routes as repair) and keep RTX, and with it their bandwidth
// probes on the RTX stream, which are never forwarded; sections without
// simulcast keep RTX too.
func noRTXForSimulcast(pc *webrtc.PeerConnection, offer string, rids map[string][]RIDInfo) {
	if len(rids) == 0 {
		return // no simulcast: nothing to parse the offer again for
	}
	fid := midsWithFID(offer)
	for _, t := range pc.GetTransceivers() {
		if len(rids[t.Mid()]) == 0 || !fid[t.Mid()] || t.Receiver() == nil {
			continue
		}
		var keep []webrtc.RTPCodecParameters
		for _, c := range t.Receiver().GetParameters().Codecs {
			if !strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) {
				keep = append(keep, c)
			}
		}
		if len(keep) > 0 {
			_ = t.SetCodecPreferences(keep) // an error leaves pion's default: RTX as offered
		}
	}
}

// midsWithFID returns the mids of offer's m-lines that have an
// a=ssrc-group:FID line.
func midsWithFID(offer string) map[string]bool {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range d.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		for _, a := range m.Attributes {
			if a.Key == sdp.AttrKeySSRCGroup && strings.HasPrefix(a.Value, "FID ") {
				out[mid] = true
			}
		}
	}
	return out
}
