package sfu

import "github.com/pion/webrtc/v4"

// Reading a viewer's RTCP from pion, only when some of it goes there. A
// down track reads its subscriber's RTCP from pion's RTPSender in a
// goroutine of its own (rtcpLoop). On the direct path (directrecv.go) the
// media socket's reader takes that RTCP before pion sees it, and the two
// loops of each viewer (audio, video) would wait forever, ~10 KiB of
// stacks and buffers a viewer. They start instead when the PC's RTCP
// reaches pion, which is for good once it does:
//
//   - its selected pair is not a direct one (ICE-TCP, TURN), from the start
//     or after an ICE restart (setPair);
//   - it connected without the keys, or without a pair, for the direct path
//     (connected);
//   - a packet from its address did not decrypt with its SRTCP context
//     (takeRTCP), whatever the reason: pion gets that packet, and from
//     then on the loops read whatever pion gets.
//
// RTCP that reaches pion before the PC connects (before the direct path
// has the keys) waits in pion's buffers, and is read if the loops ever
// start. A PC without a direct path, or whose media socket has no taps,
// starts them at once.

// readRTCP has d read its RTCP from pion's sender snd: at once when this
// PC's RTCP may reach pion (or s is nil), else when it first does. A
// closed PC starts none.
func (s *directSender) readRTCP(d *DownTrack, snd *webrtc.RTPSender) {
	if s != nil {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return
		case !s.pionRTCP && s.taps != nil:
			if s.readers == nil {
				s.readers = map[*DownTrack]*webrtc.RTPSender{}
			}
			s.readers[d] = snd
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
	go d.rtcpLoop(snd)
}

// forgetReader drops d's waiting reader (d closed). A nil sender does
// nothing.
func (s *directSender) forgetReader(d *DownTrack) {
	if s == nil {
		return
	}
	s.mu.Lock()
	delete(s.readers, d)
	s.mu.Unlock()
}

// rtcpToPion notes that this PC's RTCP reaches pion: the waiting readers
// start.
func (s *directSender) rtcpToPion() {
	s.mu.Lock()
	rs := s.toPionLocked()
	s.mu.Unlock()
	startReaders(rs)
}

// toPionLocked marks the PC's RTCP as reaching pion and returns the
// readers to start (after s.mu is released: they are goroutines of the
// down tracks).
func (s *directSender) toPionLocked() map[*DownTrack]*webrtc.RTPSender {
	if s.pionRTCP || s.closed {
		return nil
	}
	s.pionRTCP = true
	rs := s.readers
	s.readers = nil
	return rs
}

func startReaders(rs map[*DownTrack]*webrtc.RTPSender) {
	for d, snd := range rs {
		go d.rtcpLoop(snd)
	}
}
