// Package turnsrv is relayd's embedded TURN server (pion/turn): TURN over
// UDP and TCP on one port and over TLS on another, for clients whose
// network blocks UDP or lets only TCP 443 out. It is not an open relay:
// it relays only to relayd's own media addresses (Config.Peers), and only
// for clients holding a short-lived TURN REST credential (credential.go)
// that relayd hands out in the join result's iceServers.
package turnsrv

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/relaysfu/relayd/metrics"
)

// Realm is the TURN realm (part of the long-term credential key).
const Realm = "relayd"

// Transport labels of a relay, by the client's transport to the TURN
// server (the transport label of relayd_ice_connections_total).
const (
	TransportUDP = "turn_udp"
	TransportTCP = "turn_tcp"
	TransportTLS = "turn_tls"
)

// Refusal reasons of peers (credentials' are in credential.go).
const (
	reasonPeer     = "peer"      // an IP that is not relayd's
	reasonPeerPort = "peer_port" // relayd's IP, another port than its media port
	reasonTCPRelay = "tcp_relay" // a TCP allocation (RFC 6062): media is UDP
	reasonQuota    = "quota"     // one credential's allocations beyond maxAllocationsPerUser
)

// maxAllocationsPerUser caps the live allocations of one username (one
// session's credential): a browser makes one per TURN URL and
// PeerConnection (3 URLs x 2 PCs), and as many again across an ICE
// restart before the old ones expire; 16 leaves room for that and stops
// one credential from holding relay sockets by the thousand.
const maxAllocationsPerUser = 16

// Config configures a Server. At least one of UDP, TCP and TLS is needed;
// the Server owns them (Close closes them).
type Config struct {
	// Secret keys the credentials (the same as relayd's token secret).
	Secret []byte
	// Host is the TURN server's host in the iceServers URLs: a DNS name
	// (which a TLS certificate must cover) or an IP.
	Host string
	// UDP and TCP are TURN's plain listeners (one port number, both
	// protocols); TLS serves TURN over TLS (a tls.NewListener).
	UDP net.PacketConn
	TCP net.Listener
	TLS net.Listener
	// RelayIP is the address relayed candidates announce: one relayd's
	// media can reach (relay sockets bind it, or RelayBind when set).
	RelayIP   net.IP
	RelayBind string
	// Peers are relayd's media addresses (its ICE host candidates' IP and
	// UDP port): the only addresses relayed to or from.
	Peers []netip.AddrPort
	// PublicIP and LocalIP, when both are set, are relayd's 1:1 NAT
	// (--public-ip): its candidates announce PublicIP, which the relay
	// sockets, on the same host, reach at LocalIP instead (relay.go), so
	// that relaying needs no hairpin through the NAT.
	PublicIP, LocalIP netip.Addr
	// Now is the clock (nil: time.Now); tests move it.
	Now     func() time.Time
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Server is a running TURN server.
type Server struct {
	cfg     Config
	srv     *turn.Server
	peers   map[netip.AddrPort]bool
	peerIPs map[netip.Addr]bool
	log     *slog.Logger
	net     *metrics.Net // nil without Metrics

	mu      sync.Mutex
	relays  map[netip.AddrPort]string // live relay address -> TransportUDP|TCP|TLS
	allocs  map[allocKey]string       // live allocation -> its transport
	users   map[userKey]int           // live allocations per client address and username
	perUser map[string]int            // live allocations per username
}

// allocKey is an allocation as pion's events name it (its 5-tuple's
// addresses, and the user).
type allocKey struct{ src, dst, user string }

// userKey is a client address and the username it authenticated with.
type userKey struct{ src, user string }

// Start starts a TURN server on cfg's listeners.
func Start(cfg Config) (*Server, error) {
	if cfg.UDP == nil && cfg.TCP == nil && cfg.TLS == nil {
		return nil, errors.New("turnsrv: no listener")
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("turnsrv: a secret is required")
	}
	if cfg.RelayIP == nil {
		return nil, errors.New("turnsrv: RelayIP is required")
	}
	if len(cfg.Peers) == 0 {
		return nil, errors.New("turnsrv: no peers: the server would relay to nobody")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RelayBind == "" {
		cfg.RelayBind = cfg.RelayIP.String()
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger,
		peers: map[netip.AddrPort]bool{}, peerIPs: map[netip.Addr]bool{},
		relays: map[netip.AddrPort]string{}, allocs: map[allocKey]string{}, users: map[userKey]int{},
		perUser: map[string]int{},
	}
	if cfg.Metrics != nil {
		s.net = cfg.Metrics.Net
	}
	for _, p := range cfg.Peers {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		s.peers[p] = true
		s.peerIPs[p.Addr()] = true
	}
	sc := turn.ServerConfig{
		Realm:         Realm,
		AuthHandler:   s.auth,
		QuotaHandler:  s.quota,
		LoggerFactory: &logging.DefaultLoggerFactory{Writer: io.Discard},
		EventHandler: turn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
		},
	}
	if cfg.UDP != nil {
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: cfg.UDP, RelayAddressGenerator: &relayGen{s: s, transport: TransportUDP},
			PermissionHandler: s.permit,
		})
	}
	for _, l := range []struct {
		ln        net.Listener
		transport string
	}{{cfg.TCP, TransportTCP}, {cfg.TLS, TransportTLS}} {
		if l.ln != nil {
			sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
				Listener: l.ln, RelayAddressGenerator: &relayGen{s: s, transport: l.transport},
				PermissionHandler: s.permit,
			})
		}
	}
	srv, err := turn.NewServer(sc)
	if err != nil {
		return nil, fmt.Errorf("turnsrv: %w", err)
	}
	s.srv = srv
	return s, nil
}

