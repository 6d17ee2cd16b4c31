package bench

// What a person sees of a VP8 stream, from the packets a viewer receives:
// which frames could be shown and when, and when a browser's receiver would
// ask for a keyframe. Pure state machines, fed by the track's reader
// goroutine (recv.go); table-tested in frames_test.go.
//
// A frame is the packets of one RTP timestamp. It is complete when its
// first packet (VP8 descriptor S=1, partition 0), its last (the marker bit)
// and every sequence number in between have arrived. It is shown
// (decodable) when it is complete and is a keyframe newer than the last
// shown frame, or a delta frame that directly follows the last shown frame
// (its first sequence number is one past that frame's last): the sources
// the bench measures send single-layer VP8 whose every delta frame refers
// to the frame before, so one lost frame stops the picture until the next
// keyframe, as in a browser. A frame is shown at the moment it becomes
// decodable: when its last missing packet arrives, or when the frame before
// it is shown, whichever is later. There is no playout buffer.
//
// The server hides the sequence numbers of packets it drops on purpose (a
// slow subscriber's video, up to the next keyframe), so a frame cut short
// that way lacks its marker and is never complete; the next frame after
// such a gap is a keyframe and is shown.
//
// A padding-only packet (a server probing the viewer's downlink sends them
// between frames, on the video's SSRC) takes a sequence number and carries
// nothing: a frame that follows the last shown one across padding still
// follows it, as in a receiver's packet buffer.

import "time"

// frameRing is how many recent frames a tracker follows: 128 frames are
// 4.3 s at 30 fps, longer than a lost packet is NACKed (10 times, 100 ms
// apart) and than the 3 s a receiver waits before asking for a keyframe.
const frameRing = 128

// frameSlot is one frame being assembled.
type frameSlot struct {
	ts          uint32
	used        bool
	first, last int64 // extended sequence numbers of the first and last packets; -1 unknown
	got         int   // distinct packets received
	key         bool
	done        bool // shown, or skipped (older than what was shown)
}

func (s *frameSlot) complete() bool {
	return s.first >= 0 && s.last >= s.first && int64(s.got) >= s.last-s.first+1
}

// frameTracker follows the frames of one video track. Not safe for
// concurrent use: one reader goroutine owns it.
type frameTracker struct {
	ring [frameRing]frameSlot
	next int // the slot the next new frame takes

	seq     seqUnwrapper
	shownTo int64 // last sequence number of the last shown frame; -1 before the first
	shown   uint64
	late    uint64           // packets that came after a later one
	pads    [frameRing]int64 // padding-only packets seen, by extended sequence number
}

func newFrameTracker() *frameTracker { return &frameTracker{shownTo: -1} }

// packetInfo is what the tracker needs of one received VP8 packet.
type packetInfo struct {
	seq     uint16
	ts      uint32
	start   bool // VP8 descriptor S=1 with partition id 0: the frame's first packet
	key     bool // start of a keyframe (VP8 payload header P=0)
	marker  bool // RTP marker: the frame's last packet
	padding bool // no payload: padding only
}

// onPacket takes one packet (duplicates already removed) and returns how
// many frames became shown with it. It counts, in late, the packets that
// arrive after a later one: in the lab, which never reorders, those are
// retransmissions.
func (f *frameTracker) onPacket(p packetInfo) int {
	before := f.seq.last
	ext := f.seq.unwrap(p.seq)
	if ext < before {
		f.late++
	}
	if f.shownTo >= 0 && ext <= f.shownTo {
		return 0 // a late copy of something already shown or skipped
	}
	if p.padding {
		f.pads[ext%frameRing] = ext
		n := 0
		for f.shownTo >= 0 {
			nx := f.following()
			if nx == nil {
				break
			}
			f.show(nx)
			n++
		}
		return n
	}
	s := f.slot(p.ts)
	if s.done {
		return 0
	}
	s.got++
	if p.start {
		s.first = ext
		s.key = p.key
	}
	if p.marker {
		s.last = ext
	}
	if !s.complete() {
		return 0
	}
	n := 0
	if s.key && s.first > f.shownTo {
		// A keyframe needs nothing before it: older frames are moot.
		for i := range f.ring {
			if o := &f.ring[i]; o.used && !o.done && o.last >= 0 && o.last < s.first {
				o.done = true
			}
		}
		f.show(s)
		n++
	}
	// Show the chain of complete frames that follows the last shown one.
	for f.shownTo >= 0 {
		nx := f.following()
		if nx == nil {
			break
		}
		f.show(nx)
		n++
	}
	return n
}

func (f *frameTracker) show(s *frameSlot) {
	s.done = true
	f.shownTo = s.last
	f.shown++
}

