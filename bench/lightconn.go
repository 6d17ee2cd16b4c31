package bench

// The light viewer's network (lightviewer.go): a transport.Net handed to
// pion through SettingEngine.SetNet, whose UDP sockets keep the media from
// pion. Each datagram read is sorted by its first bytes (RFC 7983, with
// RFC 5761 for RTP against RTCP on one port):
//
//   - SRTP media (first byte 128..191, second byte not 192..223): counted
//     from its RTP header, which SRTP leaves in the clear (SSRC, sequence
//     number, marker), and not passed up: pion never decrypts it, parses it
//     or runs an interceptor on it;
//   - everything else (STUN 0..3, DTLS 20..63, SRTCP) is passed up
//     unchanged, so ICE, DTLS and RTCP work as for any PeerConnection.
//
// The server sends media only over an established SRTP session, so no
// media datagram comes before DTLS is done; sorting by the first bytes
// needs no word from pion.

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/transport/v5"
	"golang.org/x/net/ipv4"
)

// lightNet is the real network (sockets, interfaces, resolving) but for
// the UDP sockets ICE opens for its host candidates (ListenUDP), which come
// wrapped in a lightConn feeding sink. ListenPacket (server-reflexive and
// relayed candidates: STUN and TURN servers, which loopback runs have
// none of) is left as it is.
type lightNet struct {
	transport.Net
	sink *lightCounter
	pump *lightPump // reads the sockets once the first frame is in (nil: their own loops do)
}

// ListenUDP opens the socket and wraps it.
func (n *lightNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	udp, ok := c.(*net.UDPConn)
	if !ok {
		return c, nil // not a kernel socket: nothing to batch, pion sees all
	}
	return newLightConn(udp, n.sink, n.pump), nil
}

// lightConn is one UDP socket of a light viewer. It implements pion ice's
// AddrPortReaderWriter, so the candidate's read loop (its only reader)
// calls ReadFromAddrPort. The socket's other methods (writes, addresses,
// deadlines, Close) are the socket's own: the embedded interface promotes
// only those of transport.UDPConn, and every read among them is overridden
// here, so no read can bypass the sorting.
type lightConn struct {
	transport.UDPConn
	udp  *net.UDPConn
	r    *batchReader // the read loop's, then the pump's once handed over
	sink *lightCounter
	pump *lightPump

	// the batch being handed out: messages [next, n) of r are not
	// sorted yet (the candidate's read loop is the only caller)
	n, next int
	media   [][]byte // scratch: the batch's media datagrams (then the pump's)
	pumped  bool     // the read loop handed the socket to the pump

	// once pumped: what the pump read that is not media; closed when
	// the socket failed, perr saying why (set before the close)
	inbox chan datagram
	perr  error

	// once pumped: the socket out of the runtime's poller
	// (lightdetach.go); writeMu orders writes with the switch to it
	det     atomic.Pointer[detachedUDP]
	writeMu sync.RWMutex
	raw     *rawBatch // the pump's, reading det
}

func newLightConn(udp *net.UDPConn, sink *lightCounter, pump *lightPump) *lightConn {
	return &lightConn{
		UDPConn: udp, udp: udp, r: newBatchReader(udp), sink: sink, pump: pump,
		media: make([][]byte, 0, lightBatch), inbox: make(chan datagram, inboxSize),
	}
}

// isMedia reports whether datagram b is RTP (RFC 7983: first byte
// 128..191; RFC 5761: RTCP's packet types 192..223 sit where RTP has the
// marker bit and payload type, which avoids 64..95 for that reason).
func isMedia(b []byte) bool {
	return len(b) >= 12 && b[0] >= 128 && b[0] <= 191 && (b[1] < 192 || b[1] > 223)
}

// ReadFromAddrPort returns the next datagram that is not media, after
// counting the media read on the way. Once the viewer has its first frame
// (the bench then stops timing its packets' arrival) the socket goes to
// the pump (lightpump.go), between two batches, and this waits on what
// the pump hands over.
func (c *lightConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		if c.pumped {
			d, ok := <-c.inbox
			if !ok {
				return 0, netip.AddrPort{}, c.perr
			}
			return copy(b, d.b), d.from, nil
		}
		for c.next < c.n {
			m := &c.r.msgs[c.next]
			c.next++
			p := m.Buffers[0][:m.N]
			if isMedia(p) {
				continue // counted when the batch came in
			}
			return copy(b, p), senderOf(m), nil
		}
		if c.pump != nil && c.sink.pace() {
			c.pumped = true
			c.detach()
			c.pump.add(c)
			continue
		}
		n, err := c.r.read()
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
		c.n, c.next = n, 0
		c.countMedia(n)
	}
}

// detach takes the socket out of the runtime's poller before the pump
// reads it (lightdetach.go). Run by the read loop, before the pump has
// it. If the descriptor cannot be duplicated, the pump reads the socket as
// it is.
func (c *lightConn) detach() {
	d, err := detachUDP(c.udp)
	if err != nil {
		return
	}
	c.raw = newRawBatch(c.r)
	c.writeMu.Lock()
	c.det.Store(d)
	_ = c.udp.Close() // the duplicate keeps the socket open
	c.writeMu.Unlock()
}

// WriteToAddrPort writes to the socket.
func (c *lightConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	c.writeMu.RLock()
	defer c.writeMu.RUnlock()
	if d := c.det.Load(); d != nil {
		return d.writeTo(b, addr)
	}
	return c.udp.WriteToUDPAddrPort(b, addr)
}

// WriteTo is WriteToAddrPort with a net.Addr.
func (c *lightConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return c.udp.WriteTo(b, addr)
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// Close closes the socket.
func (c *lightConn) Close() error {
	if d := c.det.Load(); d != nil {
		return d.Close() // the original is closed already
	}
	return c.udp.Close()
}

// ReadFrom is ReadFromAddrPort with a net.Addr.
func (c *lightConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.ReadFromUDP(b)
	if addr == nil {
		return n, nil, err
	}
	return n, addr, err
}

// ReadFromUDP is ReadFromAddrPort with a *net.UDPAddr.
func (c *lightConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, ap, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// Read is ReadFromAddrPort without the sender.
func (c *lightConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFromAddrPort(b)
	return n, err
}

// ReadMsgUDP is ReadFromUDP; no control messages are read.
func (c *lightConn) ReadMsgUDP(b, _ []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	n, addr, err = c.ReadFromUDP(b)
	return n, 0, 0, addr, err
}

// countMedia counts the media among the first n datagrams of the batch
// just read (the read loop's, or the pump's once handed over).
func (c *lightConn) countMedia(n int) {
	c.media = c.media[:0]
	for i := 0; i < n; i++ {
		m := &c.r.msgs[i]
		if p := m.Buffers[0][:m.N]; isMedia(p) {
			c.media = append(c.media, p)
		}
	}
	if len(c.media) > 0 {
		c.sink.onBatch(c.media, nowNano())
	}
}

// senderOf is a datagram's sender (zero when x/net gave none).
func senderOf(m *ipv4.Message) netip.AddrPort {
	if ua, ok := m.Addr.(*net.UDPAddr); ok {
		return ua.AddrPort()
	}
	return netip.AddrPort{}
}
