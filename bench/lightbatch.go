package bench

// Batched receives for the light viewers (lightconn.go): one recvmmsg(2)
// takes up to lightBatch datagrams. A system call costs a few µs before any
// work on the development VM (sfu/batchconn.go measured ~2.7 µs), as much as
// the bench then spends on a light viewer's packet, so reading one
// datagram per call would cost more than counting it.

import (
	"net"
	"time"

	"golang.org/x/net/ipv4"
)

// lightReadDelay is how often the pump (lightpump.go) drains the light
// viewers' sockets once they have their first frame. Reading at once, the
// reader woke once for every packet or two (the server writes a frame's
// packets to a viewer one fan-out round apart: 2.3 packets per read at 40
// viewers on the development VM), and the wake-up, not the counting
// (BenchmarkLightOnRTP), was the cost. 50 ms gathers a frame and a half
// and the audio between (~12 packets at 1.5 Mbit/s) in one recvmmsg: the
// bench's CPU per received packet at 200 viewers was 6.3-7.6 us at 20 ms
// (~5 packets a read), 5.8-6.1 us at 50 ms (BENCHMARKS.md); the socket's
// buffer (212 KB by default) holds 50 ms of the stream (~10 KB) and a
// keyframe burst (~60 KB) several times over. It delays STUN, DTLS and
// SRTCP by as much, which nothing measured notices; it starts after the
// viewer's first frame, whose arrival time is a reported figure. Pace with
// care: the NACKs of a light viewer go out up to this much later than a
// full viewer's (light viewers run on loopback only, where nothing is
// lost but what a test drops); it must divide nackInterval.
const lightReadDelay = 50 * time.Millisecond

const (
	// lightBatch is how many datagrams one recvmmsg may return. A viewer
	// of one 1.5 Mbit/s stream gets ~150 packets a second, in bursts of a
	// video frame (5-10 packets at 30 fps, a keyframe 50+): 32 holds what
	// arrives in a lightReadDelay but for a keyframe, and past it the
	// gain per packet is within noise (the sendmmsg figures of
	// sfu/batchconn.go flatten at 8-32).
	lightBatch = 32
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