// Close stops the server: its listeners and every allocation.
func (s *Server) Close() error {
	return s.srv.Close()
}

// ICEServer is an RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICEServers returns the iceServers for identity, with a credential valid
// until expiry: one server with a URL per listener, turn:H:P?transport=udp,
// turn:H:P?transport=tcp and turns:H:PT?transport=tcp.
func (s *Server) ICEServers(identity string, expiry time.Time) []ICEServer {
	var urls []string
	if s.cfg.UDP != nil {
		urls = append(urls, "turn:"+s.hostPort(s.cfg.UDP.LocalAddr())+"?transport=udp")
	}
	if s.cfg.TCP != nil {
		urls = append(urls, "turn:"+s.hostPort(s.cfg.TCP.Addr())+"?transport=tcp")
	}
	if s.cfg.TLS != nil {
		urls = append(urls, "turns:"+s.hostPort(s.cfg.TLS.Addr())+"?transport=tcp")
	}
	user, pass := Credential(s.cfg.Secret, identity, expiry)
	return []ICEServer{{URLs: urls, Username: user, Credential: pass}}
}

// hostPort is Host with a listener's port.
func (s *Server) hostPort(a net.Addr) string {
	port := 0
	switch a := a.(type) {
	case *net.UDPAddr:
		port = a.Port
	case *net.TCPAddr:
		port = a.Port
	}
	return net.JoinHostPort(s.cfg.Host, strconv.Itoa(port))
}

// TransportOf reports, for a remote address relayd's ICE sees, the TURN
// transport of the live relay it is (TransportUDP, TCP or TLS), or "" when
// it is not one of this server's relays.
func (s *Server) TransportOf(ip net.IP, port int) string {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.relays[netip.AddrPortFrom(a.Unmap(), uint16(port))]
}

// refuse counts a refusal.
func (s *Server) refuse(reason string) {
	if s.net != nil {
		s.net.TURNRefusals.WithLabelValues(reason).Inc()
	}
}

