package rooms

import (
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/relaysfu/relayd/sfu"
)

// Member is one session's place: an identity in a room (with its sfu
// participant), or a user session (no room: invitations only). The
// transport calls its methods on the client's behalf, one request at a
// time; its events go to the Sink it joined with.
type Member struct {
	r        *Rooms
	identity string
	name     string
	room     string           // "" for a user session
	p        *sfu.Participant // nil for a user session; set by Join, before the transport's first call
	// part is p for Notify, which the sfu may call from another goroutine
	// before Join has returned (a newer session replacing this one).
	part atomic.Pointer[sfu.Participant]
	// sink is where the member's events go: its session's, replaced when
	// another connection resumes the session (hold.go).
	sink atomic.Pointer[sinkRef]
	v11  bool // the session speaks 1.1: it gets 1.1's notifications
	// closed: the member is gone from streams (guarded by the streams'
	// mu): what its mailbox still delivers is not kept.
	closed bool
	log    *slog.Logger
	chat   *rate.Limiter // chat.send's rate (chat.go)
}

// JoinRequest is what the transport knows of a joining client: its
// identity and name, the room (none: a user session), whether it comes as
// the room's host (a host token), whether its session speaks protocol 1.1
// and whether it is a resume attempt (which never starts a broadcast).
type JoinRequest struct {
	Identity string
	Name     string
	Room     string
	Host     bool
	V11      bool
	Resume   bool
}

// Joined is what a member learns at join: itself, and for a room member
// the room, the others and the tracks (Room is nil for a user session).
type Joined struct {
	Participant  sfu.ParticipantInfo
	Room         *sfu.RoomInfo
	Participants []sfu.ParticipantInfo // never nil
	Tracks       []sfu.TrackInfo       // never nil
}

// Join admits a client. A user session (no room) only gets invitations.
// A host may create its room (counted by the creation rate limit: 4029);
// a host token for someone else's room and a banned identity are
// ErrForbidden, a viewer of a missing room ErrNotFound, an ended room
// ErrConflict. A viewer holding an accepted invitation joins as co-host.
// A direct participant already in the room with that identity is replaced
// (its session told SessionEnded).
func (r *Rooms) Join(req JoinRequest, sink Sink) (*Member, Joined, error) {
	m := &Member{
		r: r, identity: req.Identity, name: req.Name, room: req.Room, v11: req.V11,
		log:  r.log.With("participant", req.Identity, "room", req.Room),
		chat: rate.NewLimiter(ChatRate, ChatBurst),
	}
	m.sink.Store(&sinkRef{sink})
	if req.Room == "" {
		r.register(m, true)
		return m, Joined{
			Participant:  sfu.ParticipantInfo{Identity: req.Identity, Name: req.Name, Role: sfu.RoleViewer, Tracks: []sfu.TrackInfo{}},
			Participants: []sfu.ParticipantInfo{},
			Tracks:       []sfu.TrackInfo{},
		}, nil
	}
	room := r.Room(req.Room)
	role := sfu.RoleViewer
	if req.Host {
		role = sfu.RoleHost
		var err error
		if room == nil {
			if room, err = r.create(req.Room, req.Identity, "", "", true, false); err != nil {
				return nil, Joined{}, err
			}
		}
		if room.Host() != req.Identity {
			return nil, Joined{}, errorf(ErrForbidden, "forbidden: %s is not the host of room %s", req.Identity, req.Room)
		}
		if startsBroadcast(room.Status(), true, req.V11, req.Resume) {
			info := room.Info(false)
			next, err := r.nextBroadcast(room, req.Identity, info.Title, string(info.Metadata), false)
			if err != nil && !errors.Is(err, sfu.ErrRoomExists) { // exists: another join started it; join that one
				return nil, Joined{}, err
			}
			if room = next; room.Host() != req.Identity {
				return nil, Joined{}, errorf(ErrForbidden, "forbidden: %s is not the host of room %s", req.Identity, req.Room)
			}
		}
	} else if room == nil {
		return nil, Joined{}, errorf(ErrNotFound, "room %s not found", req.Room)
	}
	if r.banned(req.Room, req.Identity) {
		return nil, Joined{}, errorf(ErrForbidden, "forbidden: %s is banned from room %s", req.Identity, req.Room)
	}
	if room.Status().Ended() {
		return nil, Joined{}, errorf(ErrConflict, "room %s has ended", req.Room)
	}
	if role == sfu.RoleViewer && r.isCohost(req.Room, req.Identity) {
		role = sfu.RoleCohost // joining later keeps an accepted invitation's role
	}
	p, st, err := room.Join(sfu.ParticipantParams{Identity: req.Identity, Name: req.Name, Role: role, Events: m, V11: req.V11})
	if err != nil {
		return nil, Joined{}, fromSFU(err)
	}
	m.p = p
	m.part.Store(p)
	m.log = m.log.With("role", string(role))
	r.bind(p, m)
	r.register(m, true)
	j := Joined{Participant: st.Participant, Room: &st.Room, Participants: st.Participants, Tracks: st.Tracks}
	if j.Participants == nil {
		j.Participants = []sfu.ParticipantInfo{}
	}
	if j.Tracks == nil {
		j.Tracks = []sfu.TrackInfo{}
	}
	if m.v11 {
		for _, t := range j.Tracks {
			r.streams.got(m, t.ID) // told after the result: the transport holds events until then
		}
	}
	return m, j, nil
}

