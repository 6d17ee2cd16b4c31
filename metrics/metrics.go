// Package metrics holds relayd's Prometheus instruments. It is a leaf: it
// imports nothing from this module, and the other packages receive a
// *Metrics and update its fields.
//
// Every Metrics value owns its own registry (there is no global state), so
// tests can build as many as they like. Labels only ever carry small, fixed
// sets of words: never a room, an identity or any other unbounded value,
// which would grow the series count with the traffic.
package metrics

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The fixed label values. Children for them are created up front so that
// each series is scraped (at 0) before its first event; dashboards and
// rate() behave better with series that exist from the start.
var (
	roomStatuses     = []string{"idle", "live", "waiting_reconnect"}
	participantRoles = []string{"host", "cohost", "viewer", "relay", "user"}
	mediaKinds       = []string{"audio", "video"}
	nackDirections   = []string{"from_subscriber"}
	retransmitResult = []string{"hit", "miss", "budget", "stale"}
	pliDirections    = []string{"from_subscriber", "to_publisher"}
	dropReasons      = []string{"queue_full", "wait_keyframe", "not_ready", "stale"}
	// The invitation statuses of the contract (the invitations package
	// has them as constants; metrics imports nothing of ours).
	invitationStatuses = []string{"pending", "accepted", "rejected", "cancelled", "expired", "removed", "left"}
)

// Metrics is the set of relayd instruments and the registry they live in.
// All fields are safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	// Rooms counts rooms by status: idle|live|waiting_reconnect.
	Rooms *prometheus.GaugeVec
	// Participants counts connected participants by role:
	// host|cohost|viewer|relay|user.
	Participants *prometheus.GaugeVec
	// Tracks counts published tracks by kind: audio|video.
	Tracks *prometheus.GaugeVec

	// PacketsIn and BytesIn count RTP received from publishers, by kind.
	PacketsIn *prometheus.CounterVec
	BytesIn   *prometheus.CounterVec
	// PacketsOut and BytesOut count RTP written to subscribers (sinks), by kind.
	PacketsOut *prometheus.CounterVec
	BytesOut   *prometheus.CounterVec
	// Forwarded counts what PacketsOut counts, both kinds, for the process
	// itself to read (the load a cluster node reports: sfu's
	// PacketsForwarded) without reading a Prometheus counter back. It is
	// not exported to Prometheus.
	Forwarded atomic.Uint64

	// NACKs counts NACKed sequence numbers, by direction: from_subscriber.
	NACKs *prometheus.CounterVec
	// Retransmits counts answers to NACKs, by result: hit (served from the
	// upstream cache), miss (no longer in it, or the writer's queue full),
	// or budget (refused: over the subscriber's retransmission budget,
	// sfu/bwe.go).
	Retransmits *prometheus.CounterVec
	// PLIs counts picture loss indications, by direction: from_subscriber,
	// or to_publisher (counted after throttling).
	PLIs *prometheus.CounterVec
	// KeyframeReplays counts subscribers started from the newest cached
	// keyframe instead of a new one.
	KeyframeReplays prometheus.Counter
	// Drops counts packets not forwarded, by kind and reason:
	// queue_full|wait_keyframe|not_ready|stale.
	Drops *prometheus.CounterVec

	// ForwardLatency is the time from reading a packet from a publisher to
	// writing it to one subscriber.
	ForwardLatency prometheus.Histogram
	// JoinLatency is the time from the WebSocket upgrade to the answer of
	// the join request.
	JoinLatency prometheus.Histogram

	// WSConnections is the number of open signaling WebSockets.
	WSConnections prometheus.Gauge
	// RPCRequests counts JSON-RPC requests by method and code ("0" for
	// success, else the error code). The caller must map methods outside
	// its known set to "unknown", so that clients cannot create series.
	RPCRequests *prometheus.CounterVec

	// Invitations counts transitions into each invitation status:
	// pending|accepted|rejected|cancelled|expired|removed|left (a
	// created invitation counts as pending).
	Invitations *prometheus.CounterVec
	// InvitationAcceptSeconds is the time from an invitation's creation
	// to its acceptance.
	InvitationAcceptSeconds prometheus.Histogram

	// Relays counts running relays by state: connecting|running|failure.
	Relays *prometheus.GaugeVec
	// RelayDestinations counts the destinations of running relays.
	RelayDestinations prometheus.Gauge
	// RelayLinks counts node-to-node relay links (cluster mode).
	RelayLinks prometheus.Gauge
	// BridgedConnections counts WebSockets this node bridges to a room's
	// node (cluster mode); they are in WSConnections too.
	BridgedConnections prometheus.Gauge
	// RelayPackets counts packets written into a destination room.
	RelayPackets prometheus.Counter
	// RelayStartLatency is the time from a relay (or an update adding a
	// destination) starting to join a destination to the first packet
	// written there.
	RelayStartLatency prometheus.Histogram

	// Chat counts chat messages by event: sent|deleted|rate_limited.
	Chat *prometheus.CounterVec

	// Resume: session holds and resumes, ICE restarts, token refreshes
	// (resume.go).
	Resume *Resume
	// Net is the firewall-traversal instruments (net.go).
	Net *Net
	// LayerSwitches counts subscribers' simulcast layer switches, by
	// reason: requested|bandwidth|publisher.
	LayerSwitches *prometheus.CounterVec
	// PausedViewers is the number of subscribers' video tracks paused
	// because their downlink does not carry the lowest layer.
	PausedViewers prometheus.Gauge
	// ProbeBytes counts padding bytes sent to probe subscribers' downlinks.
	ProbeBytes prometheus.Counter
	// SendPaths counts subscriber PCs by the send path they connected
	// on: direct|pion (sfu/directsend.go).
	SendPaths *prometheus.CounterVec
	// BandwidthEstimate is the distribution of subscribers' downlink
	// estimates (bit/s), observed at each layer decision that has one.
	BandwidthEstimate prometheus.Histogram
}

