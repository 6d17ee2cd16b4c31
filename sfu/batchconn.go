package sfu

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// batchConn is the media socket with batched writes: packets written
// within a few hundred microseconds leave in one sendmmsg(2) instead of one
// sendto(2) each. On the development VM a system call costs ~2.7 µs before
// any work, as much as the kernel's whole UDP path for a packet: measured
// with 200 loopback receivers, sendto takes 4.3 µs a packet and sendmmsg of
// 32 takes 1.6 µs (BENCHMARKS.md). A writer fans one packet out to its 32
// subscribers in ~150 µs, so batches fill by size; flushDelay bounds the
// wait of the last few packets of a burst, and of DTLS/STUN/RTCP writes,
// which share the socket.
//
// It implements pion ice's AddrPortReaderWriter, so the UDP mux writes
// through it without allocating a net.Addr per packet. Reads go straight
// to the socket; a subscriber's RTCP that the direct path reads
// (directrecv.go) is taken there and never reaches the UDP mux.
//
// Goroutines: none of its own; the flush timer's function runs briefly on
// the runtime's timer goroutine. close stops it.
type batchConn struct {
	*net.UDPConn
	pc *ipv4.PacketConn

	// sendMu keeps batches in order on the wire: a batch is taken out
	// under mu and sendMu is locked before mu is released, so the next
	// batch cannot overtake it (the timer and a writer may flush at once).
	sendMu sync.Mutex

	mu     sync.Mutex
	cur    *batch      // guarded by mu: the batch being filled
	free   []*batch    // guarded by mu: batches to reuse
	timer  *time.Timer // guarded by mu: flushes cur after flushDelay
	armed  bool        // guarded by mu
	closed bool        // guarded by mu

	taps rtcpTaps
}

const (
	// batchSize: messages per sendmmsg. Past 32 the gain per packet is
	// within noise (1.84 µs at 8, 1.59 µs at 32).
	batchSize = 32
	// flushDelay: the longest a packet waits for its batch to fill.
	flushDelay = 200 * time.Microsecond
)

// batch is one sendmmsg worth of packets, with its own copies of them.
type batch struct {
	msgs  []ipv4.Message
	addrs []net.UDPAddr
	ips   [][16]byte
	bufs  [][MaxPacketSize + 100]byte // SRTP adds a 16-byte tag; DTLS records stay under the MTU
	n     int
}

func newBatch() *batch {
	b := &batch{
		msgs:  make([]ipv4.Message, batchSize),
		addrs: make([]net.UDPAddr, batchSize),
		ips:   make([][16]byte, batchSize),
		bufs:  make([][MaxPacketSize + 100]byte, batchSize),
	}
	for i := range b.msgs {
		b.msgs[i].Buffers = [][]byte{nil}
		b.msgs[i].Addr = &b.addrs[i]
	}
	return b
}

func newBatchConn(c *net.UDPConn) *batchConn {
	bc := &batchConn{UDPConn: c, pc: ipv4.NewPacketConn(c), cur: newBatch()}
	bc.timer = time.AfterFunc(time.Hour, bc.flush)
	bc.timer.Stop()
	return bc
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter.
func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil || !c.taps.take(b[:n], from) {
			return n, from, err
		}
	}
}

// WriteTo sends through the batch too (pion's paths that carry a net.Addr).
func (c *batchConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return c.UDPConn.WriteTo(b, addr)
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// WriteToAddrPort implements ice.AddrPortReaderWriter: the packet is copied
// into the current batch, which is sent when full or after flushDelay.
func (c *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if len(p) > MaxPacketSize+100 || !addr.Addr().Is4() && !addr.Addr().Is4In6() && !addr.Addr().Is6() {
		return c.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	b := c.cur
	i := b.n
	n := copy(b.bufs[i][:], p)
	b.msgs[i].Buffers[0] = b.bufs[i][:n]
	ip := addr.Addr().Unmap()
	b.ips[i] = ip.As16()
	a := &b.addrs[i]
	if ip.Is4() {
		a.IP = b.ips[i][12:16]
	} else {
		a.IP = b.ips[i][:]
	}
	a.Port, a.Zone = int(addr.Port()), ""
	b.n++
	var full *batch
	if b.n == batchSize {
		full = b
		c.cur = c.takeFreeLocked()
	} else if !c.armed {
		c.armed = true
		c.timer.Reset(flushDelay)
	}
	if full == nil {
		c.mu.Unlock()
		return len(p), nil
	}
	c.sendMu.Lock()
	c.mu.Unlock()
	c.send(full)
	return len(p), nil
}

func (c *batchConn) takeFreeLocked() *batch {
	if k := len(c.free); k > 0 {
		b := c.free[k-1]
		c.free = c.free[:k-1]
		return b
	}
	return newBatch()
}

// send writes a batch and returns it for reuse. The caller holds sendMu
// (which send releases) and not mu: other writers fill the next batch
// meanwhile. A failed message is dropped, as a failed sendto would be: UDP
// promises nothing, and SRTP's receiver sees a gap it may NACK.
func (c *batchConn) send(b *batch) {
	msgs := b.msgs[:b.n]
	for len(msgs) > 0 {
		k, err := c.pc.WriteBatch(msgs, 0)
		if err != nil {
			k = max(k, 1) // skip the message that failed
		}
		msgs = msgs[k:]
	}
	c.sendMu.Unlock()
	b.n = 0
	c.mu.Lock()
	c.free = append(c.free, b)
	c.mu.Unlock()
}

// flush sends the batch being filled now: the timer calls it flushDelay
// after a batch's first packet, and a writer (APIs.Flush) when its group
// is written.
func (c *batchConn) flush() {
	c.mu.Lock()
	if c.armed {
		// A writer's flush disarms the timer: left armed, it would fire
		// on an empty batch, one timer wake-up per group written for
		// nothing (at 20 viewers, one per packet).
		c.armed = false
		c.timer.Stop()
	}
	b := c.cur
	if b.n == 0 {
		c.mu.Unlock()
		return
	}
	c.cur = c.takeFreeLocked()
	c.sendMu.Lock()
	c.mu.Unlock()
	c.send(b)
}

// close sends what is queued and writes directly from then on. It does not
// close the socket (its owner does).
func (c *batchConn) close() {
	c.mu.Lock()
	c.closed = true
	c.timer.Stop()
	b := c.cur
	c.cur = newBatch()
	c.sendMu.Lock()
	c.mu.Unlock()
	if b.n > 0 {
		c.send(b)
	} else {
		c.sendMu.Unlock()
	}
}
