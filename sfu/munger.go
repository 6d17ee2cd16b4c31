package sfu

// munger decides, for one subscriber, whether an upstream packet is
// forwarded and with which sequence number and timestamp. It is pure state
// with no I/O (LiveKit's Forwarder/RTPMunger idea), owned by one DownTrack's
// writer goroutine, and table-tested in munger_test.go.
//
// Outgoing numbers are upstream numbers shifted by per-subscriber offsets:
//
//	out seq = uint16(ext - seqOffset)   out ts = ts + tsOffset
//
// The offsets change only at a (re)start point: the first keyframe a
// subscriber gets, and the packet that ends a run of deliberate drops (a
// full queue). There seqOffset is chosen so the outgoing sequence continues
// without a gap: the subscriber never NACKs what we dropped on purpose,
// while an upstream loss stays a gap it may NACK. tsOffset is chosen once
// per source: timestamps of one source are continuous by themselves. A
// switch to another simulcast layer (another source, with its own
// sequence and timestamp bases) is a restart point at a keyframe of that
// layer, where tsOffset is chosen again so that the outgoing timestamp
// advances by the time since the last packet sent (switchLayer).
type munger struct {
	video   bool
	started bool // forwarding; false: waiting for a (key)frame start

	seqOffset uint64
	tsOffset  uint32
	startExt  uint64 // packets older than the (re)start point are dropped
	restartAt uint64 // the (re)start point: a decoder restarts there (pad moves startExt, not this)
	highExt   uint64 // newest upstream packet forwarded
	lastOut   uint16 // out seq of highExt
	lastTS    uint32 // out timestamp of highExt
	layer     uint8  // the layer forwarded: history entries name it

	// history maps recent outgoing sequence numbers back to upstream
	// extended ones, to answer NACKs from the upstream Cache.
	history []seqPair
}

type seqPair struct {
	ext   uint64
	ts    uint32 // the out timestamp sent (a layer switch changes tsOffset)
	out   uint16
	layer uint8
	ok    bool
}

// dropReason says why a packet is not forwarded; dropNone forwards.
type dropReason uint8

const (
	dropNone dropReason = iota
	dropWaitKeyframe
	dropStale
)

// Sizes of the NACK history, 16 bytes an entry, per down track. Video:
// 256 packets are 1.6 s at 1.5 Mbit/s (~156 packets/s of ~1,200 bytes),
// 1 s at 2.5 Mbit/s. A viewer NACKs a gap one packet after it sees it and
// again about every RTT; the answer must come before the frame's playout
// time, a few hundred ms for real-time video, so a retransmission more
// than a second late only costs bandwidth (the viewer asks for a
// keyframe). 512 (3.3 s at 1.5 Mbit/s) took 8 KiB per video down track
// for the second half of that. Beyond the history a NACK goes unanswered
// and counts as relayd_retransmits_total{result="miss"}. The up track's
// Cache (uptrack.go) keeps 512 packets of each layer, so every entry here
// still finds its packet.
// Audio is rarely NACKed (64 packets: 1.3 s of 20 ms Opus).
const (
	videoHistory = 256
	audioHistory = 64
)

func newMunger(video bool, initialSeq uint16, initialTS uint32) munger {
	n := audioHistory
	if video {
		n = videoHistory
	}
	return munger{
		video:    video,
		lastOut:  initialSeq - 1,
		tsOffset: initialTS,
		history:  make([]seqPair, n),
	}
}

// translate returns the outgoing sequence number and timestamp of the
// upstream packet ext (timestamp ts), or a reason to drop it. keyframe marks
// the first packet of a keyframe; resync marks the first packet enqueued
// after deliberate drops (for video it is always a keyframe start).
func (m *munger) translate(ext uint64, ts uint32, keyframe, resync bool) (seq uint16, outTS uint32, drop dropReason) {
	if !m.started || resync {
		if m.video && !keyframe {
			m.started = false
			return 0, 0, dropWaitKeyframe
		}
		m.restart(ext)
	} else if ext < m.startExt {
		// Older than the point we (re)started at: the subscriber
		// never saw its frame, and its number may be reused.
		return 0, 0, dropStale
	}
	seq = uint16(ext - m.seqOffset)
	outTS = ts + m.tsOffset
	if ext >= m.highExt {
		m.highExt = ext
		m.lastOut = seq
		m.lastTS = outTS
	}
	m.history[int(seq)%len(m.history)] = seqPair{ext: ext, ts: outTS, out: seq, layer: m.layer, ok: true}
	return seq, outTS, dropNone
}

// switchLayer makes the munger forward layer from its packet ext, a
// keyframe start with timestamp ts, sent elapsed timestamp units after the
// last packet sent: the outgoing sequence continues without a gap and the
// outgoing timestamp advances by elapsed (at least 1), whatever the new
// source's bases. The next translate of ext restarts there.
func (m *munger) switchLayer(layer uint8, ts, elapsed uint32) {
	m.layer = layer
	m.started = false
	m.tsOffset = m.lastTS + max(elapsed, 1) - ts
}

// restart makes ext the next outgoing packet, continuing the outgoing
// sequence (the first start begins at the initial sequence number).
func (m *munger) restart(ext uint64) {
	m.seqOffset = ext - uint64(m.lastOut+1)
	m.startExt = ext
	m.restartAt = ext
	m.highExt = ext
	m.started = true
}

// stop makes the munger wait for the next keyframe (video) or packet
// (audio) again, continuing the outgoing sequence when it restarts.
func (m *munger) stop() { m.started = false }

// upstream maps an outgoing sequence number (from a NACK) to the upstream
// packet it was (its extended sequence number and layer) and the out
// timestamp it was sent with, and reports whether it is known.
func (m *munger) upstream(out uint16) (seqPair, bool) {
	p := m.history[int(out)%len(m.history)]
	if !p.ok || p.out != out {
		return seqPair{}, false
	}
	return p, true
}

// pad returns the outgoing sequence number and timestamp of a padding
// packet sent after the last packet: the outgoing sequence goes on after
// it (later packets shift by one), and an upstream packet older than the
// newest one forwarded is dropped from now on (its number is taken).
func (m *munger) pad() (seq uint16, ts uint32) {
	m.lastOut++
	m.seqOffset--
	if m.started {
		m.startExt = m.highExt + 1
	}
	m.history[int(m.lastOut)%len(m.history)] = seqPair{}
	return m.lastOut, m.lastTS
}
