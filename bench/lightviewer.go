package bench

// Light viewers (--light): a real pion PeerConnection (signalling, ICE and
// DTLS as any viewer's) whose media pion never sees. Its sockets
// (lightconn.go) read the media in batches (lightbatch.go) and count each
// packet here from its clear RTP header: per SSRC, the highest extended
// sequence number, the packets received once and twice, and a receive
// log that gives the same NACKs pion's generator would send a full viewer
// (every nackInterval, each lost packet at most maxNacksPerPacket times),
// written through the PeerConnection so SRTCP encrypts them.
//
// A full viewer decrypts, parses and runs interceptors on every packet
// (~16 µs of bench CPU each, BENCHMARKS.md); a light one pays a batched
// system call's share and the counting below (BenchmarkLightOnRTP). What it
// cannot see is the payload: no send time (so no latency and no window by
// send time) and no frames. Its window is therefore one of sequence
// numbers: the packets after the highest one received when the window
// opened, up to the highest one received when it closed; its loss is the
// gaps among them, once the grace period let the late ones in.
//
// The media SSRCs are told apart by the subscriber PC's remote description
// (a=ssrc msid lines, kind, nack feedback), read off the packet path by
// the viewer's own goroutine (loop) when a new SSRC shows up.

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
)

const (
	// nackInterval and nackLogSize are pion's NACK generator defaults,
	// which the full viewers run with (api.go).
	nackInterval = 100 * time.Millisecond
	nackLogSize  = 512
	// lightLogSize is how far back a duplicate is recognised, in packets:
	// twice the full viewer's dedupSize (a retransmission later than ~3 s
	// of 1.5 Mbit/s video counts twice in either).
	lightLogSize = 1024
)

func nowNano() int64 { return time.Now().UnixNano() }

// newLightAPI builds a light viewer's API: the full viewers' codecs and
// header extensions (transport-cc included, so the server writes the same
// packets to both kinds of viewer), no interceptor (no packet reaches
// one), and sink's network, its sockets read by pump once the first
// frame is in.
func newLightAPI(se webrtc.SettingEngine, base transport.Net, sink *lightCounter, pump *lightPump) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := client.RegisterCodecs(m); err != nil {
		return nil, err
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		m.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, k)
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, k); err != nil {
			return nil, err
		}
	}
	se.SetNet(&lightNet{Net: base, sink: sink, pump: pump})
	se.SetSRTPReplayProtectionWindow(srtpReplayWindow)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(&interceptor.Registry{}), webrtc.WithSettingEngine(se)), nil
}

// lightStream is one SSRC's accounting. onRTP is its whole per-packet
// work; the rest is read under the counter's lock.
type lightStream struct {
	ssrc uint32
	// from the remote description (resolve); kind 0 until found
	kind     byte // 'a' or 'v'
	nack     bool // nack feedback negotiated (video)
	streamID string

	unwrap  seqUnwrapper
	started bool
	first   int64 // extended seq of the first packet
	highest int64 // extended seq of the highest packet
	log     [lightLogSize / 64]uint64
	// lastConsecutive: every packet up to it (within nackLogSize of the
	// highest) came, as pion's receiveLog keeps it
	lastConsecutive int64

	packets, unique, dups uint64
	firstAt, firstMarker  int64 // UnixNano of the first packet, of the first with the marker bit

	// the window (by sequence number): unique packets in (winLo, winHi]
	winStart     int64 // the window's start (UnixNano) these belong to; 0: none
	winLo, winHi int64 // winHi MaxInt64 until a packet came after the window's end
	winRecv      uint64

	nackCount map[int64]uint16 // times each missing packet was NACKed
}

func (s *lightStream) has(ext int64) bool {
	i := uint64(ext) % lightLogSize
	return s.log[i/64]&(1<<(i%64)) != 0
}

func (s *lightStream) mark(ext int64, on bool) {
	i := uint64(ext) % lightLogSize
	if on {
		s.log[i/64] |= 1 << (i % 64)
	} else {
		s.log[i/64] &^= 1 << (i % 64)
	}
}

