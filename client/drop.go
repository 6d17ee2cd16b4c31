package client

// The receive-drop interceptor (Options.ReceiveDrop): it sits first in the
// receive chain, before pion's NACK generator, and discards chosen packets
// the first time they arrive, so the generator sees a gap and NACKs it and
// the retransmission (RTX or plain) gets through.
//
// SRTP replay protection is off on such a client (a plain retransmission
// repeats a sequence number SRTP has already seen), so this interceptor also
// does its job: on every stream, a sequence number already delivered is
// discarded (pion's generator NACKs an RTX-repaired packet again and again,
// and the sender repeats the same RTX packet).

import (
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// dropExpiry is how far (in sequence numbers) the stream may run ahead of a
// dropped packet before it is given up as never recovered.
const dropExpiry = 2048

// newDropAPI builds a client API whose receive chain starts with the drop
// interceptor. SRTP replay protection is off: the drop happens after SRTP
// decryption, so SRTP has already seen the sequence number and would discard
// a retransmission on the media SSRC (no RTX) as a replay.
func newDropAPI(se webrtc.SettingEngine, drop func(seq uint16) bool) (*webrtc.API, *dropStats, error) {
	se.DisableSRTPReplayProtection(true)
	stats := &dropStats{}
	api, err := newAPI(se, &dropFactory{drop: drop, stats: stats})
	if err != nil {
		return nil, nil, err
	}
	return api, stats, nil
}

type dropStats struct {
	dropped    atomic.Int64
	recovered  atomic.Int64
	duplicates atomic.Int64
}

type dropFactory struct {
	drop  func(seq uint16) bool
	stats *dropStats
}

func (f *dropFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &dropInterceptor{
		f:         f,
		streams:   map[uint32]*dropStream{},
		rtxToMain: map[uint32]uint32{},
	}, nil
}

// dropInterceptor is one PeerConnection's instance.
type dropInterceptor struct {
	interceptor.NoOp
	f         *dropFactory
	mu        sync.Mutex
	streams   map[uint32]*dropStream // by media SSRC
	rtxToMain map[uint32]uint32
}

type dropStream struct {
	mu      sync.Mutex
	win     replayWindow
	pending map[uint16]struct{} // dropped, not yet received again
}

func isRTXStream(info *interceptor.StreamInfo) bool {
	return strings.EqualFold(info.MimeType, "video/rtx") || strings.EqualFold(info.MimeType, "audio/rtx")
}

func supportsNACK(info *interceptor.StreamInfo) bool {
	for _, fb := range info.RTCPFeedback {
		if fb.Type == "nack" && fb.Parameter == "" {
			return true
		}
	}
	return false
}

// BindRemoteStream wraps media streams that negotiated NACK (the drop
// applies to them only: dropping elsewhere could never be repaired) and
// watches RTX streams for repairs.
func (d *dropInterceptor) BindRemoteStream(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	if isRTXStream(info) {
		return d.bindRepair(info, reader)
	}
	if !supportsNACK(info) {
		return d.replayOnly(reader)
	}
	st := &dropStream{pending: map[uint16]struct{}{}}
	d.mu.Lock()
	d.streams[info.SSRC] = st
	if info.SSRCRetransmission != 0 { // set on send-side infos; receivers learn it (see repaired)
		d.rtxToMain[info.SSRCRetransmission] = info.SSRC
	}
	d.mu.Unlock()

	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attr, err := reader.Read(b, a)
			if err != nil || n < 12 {
				return n, attr, err
			}
			seq := binary.BigEndian.Uint16(b[2:4])
			switch st.onPacket(seq, d.f.drop) {
			case verdictDrop:
				d.f.stats.dropped.Add(1)
			case verdictDuplicate:
				d.f.stats.duplicates.Add(1)
			case verdictRecovered:
				d.f.stats.recovered.Add(1)
				return n, attr, nil
			default:
				return n, attr, nil
			}
		}
	})
}

// replayOnly discards repeated sequence numbers (see the file comment).
func (d *dropInterceptor) replayOnly(reader interceptor.RTPReader) interceptor.RTPReader {
	var win replayWindow
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attr, err := reader.Read(b, a)
			if err != nil || n < 12 {
				return n, attr, err
			}
			if ok, _ := win.accept(binary.BigEndian.Uint16(b[2:4])); ok {
				return n, attr, nil
			}
			d.f.stats.duplicates.Add(1)
		}
	})
}

// bindRepair reads the original sequence number (the first two payload
// bytes, RFC 4588) of each RTX packet and counts a dropped one as recovered.
func (d *dropInterceptor) bindRepair(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	rtxSSRC := info.SSRC
	var win replayWindow // of RTX sequence numbers: drops repeated RTX packets
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		var n int
		var attr interceptor.Attributes
		var err error
		for {
			n, attr, err = reader.Read(b, a)
			if err != nil || n < 12 {
				return n, attr, err
			}
			if ok, _ := win.accept(binary.BigEndian.Uint16(b[2:4])); ok {
				break
			}
			d.f.stats.duplicates.Add(1)
		}
		end := n
		if n > 0 && b[0]&0x20 != 0 { // padding
			end -= int(b[n-1])
		}
		if off, ok := rtpPayloadOffset(b[:n]); ok && end-off >= 2 {
			if d.repaired(rtxSSRC, binary.BigEndian.Uint16(b[off:off+2])) {
				d.f.stats.recovered.Add(1)
			}
		}
		return n, attr, nil
	})
}

