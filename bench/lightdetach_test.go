package bench

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// A detached socket keeps its address: it reads what was sent to it in one
// batch (a media datagram without its sender decoded, another with it),
// writes from the same address, and once closed reads and writes nothing.
func TestDetachedSocket(t *testing.T) {
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	addr := udp.LocalAddr().(*net.UDPAddr)
	d, err := detachUDP(udp)
	if err != nil {
		t.Fatal(err)
	}
	_ = udp.Close() // the duplicate keeps the socket
	r := newBatchReader(peer) // only its buffers are used
	raw := newRawBatch(r)
	if _, err := d.readBatch(r, raw); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("an empty socket: %v, want EAGAIN", err)
	}

	media := append([]byte{0x80, 96}, make([]byte, 1000)...)
	stun := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, b := range [][]byte{media, stun} {
		if _, err := peer.WriteToUDP(b, addr); err != nil {
			t.Fatal(err)
		}
	}
	// Loopback delivers within the sender's call: both are there.
	n, err := d.readBatch(r, raw)
	if err != nil || n != 2 {
		t.Fatalf("read %d datagrams (%v), want 2", n, err)
	}
	if m := r.msgs[0]; m.N != len(media) || m.Addr != nil {
		t.Errorf("media: %d bytes from %v, want %d and no sender", m.N, m.Addr, len(media))
	}
	if m := r.msgs[1]; m.N != len(stun) || m.Addr.String() != peer.LocalAddr().String() {
		t.Errorf("stun: %d bytes from %v, want %d from %v", m.N, m.Addr, len(stun), peer.LocalAddr())
	}

	if _, err := d.writeTo([]byte("back"), peer.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	k, from, err := peer.ReadFromUDP(buf)
	if err != nil || string(buf[:k]) != "back" || from.String() != addr.String() {
		t.Fatalf("written: %q from %v (%v), want \"back\" from %v", buf[:k], from, err, addr)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.readBatch(r, raw); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	if _, err := d.writeTo([]byte("x"), peer.LocalAddr().(*net.UDPAddr).AddrPort()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if d.Close() != nil {
		t.Error("a second close failed")
	}
}
