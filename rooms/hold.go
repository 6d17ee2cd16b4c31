package rooms

// A held member (PROTOCOL.md 1.1 §5): its session's socket was lost
// without leave, kick or room end, and the transport holds the session
// for the reconnect grace. The member stays in its room: no
// participant.left, its tracks, relays and stage seat stay. What the
// others see instead:
//   - 1.1 subscribers of its tracks, and of their relayed copies (in the
//     destinations on this node here; on other nodes, told over the
//     relay's link, in relayCopyHeld there), get track.stream "paused"
//     publisher_reconnecting (streams.go), then "active" with the first
//     packet after the resume;
//   - a host's room goes waiting_reconnect, and back to its earlier status
//     at the resume (sfu.Room.SetHostHeld);
//   - the relay it sources keeps running (no relay.state); the member is
//     told relay.event src_reconnecting (100) at the hold, src_resumed
//     (101) at the resume.
//
// The grace expired, the member leaves exactly as v1's leave (Expire), and
// a host's room ends host_timeout: its grace ran with the hold.
//
// The transport decides when (signaling/hold.go); this file does what
// follows for the room.

import (
	"time"

	"github.com/relaysfu/relayd/relay"
	"github.com/relaysfu/relayd/sfu"
)

// relayd's own relay events (codes >= 100; Agora's are 0-15): the relay's
// source is held, and it resumed. Never sent to 1.0 sessions (a held
// session is a 1.1 one).
const (
	EventSrcReconnecting     = "src_reconnecting"
	EventSrcReconnectingCode = 100
	EventSrcResumed          = "src_resumed"
	EventSrcResumedCode      = 101
)

// sinkRef boxes a member's Sink for its atomic pointer.
type sinkRef struct{ Sink }

// out returns where the member's events go now.
func (m *Member) out() Sink { return m.sink.Load().Sink }

// ReconnectGrace is how long a held session waits for its resume
// (--reconnect-grace).
func (r *Rooms) ReconnectGrace() time.Duration { return r.sfu.ReconnectGrace() }

// Hold marks the member held: its tracks (and their relayed copies here)
// hold publisher_reconnecting, a host's room goes waiting_reconnect, the
// relay it sources tells it src_reconnecting. A user session has nothing
// to hold.
func (m *Member) Hold() {
	if m.p == nil {
		return
	}
	for _, up := range m.r.heldTracks(m.p) {
		m.r.streams.trackCause(up.ID(), CausePublisherReconnecting, true)
	}
	m.p.Room().SetHostHeld(m.p, true)
	m.p.HoldSubscriber(true) // no offers until the resume restarts ICE
	m.p.HoldPublisher(true)  // a reloaded page's PC closing leaves its tracks
	if rl := m.r.relays.Of(m.p); rl != nil {
		rl.SourceHeld(true) // its destinations on other nodes
		m.deliver(RelayEvent{relay.EventParams{Relay: rl.Info().ID, Event: EventSrcReconnecting, Code: EventSrcReconnectingCode}})
	}
}

// Rebind gives a held (or still connected) member to the session that
// resumed it: its events go to sink from now on. The caller then restarts
// the subscriber PC's ICE, and calls Resumed.
func (m *Member) Rebind(sink Sink) { m.sink.Store(&sinkRef{sink}) }

// Resumed ends the hold: its tracks' cause ends (the subscribers are told
// "active" with the next packet, which also asks the publisher for a
// keyframe: the viewers' decoders restart at once), a host's room returns
// to its earlier status and the relay it sources tells it src_resumed.
func (m *Member) Resumed() {
	if m.p == nil {
		return
	}
	for _, up := range m.r.heldTracks(m.p) {
		waiting := m.r.streams.trackCause(up.ID(), CausePublisherReconnecting, false)
		m.r.armResumed(up, waiting)
	}
	m.p.Room().SetHostHeld(m.p, false)
	m.p.HoldPublisher(false) // kept until a publisher PC connects again
	if rl := m.r.relays.Of(m.p); rl != nil {
		rl.SourceHeld(false)
		m.deliver(RelayEvent{relay.EventParams{Relay: rl.Info().ID, Event: EventSrcResumed, Code: EventSrcResumedCode}})
	}
}

// Expire ends a held member whose grace ran out: v1's leave (its relay
// stops: event disconnect, state idle; its tracks are unpublished; the
// others get participant.left), then a host's room ends host_timeout.
func (m *Member) Expire() {
	var room *sfu.Room
	if m.p != nil && m.p.Role() == sfu.RoleHost {
		room = m.p.Room()
	}
	m.Close()
	if room != nil {
		room.End(sfu.EndHostTimeout)
	}
}

// State returns the member's current view of its room, as a join result
// has it (a resumed session's result); ErrConflict when it is no longer
// in the room.
func (m *Member) State() (Joined, error) {
	if m.p == nil {
		return Joined{
			Participant:  sfu.ParticipantInfo{Identity: m.identity, Name: m.name, Role: sfu.RoleViewer, Tracks: []sfu.TrackInfo{}},
			Participants: []sfu.ParticipantInfo{}, Tracks: []sfu.TrackInfo{},
		}, nil
	}
	st, err := m.p.Room().StateOf(m.p)
	if err != nil {
		return Joined{}, errorf(ErrConflict, "room %s has ended", m.room)
	}
	j := Joined{Participant: st.Participant, Room: &st.Room, Participants: st.Participants, Tracks: st.Tracks}
	if j.Participants == nil {
		j.Participants = []sfu.ParticipantInfo{}
	}
	if j.Tracks == nil {
		j.Tracks = []sfu.TrackInfo{}
	}
	return j, nil
}

// heldTracks returns p's published tracks and their relayed copies in the
// destination rooms of this node (copies on other nodes are told over the
// relay's link: relayCopyHeld runs there).
func (r *Rooms) heldTracks(p *sfu.Participant) []*sfu.UpTrack {
	own := p.PublishedTracks()
	out := append([]*sfu.UpTrack(nil), own...)
	rl := r.relays.Of(p)
	if rl == nil {
		return out
	}
	isOwn := map[*sfu.UpTrack]bool{}
	for _, up := range own {
		isOwn[up] = true
	}
	info := rl.Info()
	for _, d := range info.Destinations {
		room := r.sfu.Room(d.Room)
		if room == nil || d.Identity == "" {
			continue
		}
		for _, q := range relaysOf(room, d.Identity) {
			for _, up := range q.PublishedTracks() {
				if isOwn[up.Origin()] {
					out = append(out, up)
				}
			}
		}
	}
	return out
}

// armResumed arms a resumed publisher's track for its next packet: the
// subscribers waiting are told "active" (when waiting), and a video
// track's publisher is asked for a keyframe, so that decoders (the
// relay's destinations' too) restart at once rather than at the next
// periodic keyframe. A relayed copy asks through its origin.
func (r *Rooms) armResumed(up *sfu.UpTrack, waiting bool) {
	id := up.ID()
	up.OnNextPacket(func() {
		go func() {
			up.RequestKeyframe()
			if waiting {
				r.streams.packet(id)
			}
		}()
	})
}

// relayCopyHeld is the relay links' OnHeld: the source of relay
// participant p, on another node, is held (its copies here hold
// publisher_reconnecting) or resumed (the cause ends; "active" and a
// keyframe request with each copy's next packet).
func (r *Rooms) relayCopyHeld(p *sfu.Participant, held bool) {
	for _, up := range p.PublishedTracks() {
		waiting := r.streams.trackCause(up.ID(), CausePublisherReconnecting, held)
		if !held {
			r.armResumed(up, waiting)
		}
	}
}
