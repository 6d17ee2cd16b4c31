package turnsrv

import (
	"errors"
	"net"
	"net/netip"
	"strconv"

	"github.com/pion/turn/v5"
)

// errTCPRelay refuses TCP allocations: relayd's media is UDP, and a TCP
// relay (RFC 6062) could reach any TCP service of relayd's host.
var errTCPRelay = errors.New("turnsrv: TCP relays are not offered")

// relayGen makes the relay sockets of one listener's allocations: UDP
// sockets on RelayBind announcing RelayIP, each wrapped in a relayConn,
// and recorded with the listener's transport so that relayd's ICE can
// tell which transport a relayed client came over.
type relayGen struct {
	s         *Server
	transport string
}

func (g *relayGen) Validate() error { return nil }

func (g *relayGen) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	conn, err := net.ListenPacket(c.Network, net.JoinHostPort(g.s.cfg.RelayBind, strconv.Itoa(c.RequestedPort)))
	if err != nil {
		return nil, nil, err
	}
	local, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		_ = conn.Close()
		return nil, nil, errors.New("turnsrv: relay socket without a UDP address")
	}
	relay := &net.UDPAddr{IP: g.s.cfg.RelayIP, Port: local.Port}
	key, _ := addrPort(relay)
	keys := []netip.AddrPort{key}
	if nat := natOut(key, g.s.cfg.PublicIP, g.s.cfg.LocalIP); nat != key {
		// Behind the NAT relayd's ICE sees the relay at its local
		// address (the source of what the relay sends it).
		keys = append(keys, nat)
	}
	g.s.mu.Lock()
	for _, k := range keys {
		g.s.relays[k] = g.transport
	}
	g.s.mu.Unlock()
	return &relayConn{PacketConn: conn, s: g.s, keys: keys}, relay, nil
}

func (g *relayGen) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	g.s.refuse(reasonTCPRelay)
	return nil, nil, errTCPRelay
}

func (g *relayGen) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	g.s.refuse(reasonTCPRelay)
	return nil, errTCPRelay
}

// relayConn is an allocation's relay socket that exchanges packets with
// relayd's media addresses only: pion checks permissions by IP, so this
// also keeps the port to relayd's media port, both ways. What it drops it
// counts, silently (pion would only log an error).
type relayConn struct {
	net.PacketConn
	s    *Server
	keys []netip.AddrPort // its addresses in s.relays
}

func (c *relayConn) WriteTo(p []byte, a net.Addr) (int, error) {
	ap, ok := addrPort(a)
	if !ok {
		c.s.refuse(reasonPeer)
		return len(p), nil
	}
	if r := peerVerdict(c.s.peers, c.s.peerIPs, ap); r != "" {
		c.s.refuse(r)
		return len(p), nil
	}
	if to := natOut(ap, c.s.cfg.PublicIP, c.s.cfg.LocalIP); to != ap {
		return c.PacketConn.WriteTo(p, net.UDPAddrFromAddrPort(to))
	}
	return c.PacketConn.WriteTo(p, a)
}

func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, a, err
		}
		ap, ok := addrPort(a)
		if !ok {
			continue
		}
		r := peerVerdict(c.s.peers, c.s.peerIPs, ap)
		if r == "" {
			if from := natIn(ap, c.s.cfg.PublicIP, c.s.cfg.LocalIP); from != ap {
				return n, net.UDPAddrFromAddrPort(from), nil
			}
			return n, a, nil
		}
		c.s.refuse(r)
	}
}

func (c *relayConn) Close() error {
	c.s.mu.Lock()
	for _, k := range c.keys {
		delete(c.s.relays, k)
	}
	c.s.mu.Unlock()
	return c.PacketConn.Close()
}

// natOut is where a packet for a goes: relayd's public address (the
// client knows relayd by it) becomes its local one; anything else stays.
// Without a NAT (public or local not set) it is a.
func natOut(a netip.AddrPort, public, local netip.Addr) netip.AddrPort {
	if public.IsValid() && local.IsValid() && a.Addr().Unmap() == public.Unmap() {
		return netip.AddrPortFrom(local.Unmap(), a.Port())
	}
	return a
}

// natIn is who a packet from a is said to come from: relayd's local
// address becomes its public one, the one the client's permission names.
func natIn(a netip.AddrPort, public, local netip.Addr) netip.AddrPort {
	if public.IsValid() && local.IsValid() && a.Addr().Unmap() == local.Unmap() {
		return netip.AddrPortFrom(public.Unmap(), a.Port())
	}
	return a
}