// New builds the instruments on a fresh registry, together with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Rooms: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relayd_rooms",
			Help: "Rooms by status.",
		}, []string{"status"}),
		Participants: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relayd_participants",
			Help: "Connected participants by role.",
		}, []string{"role"}),
		Tracks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relayd_tracks",
			Help: "Published tracks by kind.",
		}, []string{"kind"}),
		PacketsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_packets_in_total",
			Help: "RTP packets received from publishers.",
		}, []string{"kind"}),
		BytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_bytes_in_total",
			Help: "RTP bytes received from publishers.",
		}, []string{"kind"}),
		PacketsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_packets_out_total",
			Help: "RTP packets written to subscribers.",
		}, []string{"kind"}),
		BytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_bytes_out_total",
			Help: "RTP bytes written to subscribers.",
		}, []string{"kind"}),
		NACKs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_nacks_total",
			Help: "NACKed RTP sequence numbers.",
		}, []string{"direction"}),
		Retransmits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_retransmits_total",
			Help: "Retransmission requests by result (hit: served from the upstream cache, miss: not in it).",
		}, []string{"result"}),
		KeyframeReplays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relayd_keyframe_replays_total",
			Help: "Subscribers started from the newest cached keyframe instead of asking the publisher for one.",
		}),
		PLIs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_plis_total",
			Help: "Picture loss indications (to_publisher is counted after throttling).",
		}, []string{"direction"}),
		Drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_packets_dropped_total",
			Help: "RTP packets not forwarded to a subscriber, by reason.",
		}, []string{"kind", "reason"}),
		ForwardLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relayd_forward_latency_seconds",
			Help: "Time from reading a packet from a publisher to writing it to a subscriber.",
			// 13 doubling buckets from 25µs to 25µs*2^12 = 102.4ms: a
			// healthy forward takes tens of microseconds, and anything
			// past 100ms is already a visible stall.
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 13),
		}),
		JoinLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relayd_join_latency_seconds",
			Help: "Time from the WebSocket upgrade to the answered join request.",
			// 1-2.5-5 steps from 1ms to 5s: a join on loopback takes a few
			// milliseconds, one over the internet some hundreds, and 5s is
			// about where a user gives up.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		WSConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relayd_ws_connections",
			Help: "Open signaling WebSocket connections.",
		}),
		RPCRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_rpc_requests_total",
			Help: `JSON-RPC requests by method and result code ("0" for success).`,
		}, []string{"method", "code"}),
		Invitations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_invitations_total",
			Help: "Invitation transitions, by the status entered (creation enters pending).",
		}, []string{"status"}),
		InvitationAcceptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relayd_invitation_accept_seconds",
			Help: "Time from an invitation's creation to its acceptance.",
			// 1s to 30min: an invitee watching the page accepts within
			// seconds, one who has to notice it within minutes; the
			// default TTL (10m) caps it, and 30min leaves room for a
			// longer --invitation-ttl.
			Buckets: []float64{1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800},
		}),
		Relays: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relayd_relays",
			Help: "Running relays by state.",
		}, []string{"state"}),
		RelayDestinations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relayd_relay_destinations",
			Help: "Destinations of running relays.",
		}),
		RelayLinks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relayd_relay_links",
			Help: "Node-to-node relay links (one WebRTC PeerConnection per node pair; cluster mode).",
		}),
		BridgedConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relayd_bridged_connections",
			Help: "WebSockets bridged to the node of their room (cluster mode); also counted in relayd_ws_connections.",
		}),
		RelayPackets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relayd_relay_packets_total",
			Help: "RTP packets relayed into destination rooms.",
		}),
		RelayStartLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relayd_relay_start_seconds",
			Help: "Relay start (or destination added) to the first packet written in that destination.",
			// 1 ms to ~8 s: the join is in-process; the wait is for the
			// source's next packet, a keyframe request away at worst.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		Chat: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_chat_messages_total",
			Help: "Chat messages by event: sent, deleted, rate_limited.",
		}, []string{"event"}),
		LayerSwitches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_layer_switches_total",
			Help: "Subscribers' simulcast layer switches by reason: requested, bandwidth, publisher.",
		}, []string{"reason"}),
		PausedViewers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relayd_bandwidth_paused_tracks",
			Help: "Subscribers' video tracks paused because their downlink does not carry the lowest layer.",
		}),
		SendPaths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_subscriber_send_path_total",
			Help: "Subscriber PeerConnections by the send path they connected on: direct, pion.",
		}, []string{"path"}),
		ProbeBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relayd_probe_bytes_total",
			Help: "Padding bytes sent to probe subscribers' downlinks.",
		}),
		BandwidthEstimate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relayd_bandwidth_estimate_bps",
			Help: "Subscribers' downlink estimates (bit/s), observed at each layer decision.",
			// 50 kbit/s to ~50 Mbit/s: audio only up to several 1080p layers.
			Buckets: prometheus.ExponentialBuckets(50_000, 2, 11),
		}),
	}

	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Rooms, m.Participants, m.Tracks,
		m.PacketsIn, m.BytesIn, m.PacketsOut, m.BytesOut,
		m.NACKs, m.Retransmits, m.PLIs, m.KeyframeReplays, m.Drops,
		m.ForwardLatency, m.JoinLatency,
		m.WSConnections, m.RPCRequests,
		m.Invitations, m.InvitationAcceptSeconds,
		m.Relays, m.RelayDestinations, m.RelayPackets, m.RelayStartLatency,
		m.RelayLinks, m.BridgedConnections,
		m.Chat,
		m.LayerSwitches, m.PausedViewers, m.ProbeBytes, m.BandwidthEstimate, m.SendPaths,
	)

	precreate(m.Rooms, roomStatuses)
	precreate(m.Participants, participantRoles)
	precreate(m.Tracks, mediaKinds)
	for _, c := range []*prometheus.CounterVec{m.PacketsIn, m.BytesIn, m.PacketsOut, m.BytesOut} {
		precreate(c, mediaKinds)
	}
	precreate(m.NACKs, nackDirections)
	precreate(m.Retransmits, retransmitResult)
	precreate(m.PLIs, pliDirections)
	precreate(m.Invitations, invitationStatuses)
	precreate(m.Relays, []string{"connecting", "running", "failure"})
	precreate(m.Chat, []string{"sent", "deleted", "rate_limited"})
	precreate(m.LayerSwitches, []string{"requested", "bandwidth", "publisher"})
	for _, kind := range mediaKinds {
		for _, reason := range dropReasons {
			m.Drops.WithLabelValues(kind, reason)
		}
	}
	m.Resume = newResume(m.Registry)
	m.Net = newNet(m.Registry)
	// RPCRequests is not pre-created: its method set belongs to the
	// signaling package, and method x code would mostly be empty series.
	return m
}

// vec is what GaugeVec and CounterVec have in common for precreate.
type vec[T any] interface {
	WithLabelValues(lvs ...string) T
}

// precreate creates the child of a one-label vector for each value.
func precreate[T any](v vec[T], values []string) {
	for _, value := range values {
		v.WithLabelValues(value)
	}
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		// A failing collector (the process collector on an odd platform,
		// say) must not blank out the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
	})
}