// onRTP counts one packet of sequence number seq arriving at now, against
// the window [ws, we) (UnixNano; we MaxInt64 while it is open, ws 0
// before any). It reports whether the packet was new (not a duplicate).
func (s *lightStream) onRTP(seq uint16, marker bool, now, ws, we int64) bool {
	ext := s.unwrap.unwrap(seq)
	s.packets++
	if !s.started {
		s.started, s.first, s.highest, s.lastConsecutive = true, ext, ext-1, ext-1
		s.firstAt = now
	}
	if marker && s.firstMarker == 0 {
		s.firstMarker = now
	}
	// The window: it opens at the first packet that arrives after its
	// start, above the highest packet then; it closes at the first
	// packet after its end, at the highest one then.
	if ws != 0 && ws != s.winStart && now >= ws {
		s.winStart, s.winLo, s.winHi, s.winRecv = ws, s.highest, math.MaxInt64, 0
	}
	if s.winStart == ws && s.winHi == math.MaxInt64 && we != math.MaxInt64 && now >= we {
		s.winHi = s.highest
	}

	switch {
	case ext > s.highest:
		if ext-s.highest > lightLogSize {
			s.log = [lightLogSize / 64]uint64{}
		} else {
			for i := s.highest + 1; i < ext; i++ {
				s.mark(i, false)
			}
		}
		s.highest = ext
		if ext == s.lastConsecutive+1 {
			s.lastConsecutive = ext
		} else if ext-s.lastConsecutive > nackLogSize {
			s.lastConsecutive = ext - nackLogSize
			s.fixConsecutive()
		}
	case ext <= s.highest-lightLogSize:
		// older than the log: cannot be told from a duplicate; counted
		// as new, as the full viewer's dedup ring does
		s.unique++
		s.countWindow(ext)
		return true
	case s.has(ext):
		s.dups++
		return false
	case ext == s.lastConsecutive+1:
		s.lastConsecutive = ext
		s.mark(ext, true)
		s.fixConsecutive()
	}
	s.mark(ext, true)
	s.unique++
	s.countWindow(ext)
	return true
}

func (s *lightStream) countWindow(ext int64) {
	if s.winStart != 0 && ext > s.winLo && ext <= s.winHi {
		s.winRecv++
	}
}

// fixConsecutive moves lastConsecutive past the packets received after it.
func (s *lightStream) fixConsecutive() {
	i := s.lastConsecutive + 1
	for i <= s.highest && s.has(i) {
		i++
	}
	s.lastConsecutive = i - 1
}

// missing appends the packets lost between lastConsecutive and the highest
// (what pion's receiveLog.missingSeqNumbers returns) to out.
func (s *lightStream) missing(out []int64) []int64 {
	for i := max(s.lastConsecutive+1, s.highest-nackLogSize+1); i < s.highest; i++ {
		if !s.has(i) {
			out = append(out, i)
		}
	}
	return out
}

// nacks returns the sequence numbers to NACK now, as pion's generator
// chooses them with GeneratorMaxNacksPerPacket(max): each missing packet
// until it was NACKed max times; a packet no longer missing is forgotten.
func (s *lightStream) nacks(maxPer uint16, scratch []int64) []uint16 {
	miss := s.missing(scratch[:0])
	if len(miss) == 0 {
		s.nackCount = nil
		return nil
	}
	if s.nackCount == nil {
		s.nackCount = map[int64]uint16{}
	}
	var out []uint16
	for _, e := range miss {
		if s.nackCount[e] < maxPer {
			out = append(out, uint16(e))
		}
		s.nackCount[e]++
	}
	if len(s.nackCount) > len(miss) {
		keep := make(map[int64]bool, len(miss))
		for _, e := range miss {
			keep[e] = true
		}
		for e := range s.nackCount {
			if !keep[e] {
				delete(s.nackCount, e)
			}
		}
	}
	return out
}

// winFigures returns the window's span (packets the server sent in it)
// and how many of them came, when this stream's window is the one that
// started at ws.
func (s *lightStream) winFigures(ws int64) (span, recv uint64, ok bool) {
	if ws == 0 || s.winStart != ws {
		return 0, 0, false
	}
	hi := s.winHi
	if hi == math.MaxInt64 {
		hi = s.highest // nothing came after the end: all of it is in
	}
	if hi <= s.winLo {
		return 0, 0, false
	}
	return uint64(hi - s.winLo), s.winRecv, true
}