// Identity returns the member's identity.
func (m *Member) Identity() string { return m.identity }

// Participant returns the member's sfu participant (nil for a user
// session).
func (m *Member) Participant() *sfu.Participant { return m.p }

// Notify implements sfu.EventSink: the sfu's events for this member's
// participant take the member's one way out. When its session ends (the
// room ended, a newer session replaced it, a kick), the relay it sources
// stops first, so that its relay.state reaches the client before the
// close.
//
// Here too the 1.1 rules of who is told what: track.muted reaches 1.1
// sessions only (a 1.0 one sees the media stall, 1.1 §11), and the
// publisher only when an admin muted its track (its own call has its
// result); a 1.1 session given a track is told track.stream "paused"
// right after when a per-track cause holds (streams.go).
func (m *Member) Notify(ev sfu.Event) {
	switch e := ev.(type) {
	case sfu.SessionEnded:
		if p := m.part.Load(); p != nil {
			m.r.relays.SourceGone(p)
		}
	case sfu.TrackMuted:
		if !m.v11 || (e.By == MutedByPublisher && m.publishes(e.Track.ID)) {
			return
		}
	case sfu.TrackPublished:
		m.out().Notify(ev)
		if m.v11 {
			m.r.streams.got(m, e.Track.ID)
		}
		return
	case sfu.TrackUnpublished:
		if m.v11 {
			m.r.streams.dropped(m, e.Track.ID)
		}
	case sfu.TrackLayer, sfu.TrackUpdated, sfu.PublisherLayers:
		if !m.v11 {
			return // 1.1's notifications
		}
	case sfu.TrackBandwidth:
		if m.v11 {
			m.bandwidth(e)
		}
		return
	}
	m.out().Notify(ev)
}

// bandwidth feeds a bandwidth pause of one of the member's tracks, or
// the first packet after one, to the track.stream rule.
func (m *Member) bandwidth(e sfu.TrackBandwidth) {
	if e.Paused {
		m.r.streams.subscriberCause(m, e.TrackID, CauseBandwidth, true)
		return
	}
	if m.r.streams.subscriberCause(m, e.TrackID, CauseBandwidth, false) {
		m.r.streams.memberPacket(m, e.TrackID)
	}
}

// publishes reports whether track id is one of the member's own.
func (m *Member) publishes(id string) bool {
	p := m.part.Load()
	if p == nil {
		return false
	}
	for _, t := range p.PublishedTracks() {
		if t.ID() == id {
			return true
		}
	}
	return false
}

// deliver sends a rooms event to the member's client.
func (m *Member) deliver(ev Event) { m.out().Notify(ev) }

// inRoom refuses room methods to a user session.
func (m *Member) inRoom() error {
	if m.p == nil {
		return errorf(ErrForbidden, "forbidden: a user session may only use invitation methods")
	}
	return nil
}

// hostOnly refuses anyone but the room's host.
func (m *Member) hostOnly() error {
	if m.p == nil || m.p.Role() != sfu.RoleHost {
		return errorf(ErrForbidden, "forbidden: only the room's host may do this")
	}
	return nil
}

