// Package codec holds the codecs of the contract, written once, and the
// keyframe detection of each: the server's media plane (sfu) and the
// public Go client (client) both use them, so the client does not pull in
// the server. The server's MediaEngines and the client's register the
// codecs with RegisterCodecs.
package codec

import (
	"strconv"

	"github.com/pion/webrtc/v4"
)

// The payload types the server offers on subscriber PCs. Publishers' offers
// may use other numbers: pion answers with the offerer's, and a down track
// rewrites the payload type per subscriber at Bind.
var videoCodecs = []struct {
	mime, fmtp string
	pt, rtx    webrtc.PayloadType
}{
	{webrtc.MimeTypeVP8, "", 96, 97},
	{webrtc.MimeTypeVP9, "profile-id=0", 98, 99},
	{webrtc.MimeTypeVP9, "profile-id=2", 100, 101},
	{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", 102, 103},
	{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", 108, 109},
	{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f", 127, 125},
	{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", 112, 113},
}

const opusPT webrtc.PayloadType = 111

// Dynamic payload types (RFC 3551 section 6) are 96-127; shiftPT keeps
// every payload type in that range.
const (
	dynamicPTBase  = 96
	dynamicPTCount = 32
)

// shiftPT moves pt by shift places within 96-127, wrapping around: for any
// shift it is a one-to-one map of that range, so the codecs' payload types
// stay distinct.
func shiftPT(pt webrtc.PayloadType, shift int) webrtc.PayloadType {
	i := (int(pt) - dynamicPTBase + shift) % dynamicPTCount
	if i < 0 {
		i += dynamicPTCount
	}
	return webrtc.PayloadType(dynamicPTBase + i)
}

// RegisterCodecs registers on m the codecs of the contract: Opus for
// audio; VP8, VP9 (profiles 0 and 2) and H.264 (constrained baseline,
// baseline, main, high; packetization mode 1) for video, each followed by
// its RTX. Video codecs carry the feedback every party uses (nack, nack
// pli, ccm fir) and then feedback.
//
// ptShift moves every payload type by that many places within the dynamic
// range 96-127: 0 gives the payload types the server offers on subscriber
// PCs. The Go client uses another shift, so that the payload types its
// publishers send differ from those its subscribers receive and every test
// and bench run goes through the server's per-subscriber rewriting.
func RegisterCodecs(m *webrtc.MediaEngine, ptShift int, feedback ...webrtc.RTCPFeedback) error {
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: shiftPT(opusPT, ptShift),
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return err
	}
	fb := append([]webrtc.RTCPFeedback{
		{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
	}, feedback...)
	for _, c := range videoCodecs {
		pt := shiftPT(c.pt, ptShift)
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: c.mime, ClockRate: 90000, SDPFmtpLine: c.fmtp, RTCPFeedback: fb,
			},
			PayloadType: pt,
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeRTX, ClockRate: 90000,
				SDPFmtpLine: "apt=" + strconv.Itoa(int(pt)),
			},
			PayloadType: shiftPT(c.rtx, ptShift),
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return nil
}
