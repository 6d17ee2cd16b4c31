package bench

// The webrtc.API shared by every viewer: the client's codecs, and only the
// interceptors a receiving browser really runs per packet (NACK generator,
// receiver reports, transport-wide congestion control feedback). pion's
// default set adds a stats interceptor, which costs CPU on every packet and
// would make the bench, not the server, what a small machine measures.
//
// Two settings make the viewers behave like libwebrtc rather than like
// pion's defaults, which would otherwise turn one lost packet into a NACK
// storm: a lost packet is NACKed at most 10 times (libwebrtc's
// kMaxNackRetries; pion's default is until it leaves the 512-packet
// window, every 100 ms), and the SRTP replay window is 1024 packets
// (libwebrtc's; pion's default of 64 rejects a retransmission that arrives
// more than 64 packets late, which is then NACKed again).

import (
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
)

const (
	maxNacksPerPacket = 10
	srtpReplayWindow  = 1024
)

// newViewerAPI builds the viewers' API on se (client.LoopbackSettingEngine
// on loopback, labSettingEngine in the network lab).
func newViewerAPI(se webrtc.SettingEngine) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := client.RegisterCodecs(m); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorMaxNacksPerPacket(maxNacksPerPacket))
	if err != nil {
		return nil, err
	}
	reg.Add(gen)
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return nil, err
	}
	reg.Add(rr)

	// Transport-wide congestion control feedback (what Chromium sends):
	// the server's per-viewer bandwidth estimate, which chooses a
	// simulcast layer and pauses a viewer whose link carries none, is made
	// from it. It marks the extension and the rtcp-fb as supported, so
	// the server (if it offers them) gets a feedback report every 100 ms.
	if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
		return nil, err
	}

	se.SetSRTPReplayProtectionWindow(srtpReplayWindow)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}
