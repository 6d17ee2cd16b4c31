package sfu

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The direct send path: a down track's packet goes from its writer,
// once munged, through SRTP straight into the media socket's sendmmsg
// batch (batchconn.go), addressed to the subscriber's selected candidate
// pair. pion's path for the same packet runs the interceptor chain, its
// SessionSRTP (a buffer pool, a lock), the DTLS mux's endpoint and the ICE
// conn's write (two clock reads, atomics for its stats): ~2.5 µs of a
// forwarded packet's ~10 µs at 200 viewers (BENCHMARKS.md, issue 20).
//
// What pion's path did per packet and where it went:
//   - SRTP: this PC's own sending context, keyed from its DTLS handshake
//     (dtlsKeys). pion's context for these SSRCs is never used, so the
//     rollover counter has one owner. RTCP from relayd (sender reports)
//     stays on pion's SRTCP; RTCP from the subscriber is read directly
//     too (directrecv.go).
//   - Sender reports: the subscriber API has no report interceptor when
//     the direct path is on; every down track writes its own (report.go),
//     on either path.
//   - ICE consent and keepalives: pion's agent keeps them. It sends a
//     keepalive when its selected pair sent nothing for 2 s, which the
//     sender reports (through pion) prevent; consent (what the
//     subscriber sends) is not a send-side matter.
//
// A PC keeps pion's path while its selected pair is not plain UDP on the
// media socket (ICE-TCP; the pair may change after an ICE restart), and
// for good when its keys cannot be known (dtlsKeys). Caveat: a PC that
// moves from the direct path to pion's after 65,536 packets of one SSRC
// (an ICE restart from UDP to TCP after ~10 minutes of video) restarts
// pion's rollover counter at 0 and the subscriber cannot decrypt that
// SSRC any more; the page's reconnect recovers it.

var errDirectTooBig = errors.New("rtp packet too big")

// directSender is one subscriber PC's direct path. Every down track of the
// PC writes through it, from its own writer's goroutine: one mutex orders
// them (audio and video of a PC are on different writers; uncontended it
// costs ~20 ns).
type directSender struct {
	keys dtlsKeys
	send func(p []byte, to netip.AddrPort) (int, error) // the media socket's write
	taps *rtcpTaps                                      // the media socket's RTCP taps (nil: none)
	log  *slog.Logger
	recv directReceiver

	mu     sync.Mutex
	ctx    *srtp.Context  // guarded by mu; nil until the PC connected
	addr   netip.AddrPort // guarded by mu; invalid: pion's path
	closed bool           // guarded by mu
	sent   uint64         // guarded by mu: packets sent directly
	// pionRTCP: some of the PC's RTCP reaches pion, so its down tracks
	// read there too; readers are those waiting for it (rtcpreaders.go).
	pionRTCP bool                             // guarded by mu
	readers  map[*DownTrack]*webrtc.RTPSender // guarded by mu
	plain    []byte                           // guarded by mu: the packet marshalled
	hdr      rtp.Header                       // guarded by mu: EncryptRTP's parse of it (reused: no allocation)
	enc      []byte                           // guarded by mu: and encrypted
}

func newDirectSender(send func([]byte, netip.AddrPort) (int, error), taps *rtcpTaps, log *slog.Logger) *directSender {
	return &directSender{
		send:  send,
		taps:  taps,
		log:   log,
		plain: make([]byte, MaxPacketSize+100),
		enc:   make([]byte, 0, MaxPacketSize+200),
	}
}

// connected derives the SRTP contexts once the PC is connected (its DTLS
// handshake is done); without keys the PC keeps pion's path. It returns
// the path the PC is on now: "direct" or "pion".
func (s *directSender) connected() string {
	s.mu.Lock()
	if s.ctx == nil {
		local, remote, err := s.keys.contexts()
		if err != nil {
			s.log.Debug("direct send path off for this subscriber", "err", err)
		}
		s.ctx = local
		if remote != nil && s.taps != nil {
			s.recv.mu.Lock()
			s.recv.ctx, s.recv.buf = remote, make([]byte, 0, MaxPacketSize+100)
			s.recv.mu.Unlock()
		}
	}
	s.recv.mu.Lock()
	reads := s.recv.ctx != nil
	s.recv.mu.Unlock()
	var rs map[*DownTrack]*webrtc.RTPSender
	if !reads || !s.addr.IsValid() {
		rs = s.toPionLocked() // its RTCP goes to pion (rtcpreaders.go)
	}
	path := "direct"
	if s.ctx == nil || !s.addr.IsValid() {
		path = "pion"
	}
	s.mu.Unlock()
	startReaders(rs)
	return path
}

// setPair takes the PC's new selected candidate pair: UDP on the media
// socket is sent directly, anything else through pion.
func (s *directSender) setPair(p *webrtc.ICECandidatePair) {
	var to netip.AddrPort
	if p != nil && p.Local != nil && p.Remote != nil && p.Local.Protocol == webrtc.ICEProtocolUDP &&
		p.Local.Typ != webrtc.ICECandidateTypeRelay {
		if ip, err := netip.ParseAddr(p.Remote.Address); err == nil {
			to = netip.AddrPortFrom(ip.Unmap(), p.Remote.Port)
		}
	}
	s.mu.Lock()
	old := s.addr
	var rs map[*DownTrack]*webrtc.RTPSender
	if !s.closed {
		s.addr = to
		if s.taps != nil {
			s.taps.move(s, old, to)
		}
		if !to.IsValid() {
			rs = s.toPionLocked() // its RTCP goes to pion (rtcpreaders.go)
		}
	}
	s.mu.Unlock()
	startReaders(rs)
}

// sentDirect is the number of packets sent directly.
func (s *directSender) sentDirect() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// close stops the direct path: the PC closed.
func (s *directSender) close() {
	s.mu.Lock()
	s.closed = true
	s.readers = nil // never started: the PC's senders are stopping
	if s.taps != nil {
		s.taps.move(s, s.addr, netip.AddrPort{})
	}
	s.mu.Unlock()
}

// writeRTP encrypts and sends one packet if the direct path is on for
// this PC; ok false: it is not, and the caller writes through pion. n is
// the bytes sent, as pion's path reports them (the SRTP packet's size).
func (s *directSender) writeRTP(h *rtp.Header, payload []byte) (n int, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.closed || !s.addr.IsValid() {
		return 0, false, nil
	}
	hn, err := h.MarshalTo(s.plain)
	if err != nil {
		return 0, true, err
	}
	if hn+len(payload) > len(s.plain) {
		return 0, true, errDirectTooBig
	}
	copy(s.plain[hn:], payload)
	enc, err := s.ctx.EncryptRTP(s.enc[:0], s.plain[:hn+len(payload)], &s.hdr)
	if err != nil {
		return 0, true, err
	}
	n, err = s.send(enc, s.addr)
	s.sent++
	return n, true, err
}

// socketWriter is how the direct path writes to the media socket: into the
// sendmmsg batch, or one sendto per packet; nil when conn is neither (a
// test's wrapped socket): no direct path then.
func socketWriter(conn net.PacketConn) func([]byte, netip.AddrPort) (int, error) {
	switch c := conn.(type) {
	case *batchConn:
		return c.WriteToAddrPort
	case *net.UDPConn:
		return c.WriteToUDPAddrPort
	}
	return nil
}