// lightCounter is one light viewer's accounting: the sockets' batches come
// in on pion's read goroutine (onBatch), the NACKs and the remote
// description's reading go out on loop's. mu is held once per batch.
type lightCounter struct {
	viewer *viewer // frameArrived, firstPacket
	win    *window

	total atomic.Uint64 // media packets read (duplicates included)
	reads atomic.Uint64 // batches that held media

	mu         sync.Mutex
	streams    []*lightStream // few: one per track, looked up linearly
	last       *lightStream   // the last packet's stream
	unresolved bool           // a stream not found in the remote description yet

	// tests: drop (before counting) the packets of NACKed streams this
	// returns true for, once each, so that the NACKs bring them back
	drop    func(seq uint16) bool
	dropped map[uint64]bool

	// the loop's state: the PC (asked for at each tick), the NACKs'
	// sender SSRC, scratch space; the pump that ticks it (nil: its own
	// goroutine does)
	pcOf       func() *webrtc.PeerConnection
	senderSSRC uint32
	scratch    []int64
	pump       *lightPump

	started  atomic.Bool
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func newLightCounter(v *viewer, w *window) *lightCounter {
	return &lightCounter{viewer: v, win: w, stop: make(chan struct{}), done: make(chan struct{})}
}

// onBatch counts a batch of media datagrams (RTP headers in the clear)
// that arrived at now.
func (c *lightCounter) onBatch(pkts [][]byte, now int64) {
	ws, we := c.win.start.Load(), c.win.end.Load()
	c.mu.Lock()
	for _, p := range pkts {
		c.onPacket(p, now, ws, we)
	}
	c.mu.Unlock()
	c.total.Add(uint64(len(pkts)))
	c.reads.Add(1)
}

// pace reports whether the sockets may wait between reads: once the
// viewer's first frame was signalled (its arrival time is a figure).
func (c *lightCounter) pace() bool {
	return c.viewer == nil || c.viewer.firstFrame.Load() != 0
}

// onPacket counts one datagram (at least 12 bytes); c.mu is held.
func (c *lightCounter) onPacket(p []byte, now, ws, we int64) {
	ssrc := binary.BigEndian.Uint32(p[8:12])
	s := c.last
	if s == nil || s.ssrc != ssrc {
		s = nil
		for _, t := range c.streams {
			if t.ssrc == ssrc {
				s = t
				break
			}
		}
		if s == nil {
			s = &lightStream{ssrc: ssrc}
			c.streams = append(c.streams, s)
			c.unresolved = true
			if c.viewer != nil {
				c.viewer.firstPacket.CompareAndSwap(0, now)
			}
		}
		c.last = s
	}
	seq := binary.BigEndian.Uint16(p[2:4])
	if c.drop != nil && s.nack && c.dropOnce(ssrc, seq) {
		return
	}
	s.onRTP(seq, p[1]&0x80 != 0, now, ws, we)
}

// dropOnce is the test hook's decision; c.mu is held.
func (c *lightCounter) dropOnce(ssrc uint32, seq uint16) bool {
	k := uint64(ssrc)<<16 | uint64(seq)
	if c.dropped[k] || !c.drop(seq) {
		return false
	}
	if c.dropped == nil {
		c.dropped = map[uint64]bool{}
	}
	c.dropped[k] = true
	return true
}

// start runs the viewer's loop on pc (the subscriber PeerConnection,
// asked for at each tick: it exists once the server offered): the pump
// ticks it, or without one its own goroutine.
func (c *lightCounter) start(pc func() *webrtc.PeerConnection) {
	c.pcOf = pc
	c.senderSSRC = uint32(time.Now().UnixNano()) // any: the server reads the media SSRC
	c.started.Store(true)
	if c.pump != nil {
		c.pump.addCounter(c)
		close(c.done)
		return
	}
	go c.loop()
}

// close stops the loop and waits for it (a pump's round in progress
// ends first). Idempotent.
func (c *lightCounter) close() {
	c.stopOnce.Do(func() { close(c.stop) })
	if !c.started.Load() {
		return
	}
	if c.pump != nil {
		c.pump.removeCounter(c)
	}
	<-c.done
}

// loop ticks every nackInterval until close.
func (c *lightCounter) loop() {
	defer close(c.done)
	t := time.NewTicker(nackInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.tick()
	}
}

// tick, every nackInterval: tells new SSRCs apart by the remote
// description (and signals the first video frame), then sends the NACKs.
func (c *lightCounter) tick() {
	pc := c.pcOf()
	if pc == nil {
		return
	}
	c.mu.Lock()
	unresolved := c.unresolved
	c.mu.Unlock()
	if unresolved {
		if d := pc.RemoteDescription(); d != nil {
			c.resolve(parseSSRCs(d.SDP))
		}
	}
	var out []rtcp.Packet
	c.mu.Lock()
	for _, s := range c.streams {
		if !s.nack {
			continue
		}
		if seqs := s.nacks(maxNacksPerPacket, c.scratch); len(seqs) > 0 {
			out = append(out, &rtcp.TransportLayerNack{SenderSSRC: c.senderSSRC, MediaSSRC: s.ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)})
		}
	}
	c.mu.Unlock()
	for _, p := range out {
		_ = pc.WriteRTCP([]rtcp.Packet{p}) // one per packet, as pion's generator writes them
	}
}

