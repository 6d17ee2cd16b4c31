package metrics

import "github.com/prometheus/client_golang/prometheus"

// The fixed label values of the firewall-traversal instruments.
var (
	// ICE transports of a PeerConnection's selected candidate pair: the
	// server's UDP or ICE-TCP port reached directly, or through the
	// embedded TURN server by the client's transport to it.
	iceTransports = []string{"udp", "tcp", "turn_udp", "turn_tcp", "turn_tls"}
	// Why the TURN server refused something: a credential whose username
	// is not "<unix expiry>:<identity>" (malformed), past its expiry
	// (expired), or whose MESSAGE-INTEGRITY does not match the secret's
	// HMAC (forged); a permission or channel to an IP that is not
	// relayd's (peer); a packet to or from relayd's IP on a port other
	// than its media port (peer_port); a TCP relay (RFC 6062: tcp_relay);
	// an allocation beyond one credential's quota (quota).
	turnRefusals = []string{"malformed", "expired", "forged", "peer", "peer_port", "tcp_relay", "quota"}
	// The TURN server's listeners.
	turnTransports = []string{"udp", "tcp", "tls"}
)

// Net is the firewall-traversal instruments (ICE-TCP, the embedded TURN
// server).
type Net struct {
	// Connections counts PeerConnections by the transport of their
	// selected candidate pair: udp|tcp|turn_udp|turn_tcp|turn_tls.
	// Counted at each selection (an ICE restart that changes the pair
	// counts again).
	Connections *prometheus.CounterVec
	// TURNAllocations counts live TURN allocations, by the client's
	// transport to the server: udp|tcp|tls.
	TURNAllocations *prometheus.GaugeVec
	// TURNAllocationsTotal counts allocations made, by transport.
	TURNAllocationsTotal *prometheus.CounterVec
	// TURNRefusals counts what the TURN server refused, by reason:
	// malformed|expired|forged|peer|peer_port|tcp_relay|quota.
	TURNRefusals *prometheus.CounterVec
}

// newNet builds the Net instruments and registers them on r.
func newNet(r *prometheus.Registry) *Net {
	n := &Net{
		Connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_ice_connections_total",
			Help: "PeerConnections by the transport of their selected candidate pair.",
		}, []string{"transport"}),
		TURNAllocations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relayd_turn_allocations",
			Help: "Live allocations of the embedded TURN server, by client transport.",
		}, []string{"transport"}),
		TURNAllocationsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_turn_allocations_total",
			Help: "Allocations made by the embedded TURN server, by client transport.",
		}, []string{"transport"}),
		TURNRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_turn_refusals_total",
			Help: "Requests and packets the embedded TURN server refused, by reason.",
		}, []string{"reason"}),
	}
	r.MustRegister(n.Connections, n.TURNAllocations, n.TURNAllocationsTotal, n.TURNRefusals)
	precreate(n.Connections, iceTransports)
	precreate(n.TURNAllocations, turnTransports)
	precreate(n.TURNAllocationsTotal, turnTransports)
	precreate(n.TURNRefusals, turnRefusals)
	return n
}
