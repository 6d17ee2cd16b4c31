package rooms

// streams feeds the track.stream rule (stream.go) and tells its notes: it
// keeps the state of every track each 1.1 member was given (a join
// result, a track.published), the per-track causes holding, and which
// relay participants' relays are paused.
//
// Where its inputs come from:
//   - StreamGot: Rooms.Join (the join result's tracks) and Member.Notify
//     (a TrackPublished, after passing it on: "paused" comes right after).
//   - relay_paused: the relay's events (relays.go, syncRelayPause: pause,
//     resume, a destination joined), and the tracks a paused relay
//     publishes later (RoomChanged).
//   - StreamPacket: the relayed copy's next packet after a resume
//     (sfu.UpTrack.OnNextPacket).
//
// A later cause plugs in the same way: a per-track one (a held
// publisher: publisher_reconnecting) calls trackCause for each of the
// publisher's tracks (relayed copies too) at the hold and at the resume,
// then arms the tracks' OnNextPacket when it reports subscribers waiting;
// a per-subscriber one (bandwidth) calls subscriberCause for that member
// and track, and packet when the subscriber gets media again.

import (
	"sync"

	"github.com/relaysfu/relayd/sfu"
)

type streams struct {
	mu     sync.Mutex
	held   map[string][]StreamCause           // guarded by mu: per-track causes holding, by track id
	subs   map[string]map[*Member]StreamState // guarded by mu: by track id, the 1.1 members given it
	paused map[*sfu.Participant]bool          // guarded by mu: relay participants whose relay is paused
	out    ordered                            // the notes, told in the order decided
}

func newStreams() *streams {
	return &streams{
		held:   map[string][]StreamCause{},
		subs:   map[string]map[*Member]StreamState{},
		paused: map[*sfu.Participant]bool{},
	}
}

// stepLocked runs one input for m's state of track id and queues the note
// it calls for. It reports whether m now waits for a packet.
func (s *streams) stepLocked(m *Member, id string, in StreamInput) bool {
	st, note := NextStream(s.subs[id][m], in)
	if s.subs[id] == nil {
		s.subs[id] = map[*Member]StreamState{}
	}
	s.subs[id][m] = st
	if note != nil {
		ev := TrackStream{TrackID: id, State: note.State, Reason: note.Reason}
		s.out.push(func() { m.deliver(ev) })
	}
	return st.Waiting()
}

// got: m was given track id.
func (s *streams) got(m *Member, id string) {
	s.mu.Lock()
	if m.closed {
		s.mu.Unlock()
		return
	}
	s.stepLocked(m, id, StreamInput{Kind: StreamGot, Held: s.held[id]})
	s.mu.Unlock()
	s.out.drain()
}

// dropped: m was told track id is gone.
func (s *streams) dropped(m *Member, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if subs := s.subs[id]; subs != nil {
		delete(subs, m)
		if len(subs) == 0 {
			delete(s.subs, id)
		}
	}
}

// memberGone forgets m, for good.
func (s *streams) memberGone(m *Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.closed = true
	for id, subs := range s.subs {
		delete(subs, m)
		if len(subs) == 0 {
			delete(s.subs, id)
		}
	}
}

// trackGone forgets track id (unpublished).
func (s *streams) trackGone(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, id)
	delete(s.subs, id)
}

// trackCause begins (on) or ends a per-track cause of track id for every
// member given it, and for those given it later. It reports whether some
// member now waits for a packet to be told "active".
func (s *streams) trackCause(id string, c StreamCause, on bool) (waiting bool) {
	s.mu.Lock()
	held := s.held[id]
	if on == holds(held, c) {
		s.mu.Unlock()
		return false
	}
	if on {
		s.held[id] = append(append([]StreamCause(nil), held...), c)
	} else {
		rest := make([]StreamCause, 0, len(held))
		for _, h := range held {
			if h != c {
				rest = append(rest, h)
			}
		}
		if s.held[id] = rest; len(rest) == 0 {
			delete(s.held, id)
		}
	}
	in := StreamInput{Kind: StreamEnd, Cause: c}
	if on {
		in.Kind = StreamBegin
	}
	for m := range s.subs[id] {
		if s.stepLocked(m, id, in) {
			waiting = true
		}
	}
	s.mu.Unlock()
	s.out.drain()
	return waiting
}

// subscriberCause begins (on) or ends a cause of one member's own for
// track id (bandwidth). It reports whether m now waits for a packet.
func (s *streams) subscriberCause(m *Member, id string, c StreamCause, on bool) (waiting bool) {
	s.mu.Lock()
	if _, ok := s.subs[id][m]; !ok {
		s.mu.Unlock()
		return false // not given the track: nothing to tell
	}
	in := StreamInput{Kind: StreamEnd, Cause: c}
	if on {
		in.Kind = StreamBegin
	}
	waiting = s.stepLocked(m, id, in)
	s.mu.Unlock()
	s.out.drain()
	return waiting
}

// packet: a packet of track id was delivered to its subscribers: those
// waiting are told "active".
func (s *streams) packet(id string) {
	s.mu.Lock()
	for m, st := range s.subs[id] {
		if st.Waiting() {
			s.stepLocked(m, id, StreamInput{Kind: StreamPacket})
		}
	}
	s.mu.Unlock()
	s.out.drain()
}

// memberPacket: a packet of track id was delivered to m (after a cause
// of its own ended): told "active" if it waits.
func (s *streams) memberPacket(m *Member, id string) {
	s.mu.Lock()
	if st, ok := s.subs[id][m]; ok && st.Waiting() {
		s.stepLocked(m, id, StreamInput{Kind: StreamPacket})
	}
	s.mu.Unlock()
	s.out.drain()
}

// setRelayPaused records whether the relay of relay participant p is
// paused; it reports whether that changed.
func (s *streams) setRelayPaused(p *sfu.Participant, paused bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused[p] == paused {
		return false
	}
	if paused {
		s.paused[p] = true
	} else {
		delete(s.paused, p)
	}
	return true
}

// relayPaused reports whether relay participant p's relay is paused.
func (s *streams) relayPaused(p *sfu.Participant) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused[p]
}

// participantGone forgets a relay participant that left.
func (s *streams) participantGone(p *sfu.Participant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.paused, p)
}

// armActive has the subscribers of up waiting for media told "active"
// with its next packet. The call comes from the packet path, so the
// telling is handed to a goroutine of its own.
func (s *streams) armActive(up *sfu.UpTrack) {
	id := up.ID()
	up.OnNextPacket(func() { go s.packet(id) })
}
