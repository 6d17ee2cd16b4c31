package bench

// Batched receives for the light viewers (lightconn.go): one recvmmsg(2)
// takes up to lightBatch datagrams. A system call costs a few µs before any
// work on the development VM (sfu/batchconn.go measured ~2.7 µs), as much as
// the bench then spends on a light viewer's packet, so reading one
// datagram per call would cost more than counting it.

import (
	"net"

	"golang.org/x/net/ipv4"
)

const (
	// lightBatch is how many datagrams one recvmmsg may return. A viewer
	// of one 1.5 Mbit/s stream gets ~150 packets a second, in bursts of a
	// video frame (5-10 packets at 30 fps, a keyframe 50+): 16 holds a
	// normal frame's burst, and past 16 the gain per packet is within
	// noise (the sendmmsg figures of sfu/batchconn.go flatten at 8-32).
	lightBatch = 16
	// lightBufSize holds any datagram of the media path (relayd sends
	// at most sfu.MaxPacketSize plus SRTP's tag; DTLS records stay under
	// the MTU).
	lightBufSize = 1600
)

// batchReader reads a UDP socket lightBatch datagrams at a time. It is
// used by one goroutine (pion ice's read loop of the candidate); the
// messages of the last batch stay valid until the next read.
type batchReader struct {
	pc   *ipv4.PacketConn
	msgs []ipv4.Message
	bufs [lightBatch][lightBufSize]byte
}

func newBatchReader(c *net.UDPConn) *batchReader {
	r := &batchReader{pc: ipv4.NewPacketConn(c), msgs: make([]ipv4.Message, lightBatch)}
	for i := range r.msgs {
		r.msgs[i].Buffers = [][]byte{r.bufs[i][:]}
	}
	return r
}

// read blocks for at least one datagram and returns how many the batch
// holds: message i is r.msgs[i] (payload r.msgs[i].Buffers[0][:N], sender
// r.msgs[i].Addr). The deadline and the close of the socket apply.
func (r *batchReader) read() (int, error) {
	// x/net's ReadBatch allocates the sender's address of each message
	// (a *net.UDPAddr): two small allocations per datagram, a few tens of
	// ns against the system call's µs saved.
	return r.pc.ReadBatch(r.msgs, 0)
}