// ssrcInfo is what the remote description says of one SSRC.
type ssrcInfo struct {
	kind     byte
	nack     bool
	streamID string
}

// resolve names the streams found in infos and signals the viewer's
// first video frame (the first packet with the marker bit, as a full
// viewer on loopback counts it) with that packet's arrival time.
func (c *lightCounter) resolve(infos map[uint32]ssrcInfo) {
	var frameAt int64
	c.mu.Lock()
	c.unresolved = false
	for _, s := range c.streams {
		if s.kind == 0 {
			in, ok := infos[s.ssrc]
			if !ok {
				c.unresolved = true
				continue
			}
			s.kind, s.nack, s.streamID = in.kind, in.nack, in.streamID
		}
		if s.kind == 'v' && s.firstMarker != 0 && (frameAt == 0 || s.firstMarker < frameAt) {
			frameAt = s.firstMarker
		}
	}
	if frameAt == 0 && c.viewer != nil && c.viewer.firstFrame.Load() == 0 {
		c.unresolved = true // look again for the first frame at the next tick
	}
	c.mu.Unlock()
	if frameAt != 0 && c.viewer != nil {
		c.viewer.frameArrived(frameAt)
	}
}

// parseSSRCs reads the media SSRCs of an SDP: a=ssrc:N msid:STREAM TRACK
// lines, their section's kind and whether it negotiates plain nack.
func parseSSRCs(s string) map[uint32]ssrcInfo {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return nil
	}
	out := map[uint32]ssrcInfo{}
	for _, md := range d.MediaDescriptions {
		var kind byte
		switch md.MediaName.Media {
		case "audio":
			kind = 'a'
		case "video":
			kind = 'v'
		default:
			continue
		}
		nack := false
		for _, a := range md.Attributes {
			if a.Key == "rtcp-fb" {
				if f := strings.Fields(a.Value); len(f) == 2 && f[1] == "nack" {
					nack = true
				}
			}
		}
		for _, a := range md.Attributes {
			if a.Key != "ssrc" {
				continue
			}
			num, rest, _ := strings.Cut(a.Value, " ")
			msid, ok := strings.CutPrefix(rest, "msid:")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(num, 10, 32)
			if err != nil {
				continue
			}
			stream, _, _ := strings.Cut(msid, " ")
			out[uint32(n)] = ssrcInfo{kind: kind, nack: nack, streamID: stream}
		}
	}
	return out
}

// lightWin is one source's window figures at one light viewer.
type lightWin struct{ span, recv uint64 }

// window returns the figures of the window that started at ws, by stream
// id (the publishing identity), summed over its tracks.
func (c *lightCounter) window(ws int64) map[string]lightWin {
	out := map[string]lightWin{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.streams {
		if span, recv, ok := s.winFigures(ws); ok && s.streamID != "" {
			w := out[s.streamID]
			w.span += span
			w.recv += min(recv, span)
			out[s.streamID] = w
		}
	}
	return out
}

// dups is the duplicates received, all streams.
func (c *lightCounter) dups() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	for _, s := range c.streams {
		n += s.dups
	}
	return n
}

// firstFrom is the arrival (UnixNano) of the first packet from streamID,
// 0 before one came (or before its SSRC was named).
func (c *lightCounter) firstFrom(streamID string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first int64
	for _, s := range c.streams {
		if s.streamID == streamID && s.firstAt != 0 && (first == 0 || s.firstAt < first) {
			first = s.firstAt
		}
	}
	return first
}

// lightJoin joins v as a light viewer: its own API on the runner's base
// network and pump, and its loop started once the session is up.
func (sc *runner) lightJoin(ctx context.Context, v *viewer, tok string) error {
	sc.mu.Lock()
	if sc.lightNet == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			sc.mu.Unlock()
			return err
		}
		sc.lightNet = n
		sc.lightPump = newLightPump()
	}
	base, pump := sc.lightNet, sc.lightPump
	sc.mu.Unlock()
	v.light.pump = pump
	api, err := newLightAPI(client.LoopbackSettingEngine(), base, v.light, pump)
	if err != nil {
		return err
	}
	return v.join(ctx, sc.tgt.baseURL, api, tok)
}
