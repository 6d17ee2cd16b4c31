package app

// Firewall traversal (PROTOCOL.md 1.1 §4): the embedded TURN server and
// the iceServers every join result carries. ICE-TCP needs nothing here
// beyond handing Options.TCPListener to the sfu.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/signaling"
	"github.com/relaysfu/relayd/turnsrv"
)

// TURNOptions configure the embedded TURN server; the App owns its
// listeners from New on (it closes them, also when New fails).
type TURNOptions struct {
	UDP net.PacketConn // TURN over UDP (--turn-port)
	TCP net.Listener   // TURN over TCP (the same port number)
	TLS net.Listener   // TURN over TLS (--turn-tls-port): a tls.NewListener
	// Host is the host of the iceServers URLs (--turn-host); "" is the
	// relay address (--public-ip, else the media socket's IP).
	Host string
}

func (t *TURNOptions) close() {
	for _, c := range []interface{ Close() error }{t.UDP, t.TCP, t.TLS} {
		if c != nil {
			_ = c.Close()
		}
	}
}

// startTURN starts the embedded TURN server of o.TURN (nil without one):
// it relays only to the media socket's addresses, those relayd's ICE
// offers as host candidates.
func startTURN(o Options, loopback bool, m *metrics.Metrics) (*turnsrv.Server, error) {
	t := o.TURN
	if t == nil || (t.UDP == nil && t.TCP == nil && t.TLS == nil) {
		return nil, nil
	}
	ua, ok := o.UDPConn.LocalAddr().(*net.UDPAddr)
	if !ok {
		t.close()
		return nil, errors.New("turn: the media socket has no UDP address")
	}
	bound := ua.AddrPort().Addr().Unmap()
	var public netip.Addr
	if o.PublicIP != "" {
		var err error
		if public, err = netip.ParseAddr(o.PublicIP); err != nil {
			t.close()
			return nil, fmt.Errorf("turn: --public-ip: %w", err)
		}
	}
	// The media socket's own addresses, then the public one.
	direct, err := turnsrv.MediaAddrs(bound, ua.AddrPort().Port(), netip.Addr{}, loopback)
	if err != nil {
		t.close()
		return nil, fmt.Errorf("turn: finding relayd's media addresses: %w", err)
	}
	peers := direct
	relayIP := turnsrv.RelayIP(netip.Addr{}, direct)
	bind := relayIP.String()
	var nat, local netip.Addr
	if public.IsValid() && !slices.Contains(direct, netip.AddrPortFrom(public, ua.AddrPort().Port())) {
		// Behind 1:1 NAT the public IP is not local. Relayed candidates
		// announce it; the relay sockets bind a local address and reach
		// the media port at it (the translation in turnsrv), with no
		// hairpin through the NAT.
		peers = append(slices.Clone(direct), netip.AddrPortFrom(public, ua.AddrPort().Port()))
		nat, local = public, relayIP
		relayIP = public
		if !bound.IsValid() || bound.IsUnspecified() {
			bind = "0.0.0.0"
		}
	}
	if len(peers) == 0 || !relayIP.IsValid() {
		t.close()
		return nil, errors.New("turn: the media socket has no address a relay could reach")
	}
	host := t.Host
	if host == "" {
		host = relayIP.String()
	}
	s, err := turnsrv.Start(turnsrv.Config{
		Secret: o.Secret, Host: host, UDP: t.UDP, TCP: t.TCP, TLS: t.TLS,
		RelayIP: relayIP.AsSlice(), RelayBind: bind, Peers: peers, PublicIP: nat, LocalIP: local,
		Metrics: m, Logger: o.Logger,
	})
	if err != nil {
		t.close()
		return nil, err
	}
	o.Logger.Info("turn server", "host", host, "relay_ip", relayIP.String(), "peers", fmt.Sprint(peers))
	return s, nil
}

// iceServersFor gives signaling the iceServers of a session: none without
// TURN; else a credential for the token's identity valid until the
// token's exp plus the reconnect grace, so that it outlives a session
// that ends with its token (a held session may resume until then). The
// TURN server also keeps an allocation made with it refreshable after
// that (turnsrv's auth). signaling calls it for every join result (and
// for token.refresh, with the new token's claims).
func iceServersFor(t *turnsrv.Server, grace time.Duration) func(*signaling.Claims) []signaling.ICEServer {
	if t == nil {
		return nil
	}
	return func(c *signaling.Claims) []signaling.ICEServer {
		exp := time.Now()
		if c.ExpiresAt != nil {
			exp = c.ExpiresAt.Time
		}
		list := t.ICEServers(c.Subject, exp.Add(grace))
		out := make([]signaling.ICEServer, len(list))
		for i, s := range list {
			out[i] = signaling.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential}
		}
		return out
	}
}
