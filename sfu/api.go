package sfu

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/internal/codec"
)

// MediaConfig is what the webrtc.API needs to know about the network.
type MediaConfig struct {
	// UDPConn is the one socket all media uses (ICE UDP mux). Required.
	UDPConn net.PacketConn
	// NoBatch writes each packet with its own sendto instead of batching
	// them into sendmmsg (batchconn.go); for comparisons.
	NoBatch bool
	// NoDirect sends subscribers' media through pion's write path instead
	// of the direct send path (directsend.go); for comparisons.
	NoDirect bool
	// ICELoopback offers loopback candidates (tests, one-machine demos).
	ICELoopback bool
	// LoopbackOnly restricts ICE to loopback addresses; hermetic tests.
	LoopbackOnly bool
	// PublicIP, when set, replaces the host candidates' address (1:1 NAT).
	PublicIP string
	// TCPListener, when set, carries passive ICE-TCP (icetcp.go); the
	// returned closer closes it.
	TCPListener net.Listener
	// RelayTransport, when set, names the TURN transport of a remote
	// address that is a relay of the embedded TURN server ("" if not).
	RelayTransport func(ip net.IP, port int) string
}

// newMediaEngine registers Opus, VP8, VP9 and H.264, with RTX for every
// video codec (pion unwraps RTX in TrackRemote.Read, so up tracks see
// repaired packets on the main SSRC); a pion-style publisher's simulcast
// m-lines are answered without it (noRTXForSimulcast). Video feedback: nack and nack pli so
// subscribers NACK and PLI us, ccm fir for older browsers, transport-cc so
// publishing browsers get feedback for their send-side bandwidth estimate.
func newMediaEngine(publisher bool) (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	if err := codec.RegisterCodecs(m, 0, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}); err != nil {
		return nil, err
	}
	// mid lets pion route a publisher's packets whose SSRC the offer did
	// not declare (Firefox, RTX repair streams).
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.SDESMidURI}, kind); err != nil {
			return nil, err
		}
	}
	if !publisher {
		// Subscribers' browsers report every packet's arrival (TWCC) for
		// the per-subscriber estimate (bwe.go); down tracks write the
		// transport-wide sequence number themselves (DownTrack.write).
		// Audio too: the estimate is of everything the subscriber gets,
		// and the video budget is what is left after the audio.
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
				return nil, err
			}
		}
	}
	if publisher {
		// rid and repaired-rid name a simulcast publisher's layers
		// (RFC 8852): pion routes each rid's packets to its own track.
		for _, uri := range []string{sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI} {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// newInterceptors is pion's RegisterDefaultInterceptors, trimmed (its doc
// comment says to copy it), for one side:
//   - publisher PCs (media comes in): the NACK generator (we ask publishers
//     for what we lost), receiver reports, and TWCC feedback (Chrome's
//     send-side bandwidth estimate needs it to ramp up);
//   - subscriber PCs (media goes out): sender reports only, so browsers can
//     sync audio and video. No NACK responder: it keeps 1024 packets per
//     subscriber stream (~1.5 MB per video subscriber); subscribers' NACKs
//     are served from the up track's one shared Cache (downtrack.go).
//
// Each of these interceptors runs a goroutine with a ticker per
// PeerConnection (the NACK generator and TWCC every 100 ms), so giving a
// viewer's PC only what it uses saves three goroutines and ~20 wake-ups a
// second per viewer. No stats interceptor: the metrics package counts.
//
// With the direct send path on, subscriber PCs have none: their down
// tracks write their own sender reports (report.go).
func newInterceptors(m *webrtc.MediaEngine, publisher, direct bool) (*interceptor.Registry, error) {
	r := &interceptor.Registry{}
	if direct && !publisher {
		return r, nil
	}
	send, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	r.Add(send)
	if !publisher {
		return r, nil
	}
	// At most 3 NACKs per lost packet (one every 100 ms): pion's generator
	// never sees packets repaired over RTX (they come in on the repair
	// stream), so without a cap it would NACK them until they leave its
	// 512-packet window.
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorMaxNacksPerPacket(3))
	if err != nil {
		return nil, err
	}
	r.Add(gen)
	recv, err := report.NewReceiverInterceptor()
	if err != nil {
		return nil, err
	}
	r.Add(recv)
	if err := m.RegisterHeaderExtension(
		webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	tw, err := twcc.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	r.Add(tw)
	return r, nil
}

// APIs are the server's two webrtc.APIs, each built once: one for
// publisher PCs, one for subscriber PCs (they differ in interceptors only;
// see newInterceptors). Both use the one ICE UDP mux.
type APIs struct {
	Publisher, Subscriber *webrtc.API
	// Flush sends the media socket's pending batch now (nil without
	// batching). A writer calls it when it has written a packet to its
	// whole group, so the batch leaves without waiting for its timer.
	Flush func()
	// MuxConn returns a conn of the media port's ICE UDP mux named ufrag,
	// for a non-ICE flow that must share the one UDP port: the cluster's
	// node-to-node pipes (relay.LinkUfrag). The mux hands it what comes
	// from the addresses it has written to.
	MuxConn func(ufrag string) (net.PacketConn, error)
	// RelayTransport is MediaConfig.RelayTransport.
	RelayTransport func(ip net.IP, port int) string

	// subscriberFor, when the direct send path is on, makes the API of
	// one subscriber PC, its DTLS hooked for keys (dtlsKeys); nil: off.
	subscriberFor func(k *dtlsKeys) *webrtc.API
	// directSend writes an SRTP packet to the media socket; taps are the
	// socket's RTCP taps (directrecv.go; nil: the socket has none).
	directSend func([]byte, netip.AddrPort) (int, error)
	taps       *rtcpTaps
}

// newSubscriberAPI returns the API for a new subscriber PC and, with the
// direct send path on, the PC's direct sender.
func (a APIs) newSubscriberAPI(log *slog.Logger) (*webrtc.API, *directSender) {
	if a.subscriberFor == nil {
		return a.Subscriber, nil
	}
	ds := newDirectSender(a.directSend, a.taps, log)
	return a.subscriberFor(&ds.keys), ds
}

// NewAPI builds the server's webrtc.APIs. The returned closer stops the ICE
// UDP mux; call it before closing cfg.UDPConn.
func NewAPI(cfg MediaConfig) (APIs, io.Closer, error) {
	if cfg.UDPConn == nil {
		return APIs{}, nil, fmt.Errorf("sfu: MediaConfig.UDPConn is required")
	}
	// One list of the host's network interfaces for every ICE agent and
	// the UDP mux, read here once: pion's default (a stdnet.Net per
	// PeerConnection) reads the list again for every PC and keeps its
	// copy as long as the PC lives (~8 KiB per subscriber PC, most of it
	// the netlink dump). Risk: an interface or address that appears or
	// changes after startup is not offered to later PCs until a restart.
	// Little changes in practice: the UDP mux's host candidates were
	// already the addresses it listed once at its creation (pion's
	// UDPMuxDefault on an unspecified address); what the shared list
	// freezes too is ICE-TCP's host candidates (icetcp.go). A server whose
	// addresses move should set PublicIP or be restarted with them.
	ifaces, err := stdnet.NewNet()
	if err != nil {
		return APIs{}, nil, fmt.Errorf("network interfaces: %w", err)
	}
	se := webrtc.SettingEngine{}
	loggers := newPionLoggers()
	se.LoggerFactory = loggers
	se.SetNet(ifaces)
	conn := cfg.UDPConn
	var bc *batchConn
	if u, ok := conn.(*net.UDPConn); ok && !cfg.NoBatch {
		bc = newBatchConn(u) // sendmmsg: see batchconn.go
		conn = bc
	}
	// webrtc.NewICEUDPMux, with the shared list and logger.
	icemux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn, Logger: loggers.NewLogger("ice"), Net: ifaces})
	var mux io.Closer = icemux
	se.SetICEUDPMux(icemux)
	if bc != nil {
		mux = muxCloser{mux, bc}
	}
	if tcp := setupICETCP(&se, cfg.TCPListener); tcp != nil {
		mux = closers{mux, tcp}
	}
	se.SetNetworkTypes(networkTypes(cfg))
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// DTLS's HelloVerifyRequest (a cookie round trip) guards a server
	// against spoofed-source floods; here DTLS runs only with a peer that
	// passed ICE's connectivity checks (the mux drops everyone else), so
	// the cookie adds a round trip to every subscriber's join and nothing
	// else. Skipping it saves one RTT (~25 ms when the machine is busy).
	se.SetDTLSInsecureSkipHelloVerify(true)
	se.SetIncludeLoopbackCandidate(cfg.ICELoopback || cfg.LoopbackOnly)
	if cfg.LoopbackOnly {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if cfg.PublicIP != "" {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        []string{cfg.PublicIP},
			AsCandidateType: webrtc.ICECandidateTypeHost,
		}); err != nil {
			_ = mux.Close()
			return APIs{}, nil, fmt.Errorf("public ip: %w", err)
		}
	}
	apis := APIs{RelayTransport: cfg.RelayTransport}
	if bc != nil {
		apis.Flush = bc.flush
	}
	apis.MuxConn = func(ufrag string) (net.PacketConn, error) {
		return icemux.GetConn(ufrag, conn.LocalAddr())
	}
	send := socketWriter(conn)
	direct := !cfg.NoDirect && send != nil
	for _, publisher := range []bool{true, false} {
		m, err := newMediaEngine(publisher)
		if err != nil {
			_ = mux.Close()
			return APIs{}, nil, fmt.Errorf("media engine: %w", err)
		}
		reg, err := newInterceptors(m, publisher, direct)
		if err != nil {
			_ = mux.Close()
			return APIs{}, nil, fmt.Errorf("interceptors: %w", err)
		}
		api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
		if publisher {
			apis.Publisher = api
			continue
		}
		apis.Subscriber = api
		if direct {
			// One API per subscriber PC, for its own DTLS hooks: pion's
			// hooks are per SettingEngine and tell no PC from another.
			// It costs a SettingEngine copy (~1 KiB) per PC; the media
			// engine and interceptors are shared as before.
			apis.directSend = send
			if bc != nil {
				apis.taps = &bc.taps
			}
			apis.subscriberFor = func(k *dtlsKeys) *webrtc.API {
				s := se
				s.SetDTLSKeyLogWriter(k)
				s.SetDTLSServerHelloMessageHook(k.serverHello)
				return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(s))
			}
		}
	}
	return apis, mux, nil
}

// muxCloser closes the ICE mux, then sends what the batch still holds.
type muxCloser struct {
	mux io.Closer
	bc  *batchConn
}

func (m muxCloser) Close() error {
	err := m.mux.Close()
	m.bc.close()
	return err
}
