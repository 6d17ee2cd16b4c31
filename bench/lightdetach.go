package bench

// A pumped light viewer's socket leaves the Go runtime's poller.
//
// Go registers every socket it opens with its epoll set (edge-triggered),
// so each datagram that reaches one makes the kernel wake whatever thread
// waits in epoll_wait. The pump (lightpump.go) never waits on a socket: it
// drains them all every lightReadDelay with non-blocking reads. Left in the
// set, every packet the server wrote to a light viewer could wake one of
// the bench's idle threads, which found nothing to do and slept again.
//
// So once the pump has it, the socket is read and written through a
// duplicate of its descriptor, and the original (and with it the
// registration) is closed: the socket itself stays open, on the same
// address, and nothing waits on it from then on. The pump reads it with
// recvmmsg(2) itself, which also spares x/net's per-datagram sender
// address (an allocation each): only a datagram that is not media gets
// its sender decoded. Measured in BENCHMARKS.md ("The light viewers'
// sockets out of the poller").

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// detachedUDP is a UDP socket outside the runtime's poller. Reads and
// writes never wait (the descriptor is non-blocking, as Go left it: a full
// socket answers EAGAIN, which the pump reads as "drained" and a writer
// as a lost datagram).
type detachedUDP struct {
	mu     sync.RWMutex // read-held by reads and writes; the close holds it exclusively
	fd     int          // guarded by mu: valid until closed
	closed bool         // guarded by mu
	inet6  bool         // the socket is AF_INET6 (dual-stack): IPv4 peers are written v4-mapped
}

// detachUDP duplicates udp's descriptor. The caller closes udp once
// nothing writes through it any more.
func detachUDP(udp *net.UDPConn) (*detachedUDP, error) {
	rc, err := udp.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	_, inet6 := sa.(*unix.SockaddrInet6)
	return &detachedUDP{fd: fd, inet6: inet6}, nil
}

// writeTo sends b to addr.
func (d *detachedUDP) writeTo(b []byte, addr netip.AddrPort) (int, error) {
	var sa unix.Sockaddr
	ip := addr.Addr()
	switch {
	case d.inet6:
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
	case ip.Unmap().Is4():
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.Unmap().As4()}
	default:
		return 0, errors.New("light viewer: an IPv6 peer on an IPv4 socket")
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, net.ErrClosed
	}
	if err := unix.Sendto(d.fd, b, 0, sa); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close closes the descriptor once no read or write is using it (so its
// number cannot be reused under one). Idempotent.
func (d *detachedUDP) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return unix.Close(d.fd)
}

// mmsghdr is recvmmsg(2)'s struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// rawBatch is a batchReader's buffers as recvmmsg(2) fills them.
type rawBatch struct {
	hdrs  [lightBatch]mmsghdr
	iovs  [lightBatch]unix.Iovec
	names [lightBatch]unix.RawSockaddrInet6 // room for either family
}

func newRawBatch(r *batchReader) *rawBatch {
	b := &rawBatch{}
	for i := range b.hdrs {
		b.iovs[i].Base = &r.bufs[i][0]
		b.iovs[i].SetLen(lightBufSize)
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	return b
}

// readBatch reads what the socket holds, up to lightBatch datagrams, into
// r's messages (N; Addr for the datagrams that are not media, nil for
// media), without waiting: EAGAIN (a syscall.Errno) when there is nothing.
func (d *detachedUDP) readBatch(r *batchReader, b *rawBatch) (int, error) {
	for i := range b.hdrs {
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
	}
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return 0, net.ErrClosed
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(d.fd), uintptr(unsafe.Pointer(&b.hdrs[0])),
		uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
	d.mu.RUnlock()
	if errno != 0 {
		return 0, errno
	}
	for i := 0; i < int(n); i++ {
		m := &r.msgs[i]
		m.N = int(b.hdrs[i].n)
		m.Addr = nil
		if !isMedia(r.bufs[i][:m.N]) {
			m.Addr = udpAddrOf(&b.names[i])
		}
	}
	return int(n), nil
}

// udpAddrOf decodes a sender's address as the kernel wrote it.
func udpAddrOf(sa *unix.RawSockaddrInet6) *net.UDPAddr {
	port := func(p *uint16) int { return int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(p))[:])) }
	switch sa.Family {
	case unix.AF_INET:
		v4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(v4.Addr), uint16(port(&v4.Port))))
	case unix.AF_INET6:
		ip := netip.AddrFrom16(sa.Addr).Unmap()
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port(&sa.Port))))
	}
	return nil
}