// following returns the complete, unshown frame that starts right after the
// last shown one, or nil.
func (f *frameTracker) following() *frameSlot {
	next := f.shownTo + 1
	for f.pads[next%frameRing] == next { // padding between the frames
		next++
	}
	for i := range f.ring {
		if s := &f.ring[i]; s.used && !s.done && s.first == next && s.complete() {
			return s
		}
	}
	return nil
}

// slot finds the frame of timestamp ts among the recent ones (searching
// from the newest: nearly every packet belongs to one of the last few
// frames), or starts a new one in the oldest slot.
func (f *frameTracker) slot(ts uint32) *frameSlot {
	for k := 1; k <= frameRing; k++ {
		s := &f.ring[(f.next-k+frameRing)%frameRing]
		if !s.used {
			break
		}
		if s.ts == ts {
			return s
		}
	}
	s := &f.ring[f.next]
	f.next = (f.next + 1) % frameRing
	*s = frameSlot{ts: ts, used: true, first: -1, last: -1}
	return s
}

// seqUnwrapper extends 16-bit RTP sequence numbers.
type seqUnwrapper struct {
	last    int64
	started bool
}

func (u *seqUnwrapper) unwrap(seq uint16) int64 {
	if !u.started {
		u.started = true
		u.last = int64(seq) + 1<<16 // room below for late packets
		return u.last
	}
	ext := u.last + int64(int16(seq-uint16(u.last)))
	u.last = max(u.last, ext)
	return ext
}

// The receiver's keyframe requests, as libwebrtc's VideoReceiveStream2
// makes them (Chromium, Safari and most native apps): when no frame could
// be decoded for maxWaitForFrame (maxWaitForKeyframe until the first frame
// was decoded) it sends a PLI, unless the stream is inactive (no packet for
// 5 s) or a keyframe is being received (a keyframe packet within
// maxWaitForKeyframe); either way the wait starts again.
const (
	maxWaitForKeyframe = 200 * time.Millisecond // libwebrtc kMaxWaitForKeyFrame
	maxWaitForFrame    = 3 * time.Second        // libwebrtc kMaxWaitForFrame
	inactiveStream     = 5 * time.Second        // libwebrtc kInactiveDuration
)

// keyframePolicy is the state of those requests; times are UnixNano, 0 for
// never.
type keyframePolicy struct {
	started     int64 // the stream's first packet
	lastShown   int64
	lastTimeout int64
	lastKeyPkt  int64  // the last packet of a keyframe
	keyTS       uint32 // RTP timestamp of the last keyframe seen starting
	haveKeyTS   bool
	lastPkt     int64
}

// onPacket records a packet at now (ts its RTP timestamp, startsKey: it is
// the first packet of a keyframe) and the frames shown with it, and reports
// whether a keyframe request is to be sent now. Like libwebrtc, a packet
// belongs to a keyframe when it starts one or has the timestamp of the last
// one that started. It is checked at each video packet's arrival, so a
// request can come up to one packet interval late; when no packet arrives
// there is nothing to ask for (the stream is inactive).
func (k *keyframePolicy) onPacket(now int64, ts uint32, startsKey bool, shown int) (request bool) {
	if k.started == 0 {
		k.started = now
	}
	k.lastPkt = now
	if startsKey {
		k.keyTS, k.haveKeyTS = ts, true
	}
	if k.haveKeyTS && ts == k.keyTS {
		k.lastKeyPkt = now
	}
	if shown > 0 {
		k.lastShown = now
	}
	return k.due(now)
}

// due runs the decode timeout at now.
func (k *keyframePolicy) due(now int64) bool {
	wait := maxWaitForFrame
	if k.lastShown == 0 {
		wait = maxWaitForKeyframe
	}
	since := max(k.started, k.lastShown, k.lastTimeout)
	if since == 0 || now-since < int64(wait) {
		return false
	}
	k.lastTimeout = now
	active := k.lastPkt != 0 && now-k.lastPkt < int64(inactiveStream)
	receivingKey := k.lastKeyPkt != 0 && now-k.lastKeyPkt < int64(maxWaitForKeyframe)
	return active && !receivingKey
}

// freezeThreshold: a gap between two shown frames longer than this is a
// freeze (the definition; Chromium's freezeCount uses max(3 frame
// intervals, mean + 150 ms), about 150-250 ms at 30 fps).
const freezeThreshold = 500 * time.Millisecond

// freezeOverlap is the part of a gap between shown frames at prev and next
// (UnixNano; prev 0: no frame shown before) that is a freeze inside the
// window [ws, we): all of the gap when it is longer than freezeThreshold,
// nothing otherwise, clipped to the window.
func freezeOverlap(prev, next, ws, we int64) int64 {
	if prev != 0 && next-prev <= int64(freezeThreshold) {
		return 0
	}
	lo, hi := max(prev, ws), min(next, we)
	return max(0, hi-lo)
}
