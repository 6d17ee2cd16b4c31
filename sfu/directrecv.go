package sfu

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
)

// The direct receive path of a subscriber's RTCP: what a viewer sends
// back (transport-cc feedback ~10 times a second, receiver reports, NACKs,
// PLIs) is taken off the media socket by its one reader, decrypted with
// the PC's own SRTCP context and handed to the PC's down tracks, in the
// reader's goroutine. pion's path for the same packet crosses five
// goroutines (the UDP mux's reader, the ICE candidate's, the DTLS mux's,
// the SRTCP session's, the down track's rtcpLoop), each a wake-up; with
// 20 viewers these were half the server's wake-ups (BENCHMARKS.md, issue
// 20).
//
// Only RTCP (RFC 7983: first byte 128-191, packet type 192-223) from the
// remote address of a PC on the direct send path is taken, and only when
// it decrypts; anything else (STUN, DTLS, a packet that does not
// authenticate) goes to pion as before. ICE keeps its view of the pair:
// its agent's keepalive every 2 s and the peer's consent checks are STUN,
// which pion still gets (an agent counts a pair alive by what it
// receives, STUN included, and goes "disconnected" after 5 s of nothing).
//
// What runs here must not block: the down tracks' handlers queue NACKs on
// their writer, feed the estimator under its lock, and ask for keyframes
// through a throttle (a publisher's PLI is one write on the socket).

// rtcpTaps maps the remote address of each subscriber PC on the direct
// path to its directSender (netip.AddrPort, unmapped -> *directSender).
type rtcpTaps struct{ m sync.Map }

// take hands b, read from from, to the direct path if it is a
// subscriber's RTCP that path can read; false: pion gets it.
func (t *rtcpTaps) take(b []byte, from netip.AddrPort) bool {
	if len(b) < 8 || b[0]&0xc0 != 0x80 || b[1] < 192 || b[1] > 223 {
		return false
	}
	v, ok := t.m.Load(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
	if !ok {
		return false
	}
	return v.(*directSender).takeRTCP(b)
}

// move points the tap for s from old to to (invalid: none).
func (t *rtcpTaps) move(s *directSender, old, to netip.AddrPort) {
	if old == to {
		return
	}
	if old.IsValid() {
		t.m.CompareAndDelete(old, s)
	}
	if to.IsValid() {
		t.m.Store(to, s)
	}
}

// directReceiver is the receiving half of a directSender.
type directReceiver struct {
	mu     sync.Mutex
	ctx    *srtp.Context         // guarded by mu; nil until connected
	buf    []byte                // guarded by mu: the decrypted packet
	hdr    rtcp.Header           // guarded by mu
	tracks map[uint32]*DownTrack // guarded by mu: the PC's down tracks by SSRC
	taken  atomic.Uint64         // packets taken (tests)
}

// track registers d, bound to ssrc, for the RTCP about it; untrack
// forgets it (if still d's). A nil sender (no direct path) does nothing.
func (s *directSender) track(ssrc uint32, d *DownTrack) {
	if s == nil {
		return
	}
	s.recv.mu.Lock()
	if s.recv.tracks == nil {
		s.recv.tracks = map[uint32]*DownTrack{}
	}
	s.recv.tracks[ssrc] = d
	s.recv.mu.Unlock()
}

func (s *directSender) untrack(ssrc uint32, d *DownTrack) {
	if s == nil {
		return
	}
	s.recv.mu.Lock()
	if s.recv.tracks[ssrc] == d {
		delete(s.recv.tracks, ssrc)
	}
	s.recv.mu.Unlock()
}

// takeRTCP decrypts and acts on one SRTCP packet of this PC; false: it
// does not decrypt (or the PC has no keys yet), and pion gets it.
func (s *directSender) takeRTCP(b []byte) bool {
	r := &s.recv
	r.mu.Lock()
	if r.ctx == nil {
		r.mu.Unlock()
		return false
	}
	plain, err := r.ctx.DecryptRTCP(r.buf[:0], b, &r.hdr)
	if err != nil {
		r.mu.Unlock()
		s.rtcpToPion() // pion gets this one, and reads from now on (rtcpreaders.go)
		return false
	}
	pkts, err := rtcp.Unmarshal(plain)
	if err != nil {
		r.mu.Unlock()
		return true // authentic, and garbage: pion would drop it too
	}
	type job struct {
		d *DownTrack
		p rtcp.Packet
	}
	var arr [4]job
	jobs := arr[:0]
	for _, p := range pkts {
		if d := r.trackFor(p); d != nil {
			jobs = append(jobs, job{d, p})
		}
	}
	r.mu.Unlock()
	r.taken.Add(1)
	// Unlocked: the packets hold nothing of buf that the handlers read
	// (the kinds they act on are decoded whole), and the media socket's
	// one reader is the only caller.
	for _, j := range jobs {
		j.d.handleRTCPPacket(j.p)
	}
	return true
}

// trackFor is the down track an RTCP packet is about: the first of its
// destination SSRCs this PC sends; transport-cc feedback, which is about
// the transport, goes to any (they share the PC's estimator). The caller
// holds mu.
func (r *directReceiver) trackFor(p rtcp.Packet) *DownTrack {
	for _, ssrc := range p.DestinationSSRC() {
		if d := r.tracks[ssrc]; d != nil {
			return d
		}
	}
	if _, ok := p.(*rtcp.TransportLayerCC); ok {
		for _, d := range r.tracks {
			return d
		}
	}
	return nil
}
