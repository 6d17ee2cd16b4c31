package sfu

// ICE over TCP (RFC 6544) and the transport of each PeerConnection's
// selected candidate pair. The server offers passive TCP host candidates
// on one TCP port, multiplexed by ICE ufrag like the UDP port, beside the
// UDP ones: a client whose network blocks UDP connects over TCP. UDP keeps
// priority: pion gives a TCP host candidate a local preference of at most
// 2^13*4+8191 = 40959 (RFC 6544 §4.2, passive), a UDP one 65535, so every
// client tries and selects UDP first when it works.

import (
	"io"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/metrics"
)

// The ICE TCP mux's buffers, per connection. Reads: a queue of 32
// framed packets between the socket's reader and the PeerConnection's.
// pion allocates it up front (~64 bytes a slot), for every PeerConnection
// the mux serves, whether it ever uses TCP or not: at 256 slots it was
// 16 KB of every viewer's memory (a heap profile at 200 viewers, 9% of the
// heap). A full queue loses nothing: the socket's reader waits (pion's
// tcpPacketConn.handleRecv blocks), the kernel's TCP receive buffer holds
// what follows and TCP's window slows the sender; the queue only smooths
// the hand-off between two goroutines, and 32 packets is a third of a
// keyframe burst read between two wake-ups of the PeerConnection's reader,
// which only dispatches. Writes: up to 1 MB queued (allocated as used), which absorbs a
// keyframe's burst (~100 packets of 1.2 KB) while the TCP window opens;
// beyond it packets are dropped, as a full UDP socket buffer would drop
// them, rather than blocking the writer. A connection that sends no STUN
// binding request within 10 s of its accept is closed (pion's default is
// 30 s): a client sends one at once, and idle connections cost a
// goroutine each.
const (
	tcpMuxReadQueue      = 32
	tcpMuxWriteBuffer    = 1 << 20
	tcpMuxFirstSTUNLimit = 10 * time.Second
)

// networkTypes are the ICE network types the server gathers: UDP (IPv4
// only for a loopback-only server), and TCP when ICE-TCP is on.
func networkTypes(cfg MediaConfig) []webrtc.NetworkType {
	nt := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.LoopbackOnly {
		nt = nt[:1]
	}
	if cfg.TCPListener != nil {
		nt = append(nt, webrtc.NetworkTypeTCP4)
		if !cfg.LoopbackOnly {
			nt = append(nt, webrtc.NetworkTypeTCP6)
		}
	}
	return nt
}

// Acceptance waits of the server's ICE agent: how long after checks begin
// it may nominate a pair whose remote candidate is of that type, when it
// is the controlling side (the subscriber PC, which the server offers).
// pion waits 500 ms for server-reflexive, 1 s for peer-reflexive and 2 s
// for relayed remote candidates, in case a better pair succeeds later.
// Every client reaching ICE-TCP is peer-reflexive to the server (its
// active TCP candidates are not signaled), as is a client behind NAT
// whose first check comes before its srflx candidate, and a TURN client's
// relay often is too: those waits were a whole second (two over TURN)
// added to their join (bench: ICE-TCP first frame 1.06 s against 0.05 s
// over UDP). 250 ms still lets a UDP pair, which needs one round trip,
// beat a TCP pair, which needs the handshake as well, on any path under
// ~250 ms RTT; a relayed pair waits 500 ms so that a direct one wins
// when both work.
const (
	reflexiveAcceptanceWait = 250 * time.Millisecond
	relayAcceptanceWait     = 500 * time.Millisecond
)

// setupICETCP sets the acceptance waits above and turns on passive
// ICE-TCP on l (when not nil): one mux for every PeerConnection. The
// server never dials out (no active TCP): a client's passive candidate
// would otherwise make it open a connection to any address the client
// names. The returned closer stops the mux.
func setupICETCP(se *webrtc.SettingEngine, l net.Listener) io.Closer {
	se.DisableActiveTCP(true)
	se.SetSrflxAcceptanceMinWait(reflexiveAcceptanceWait)
	se.SetPrflxAcceptanceMinWait(reflexiveAcceptanceWait)
	se.SetRelayAcceptanceMinWait(relayAcceptanceWait)
	if l == nil {
		return nil
	}
	mux := ice.NewTCPMuxDefault(ice.TCPMuxParams{
		Listener:             l,
		Logger:               logging.NewDefaultLoggerFactory().NewLogger("ice-tcp"),
		ReadBufferSize:       tcpMuxReadQueue,
		WriteBufferSize:      tcpMuxWriteBuffer,
		FirstStunBindTimeout: tcpMuxFirstSTUNLimit,
	})
	se.SetICETCPMux(mux)
	return mux
}

// closers closes each in order, returning the first error.
type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if c == nil {
			continue
		}
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Connection transports (the transport label of
// relayd_ice_connections_total).
const (
	transportUDP     = "udp"
	transportTCP     = "tcp"
	transportTURNUDP = "turn_udp"
)

// pairTransport is the transport of a selected pair: TURN's (the relay
// address's transport, as the TURN server knows it) when the remote
// address is one of its relays, else the local candidate's protocol. A
// relayed client is told apart by its address, not by the candidate type:
// the server may know it as a peer-reflexive candidate (its binding
// request came before the trickled relay candidate). A remote relay
// candidate of a TURN server that is not ours counts as turn_udp (its
// relay always reaches us over UDP; its client's transport is unknown).
func pairTransport(localProto webrtc.ICEProtocol, remoteType webrtc.ICECandidateType, relay string) string {
	switch {
	case relay != "":
		return relay
	case remoteType == webrtc.ICECandidateTypeRelay:
		return transportTURNUDP
	case localProto == webrtc.ICEProtocolTCP:
		return transportTCP
	}
	return transportUDP
}

// watchPair follows pc's selected candidate pair: it counts pairs by
// transport and tells the direct send path (nil: none) where to send.
func watchPair(pc *webrtc.PeerConnection, m *metrics.Metrics, relayOf func(ip net.IP, port int) string, direct *directSender) {
	if pc.SCTP() == nil || (m == nil && direct == nil) {
		return
	}
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(p *webrtc.ICECandidatePair) {
		if direct != nil {
			direct.setPair(p)
		}
		if m == nil || p == nil || p.Local == nil || p.Remote == nil {
			return
		}
		relay := ""
		if relayOf != nil {
			if ip := net.ParseIP(p.Remote.Address); ip != nil {
				relay = relayOf(ip, int(p.Remote.Port))
			}
		}
		m.Net.Connections.WithLabelValues(pairTransport(p.Local.Protocol, p.Remote.Typ, relay)).Inc()
	})
}