// repaired marks seq recovered on the media stream that rtxSSRC repairs. A
// receiver's StreamInfo does not name its RTX SSRC, so the pairing is
// learned: the first time an RTX packet's original sequence number is
// pending on exactly one stream, that stream is the one.
func (d *dropInterceptor) repaired(rtxSSRC uint32, seq uint16) bool {
	d.mu.Lock()
	main, known := d.rtxToMain[rtxSSRC]
	st := d.streams[main]
	var candidates []uint32
	if !known || st == nil {
		for ssrc := range d.streams {
			candidates = append(candidates, ssrc)
		}
	}
	d.mu.Unlock()
	if st != nil {
		return st.repaired(seq)
	}
	var hits []uint32
	for _, ssrc := range candidates {
		d.mu.Lock()
		cand := d.streams[ssrc]
		d.mu.Unlock()
		if cand != nil && cand.isPending(seq) {
			hits = append(hits, ssrc)
		}
	}
	if len(hits) == 0 {
		return false
	}
	if len(hits) == 1 {
		d.mu.Lock()
		d.rtxToMain[rtxSSRC] = hits[0]
		d.mu.Unlock()
	}
	d.mu.Lock()
	st = d.streams[hits[0]]
	d.mu.Unlock()
	return st != nil && st.repaired(seq)
}

// UnbindRemoteStream forgets a stream.
func (d *dropInterceptor) UnbindRemoteStream(info *interceptor.StreamInfo) {
	d.mu.Lock()
	delete(d.streams, info.SSRC)
	delete(d.rtxToMain, info.SSRC)
	for rtx, main := range d.rtxToMain {
		if main == info.SSRC {
			delete(d.rtxToMain, rtx)
		}
	}
	d.mu.Unlock()
}

type verdict int

const (
	verdictPass verdict = iota
	verdictDrop
	verdictDuplicate
	verdictRecovered
)

// onPacket decides for one packet arriving on the media SSRC. Only packets
// newer than any seen are offered to drop (never a stream's first packet:
// nothing before it could NACK it); a dropped one arriving again is a
// recovery and passes; anything else seen before is a duplicate.
func (s *dropStream) onPacket(seq uint16, drop func(uint16) bool) verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[seq]; ok { // a retransmission of a dropped packet
		delete(s.pending, seq)
		return verdictRecovered
	}
	first := !s.win.started
	ok, newer := s.win.accept(seq)
	switch {
	case !ok:
		return verdictDuplicate
	case !newer || first:
		return verdictPass
	}
	for p := range s.pending {
		if seq-p > dropExpiry {
			delete(s.pending, p)
		}
	}
	if drop(seq) {
		s.pending[seq] = struct{}{}
		return verdictDrop
	}
	return verdictPass
}

func (s *dropStream) isPending(seq uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[seq]
	return ok
}

func (s *dropStream) repaired(seq uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[seq]; ok {
		delete(s.pending, seq)
		return true
	}
	return false
}

// rtpPayloadOffset returns where the payload of the RTP packet b starts.
func rtpPayloadOffset(b []byte) (int, bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return 0, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
	}
	if off > len(b) {
		return 0, false
	}
	return off, true
}

// replayWindow remembers which of the last replayWindowSize sequence numbers
// were accepted (as SRTP's replay protection does, per stream).
type replayWindow struct {
	started bool
	highest uint16
	bits    [replayWindowSize / 64]uint64
}

const replayWindowSize = 1024

func (w *replayWindow) set(seq uint16, on bool) {
	i := seq % replayWindowSize
	if on {
		w.bits[i/64] |= 1 << (i % 64)
	} else {
		w.bits[i/64] &^= 1 << (i % 64)
	}
}

func (w *replayWindow) isSet(seq uint16) bool {
	i := seq % replayWindowSize
	return w.bits[i/64]&(1<<(i%64)) != 0
}

// accept records seq and reports whether it is new (not seen, not older
// than the window) and whether it is the newest so far.
func (w *replayWindow) accept(seq uint16) (ok, newest bool) {
	if !w.started {
		w.started, w.highest = true, seq
		w.set(seq, true)
		return true, true
	}
	diff := seq - w.highest
	switch {
	case diff == 0:
		return false, false
	case diff < 0x8000:
		if diff >= replayWindowSize {
			w.bits = [replayWindowSize / 64]uint64{}
		} else {
			for s := w.highest + 1; s != seq; s++ {
				w.set(s, false)
			}
		}
		w.highest = seq
		w.set(seq, true)
		return true, true
	case w.highest-seq >= replayWindowSize || w.isSet(seq):
		return false, false
	default:
		w.set(seq, true)
		return true, false
	}
}
