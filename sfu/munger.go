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
// while an upstream loss stays a gap it may NACK. tsOffset is chosen once;
// timestamps of one source are continuous by themselves.
type munger struct {
	video   bool
	started bool // forwarding; false: waiting for a (key)frame start

	seqOffset uint64
	tsOffset  uint32
	startExt  uint64 // packets older than the (re)start point are dropped
	highExt   uint64 // newest upstream packet forwarded
	lastOut   uint16 // out seq of highExt

	// history maps recent outgoing sequence numbers back to upstream
	// extended ones, to answer NACKs from the upstream Cache.
	history []seqPair
}

type seqPair struct {
	ext uint64
	out uint16
	ok  bool
}

// dropReason says why a packet is not forwarded; dropNone forwards.
type dropReason uint8

const (
	dropNone dropReason = iota
	dropWaitKeyframe
	dropStale
)

// Sizes of the NACK history. 512 video packets are ~3 s at 1.5 Mbit/s, as
// long as a retransmission is still useful; audio is rarely NACKed.
const (
	videoHistory = 512
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
	if ext >= m.highExt {
		m.highExt = ext
		m.lastOut = seq
	}
	m.history[int(seq)%len(m.history)] = seqPair{ext: ext, out: seq, ok: true}
	return seq, ts + m.tsOffset, dropNone
}

// restart makes ext the next outgoing packet, continuing the outgoing
// sequence (the first start begins at the initial sequence number).
func (m *munger) restart(ext uint64) {
	m.seqOffset = ext - uint64(m.lastOut+1)
	m.startExt = ext
	m.highExt = ext
	m.started = true
}

// stop makes the munger wait for the next keyframe (video) or packet
// (audio) again, continuing the outgoing sequence when it restarts.
func (m *munger) stop() { m.started = false }

// upstream maps an outgoing sequence number (from a NACK) to the upstream
// extended sequence number and reports whether it is known.
func (m *munger) upstream(out uint16) (uint64, bool) {
	p := m.history[int(out)%len(m.history)]
	if !p.ok || p.out != out {
		return 0, false
	}
	return p.ext, true
}