// auth is pion's AuthHandler: the key of a valid TURN REST username. An
// expired one still authenticates the requests of an allocation it made
// while valid (Refresh, CreatePermission, ChannelBind from the same client
// address): an allocation stays refreshable while its session lives, and
// a session may outlive its token. A new Allocate needs a valid one.
func (s *Server) auth(ra *turn.RequestAttributes) (string, []byte, bool) {
	pass, reason := checkUsername(s.cfg.Secret, ra.Username, s.cfg.Now())
	if reason == reasonExpired && ra.Method != stun.MethodAllocate && s.hasAllocation(ra.SrcAddr, ra.Username) {
		pass, reason = password(s.cfg.Secret, ra.Username), ""
	}
	if reason != "" {
		s.refuse(reason)
		s.log.Debug("turn: credential refused", "reason", reason, "client", addrString(ra.SrcAddr))
		return "", nil, false
	}
	return ra.Username, turn.GenerateAuthKey(ra.Username, Realm, pass), true
}

// onAuth counts a message whose integrity did not match the key auth gave
// (pion calls it with false only then): a forged credential.
func (s *Server) onAuth(src, _ net.Addr, _, _, _, method string, verdict bool) {
	if !verdict {
		s.refuse(reasonForged)
		s.log.Debug("turn: forged credential", "client", addrString(src), "method", method)
	}
}

func (s *Server) hasAllocation(src net.Addr, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[userKey{addrString(src), user}] > 0
}

func (s *Server) onAllocationCreated(src, dst net.Addr, _, user, _ string, relay net.Addr, _ int) {
	tr := ""
	if a, ok := addrPort(relay); ok {
		s.mu.Lock()
		tr = s.relays[a]
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.allocs[allocKey{addrString(src), addrString(dst), user}] = tr
	s.users[userKey{addrString(src), user}]++
	s.perUser[user]++
	s.mu.Unlock()
	if s.net != nil && tr != "" {
		s.net.TURNAllocations.WithLabelValues(listenerLabel(tr)).Inc()
		s.net.TURNAllocationsTotal.WithLabelValues(listenerLabel(tr)).Inc()
	}
}

func (s *Server) onAllocationDeleted(src, dst net.Addr, _, user, _ string) {
	k := allocKey{addrString(src), addrString(dst), user}
	s.mu.Lock()
	tr, ok := s.allocs[k]
	delete(s.allocs, k)
	if ok {
		uk := userKey{k.src, user}
		if s.users[uk]--; s.users[uk] <= 0 {
			delete(s.users, uk)
		}
		if s.perUser[user]--; s.perUser[user] <= 0 {
			delete(s.perUser, user)
		}
	}
	s.mu.Unlock()
	if ok && s.net != nil && tr != "" {
		s.net.TURNAllocations.WithLabelValues(listenerLabel(tr)).Dec()
	}
}

// quota is pion's QuotaHandler: at most maxAllocationsPerUser live
// allocations per username (486 Allocation Quota Reached beyond).
func (s *Server) quota(user, _ string, src net.Addr) bool {
	s.mu.Lock()
	n := s.perUser[user]
	s.mu.Unlock()
	if n < maxAllocationsPerUser {
		return true
	}
	s.refuse(reasonQuota)
	s.log.Debug("turn: allocation quota reached", "client", addrString(src))
	return false
}

// listenerLabel is the allocation metrics' label of a relay transport.
func listenerLabel(transport string) string {
	switch transport {
	case TransportTCP:
		return "tcp"
	case TransportTLS:
		return "tls"
	}
	return "udp"
}

// permit is pion's PermissionHandler (CreatePermission, ChannelBind): only
// relayd's own IPs.
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	a, ok := netip.AddrFromSlice(peer)
	if ok && s.peerIPs[a.Unmap()] {
		return true
	}
	s.refuse(reasonPeer)
	s.log.Debug("turn: permission refused", "client", addrString(client), "peer", peer.String())
	return false
}

// peerVerdict is why a packet to or from a is refused ("" when a is one of
// relayd's media addresses).
func peerVerdict(peers map[netip.AddrPort]bool, ips map[netip.Addr]bool, a netip.AddrPort) string {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	switch {
	case peers[a]:
		return ""
	case ips[a.Addr()]:
		return reasonPeerPort
	}
	return reasonPeer
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// addrPort is a UDP or TCP address as a netip.AddrPort.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	return netip.AddrPort{}, false
}
