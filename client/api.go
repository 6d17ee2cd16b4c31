package client

// The webrtc.API every client PeerConnection is built from: codecs,
// interceptors and the loopback-only SettingEngine.

import (
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/internal/codec"
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
	if err := RegisterCodecs(m); err != nil {
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

// publishPTShift rotates the client's payload types one place from the
// server's (VP8 on 97, its RTX on 98, Opus on 112, ...): what a client
// publishes arrives with payload types that mean something else on the
// server's subscriber PCs, so every test and bench run goes through the
// server's per-subscriber rewriting, and a packet forwarded unrewritten
// fails loudly (a viewer would read VP8 as RTX) rather than silently.
const publishPTShift = 1

// RegisterCodecs registers on m the codecs the server accepts (Opus; VP8,
// VP9 and H.264, each with RTX) and nothing else, so what a client offers is
// what the server accepts. It is what NewAPI uses; call it to build an API
// of your own (Options.API), with other interceptors or settings. The
// payload types differ from the server's on purpose (see publishPTShift):
// pion answers an offer with the offerer's payload types and maps them
// itself.
func RegisterCodecs(m *webrtc.MediaEngine) error {
	return codec.RegisterCodecs(m, publishPTShift)
}