// Offer answers the member's publisher offer (sdp already checked by the
// transport); deliver gets the answer before any server candidate is
// sent. Only the host, a co-host and a relay may publish (ErrForbidden).
func (m *Member) Offer(sdp string, deliver func(answer string)) error {
	if err := m.inRoom(); err != nil {
		return err
	}
	if m.r.cfg.Cluster != nil && m.p.Role() == sfu.RoleViewer && m.r.isCohost(m.room, m.identity) {
		// An invitation accepted through another node: its note on the
		// cluster channel may not be here yet, or was lost (pub/sub is
		// at most once). The shared store decides, as on one node.
		m.p.SetRole(sfu.RoleCohost)
	}
	return fromSFU(m.p.HandleOffer(sdp, deliver))
}

// Trickle adds the client's ICE candidate for one of its PCs; end (the
// null candidate) changes nothing.
func (m *Member) Trickle(t sfu.Target, c webrtc.ICECandidateInit, end bool) error {
	if err := m.inRoom(); err != nil {
		return err
	}
	if end {
		return nil
	}
	return fromSFU(m.p.AddICECandidate(t, c))
}

// SubscriberAnswer takes the client's answer to the server's subscriber
// offer.
func (m *Member) SubscriberAnswer(sdp string) error {
	if m.p == nil {
		return errorf(ErrConflict, "no subscriber offer is out")
	}
	return fromSFU(m.p.SetSubscriberAnswer(sdp))
}

// SubscriberOfferFailed tells the sfu the client refused the subscriber
// offer.
func (m *Member) SubscriberOfferFailed() {
	if m.p != nil {
		m.p.SubscriberOfferFailed()
	}
}

// Leave checks that the member may leave (a user session may not) and
// returns what does it, to run once the transport has answered: the relay
// stops, the tracks are unpublished, the others get participant.left (a
// host's room goes waiting_reconnect).
func (m *Member) Leave() (then func(), err error) {
	if err := m.inRoom(); err != nil {
		return nil, err
	}
	return m.leave, nil
}

func (m *Member) leave() {
	m.r.relays.SourceGone(m.p)
	m.p.Leave()
}

// StopRoom checks that the member is the host and returns what ends the
// room (host_left), to run once the transport has answered.
func (m *Member) StopRoom() (then func(), err error) {
	if err := m.inRoom(); err != nil {
		return nil, err
	}
	if m.p.Role() != sfu.RoleHost {
		return nil, errorf(ErrForbidden, "forbidden: only the host may stop the room")
	}
	room := m.p.Room()
	return func() { room.End(sfu.EndHostLeft) }, nil
}

// Close ends the member when its session ends (the client went): as
// Leave for a room member, and it hears nothing more of invitations.
func (m *Member) Close() {
	m.r.register(m, false)
	m.r.streams.memberGone(m)
	if m.p != nil {
		m.leave()
		m.r.bind(m.p, nil)
	}
}

// register adds or removes a member from its identity's.
func (r *Rooms) register(m *Member, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.byIdentity[m.identity]
	if !on {
		delete(set, m)
		if len(set) == 0 {
			delete(r.byIdentity, m.identity)
		}
		return
	}
	if set == nil {
		set = map[*Member]bool{}
		r.byIdentity[m.identity] = set
	}
	set[m] = true
}

// bind records (m) or forgets (nil) the member of a participant.
func (r *Rooms) bind(p *sfu.Participant, m *Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m == nil {
		delete(r.byPart, p)
		return
	}
	r.byPart[p] = m
}

// memberOf returns the member of a participant (nil: none, a relay's).
func (r *Rooms) memberOf(p *sfu.Participant) *Member {
	if p == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byPart[p]
}

// membersOf returns every member of the identities.
func (r *Rooms) membersOf(identities ...string) []*Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Member
	seen := map[*Member]bool{}
	for _, id := range identities {
		for m := range r.byIdentity[id] {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// roomMembers returns the members in room (its participants with a
// session), except one.
func (r *Rooms) roomMembers(room *sfu.Room, except *sfu.Participant) []*Member {
	var out []*Member
	for _, p := range room.Members() {
		if p == except {
			continue
		}
		if m := r.memberOf(p); m != nil {
			out = append(out, m)
		}
	}
	return out
}
