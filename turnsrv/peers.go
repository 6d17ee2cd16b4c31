package turnsrv

import (
	"net"
	"net/netip"
)

// MediaAddrs returns relayd's media addresses, the only peers the TURN
// server relays to: the IPs of its ICE host candidates with the UDP media
// port. bound is the IP the media socket binds (unspecified: every
// interface's IP, loopback only when loopback is set, as ICE gathers
// them); public, when valid, is announced instead of them (--public-ip)
// and added.
func MediaAddrs(bound netip.Addr, port uint16, public netip.Addr, loopback bool) ([]netip.AddrPort, error) {
	var ifaces []netip.Addr
	if !bound.IsValid() || bound.IsUnspecified() {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				ifaces = append(ifaces, p.Addr())
			}
		}
	}
	return mediaAddrs(bound, port, public, loopback, ifaces), nil
}

// mediaAddrs is MediaAddrs with the interfaces' addresses given.
func mediaAddrs(bound netip.Addr, port uint16, public netip.Addr, loopback bool, ifaces []netip.Addr) []netip.AddrPort {
	var out []netip.AddrPort
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		a = a.Unmap()
		if a.IsValid() && !seen[a] {
			seen[a] = true
			out = append(out, netip.AddrPortFrom(a, port))
		}
	}
	if bound.IsValid() && !bound.IsUnspecified() {
		add(bound)
	} else {
		for _, a := range ifaces {
			a = a.Unmap()
			// IPv4 only, as the media socket (udp4); link-local
			// addresses are not gathered.
			if !a.Is4() || a.IsLinkLocalUnicast() || (a.IsLoopback() && !loopback) {
				continue
			}
			add(a)
		}
	}
	if public.IsValid() {
		add(public)
	}
	return out
}

// RelayIP is the address relayed candidates announce: --public-ip when
// set (a client outside reaches the relay there), else the first of
// relayd's media addresses (the IP the client's TURN traffic arrives on
// is one of them, and relayd's ICE reaches it).
func RelayIP(public netip.Addr, media []netip.AddrPort) netip.Addr {
	if public.IsValid() {
		return public.Unmap()
	}
	for _, m := range media {
		if !m.Addr().IsLoopback() {
			return m.Addr()
		}
	}
	if len(media) > 0 {
		return media[0].Addr()
	}
	return netip.Addr{}
}
