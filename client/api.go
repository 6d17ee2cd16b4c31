package client

// The webrtc.API every client PeerConnection is built from: codecs,
// interceptors and the loopback-only SettingEngine.

import (
	"net"
	"strconv"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// LoopbackSettingEngine returns the SettingEngine the client uses by default:
// loopback UDP4 host candidates only (the machine's other addresses are never
// gathered), remote candidates that are not loopback are ignored, and mDNS is
// off. Nothing a PeerConnection built on it sends can leave the machine.
func LoopbackSettingEngine() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return se
}

// NewAPI builds the webrtc.API the client uses: the codecs the server
// accepts (Opus; VP8, VP9 and H.264, each with RTX), pion's default
// interceptors (NACK generator and responder, so a publisher retransmits on
// NACK; sender and receiver reports; stats; TWCC feedback) and
// LoopbackSettingEngine.
func NewAPI() (*webrtc.API, error) {
	return NewAPIWithSettingEngine(LoopbackSettingEngine())
}

// NewAPIWithSettingEngine is NewAPI with another SettingEngine, for use
// beyond loopback. Start from LoopbackSettingEngine or a zero SettingEngine.
func NewAPIWithSettingEngine(se webrtc.SettingEngine) (*webrtc.API, error) {
	return newAPI(se, nil)
}

// newAPI builds the API; first, when not nil, is placed first in the
// interceptor chain (it sees received packets before the NACK generator).
func newAPI(se webrtc.SettingEngine, first interceptor.Factory) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if first != nil {
		reg.Add(first)
	}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(
		webrtc.WithMediaEngine(m),
		webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se),
	), nil
}

// registerCodecs registers pion's default payload types for the codecs of
// the contract (Opus, VP8, VP9, H.264, RTX for each video codec) and nothing
// else (no AV1, H.265, G.722, PCMU/PCMA), so what the client offers is what
// the server accepts.
func registerCodecs(m *webrtc.MediaEngine) error {
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return err
	}

	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	video := []struct {
		mime, fmtp string
		pt, rtx    webrtc.PayloadType
	}{
		{webrtc.MimeTypeVP8, "", 96, 97},
		{webrtc.MimeTypeVP9, "profile-id=0", 98, 99},
		{webrtc.MimeTypeVP9, "profile-id=2", 100, 101},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", 102, 103},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f", 104, 105},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", 106, 107},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f", 108, 109},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f", 127, 125},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f", 39, 40},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f", 112, 113},
	}
	for _, v := range video {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: v.mime, ClockRate: 90000, SDPFmtpLine: v.fmtp, RTCPFeedback: fb},
			PayloadType:        v.pt,
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=" + strconv.Itoa(int(v.pt))},
			PayloadType:        v.rtx,
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return nil
}
