package sfu

import (
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Room is one broadcast: a host identity, a status and its participants.
//
// Locking: mu guards the participant map, the status and every
// participant's role, published-track list and gone flag. A change's
// events are posted to the participants' mailboxes with mu held (posting
// never blocks and calls nothing), so every participant gets the room's
// changes in one order; they are delivered to the EventSinks with no lock
// held. PeerConnection work happens on each participant's op queue, asked
// for after mu is released. Lock order is Room.mu, then Participant.mu,
// never the other way; the observer is called with neither held.
type Room struct {
	sfu      *SFU
	name     string
	host     string
	title    string
	metadata string
	log      *slog.Logger

	mu           sync.Mutex
	status       RoomStatus
	createdAt    time.Time
	startedAt    *time.Time
	endedAt      *time.Time
	participants map[string]*Participant // by key(): identity, relays apart
	grace        *time.Timer             // ends the room while waiting_reconnect
	endReason    EndReason               // why it ended; set with status ended
	heldPrior    RoomStatus              // while its host is held: the status to return to (hold.go)
	// ended is closed when the End that ended the room has run its effects
	// (the observer's RoomStatusChanged, the participants told); nil until End.
	ended chan struct{}
	// The broadcast this Room is (broadcast.go): its id and when it began
	// (set before the Room is registered, then read-only), and whether it
	// records.
	broadcastID string
	broadcastAt time.Time
	recording   bool
	// layerNotes: the track.updated state of the simulcast tracks
	// published here (layernotes.go), guarded by mu.
	layerNotes map[*UpTrack]*layersNote
}

// EndReason says why a room ended (PROTOCOL.md 1.1 "2. endReason"). This is
// the one place its values are defined.
type EndReason string

// End reasons.
const (
	EndHostLeft       EndReason = "host_left"        // room.stop by the host
	EndHostTimeout    EndReason = "host_timeout"     // the host did not come back within the reconnect grace
	EndStoppedByAdmin EndReason = "stopped_by_admin" // POST /v1/rooms/{room}/stop
	EndServerShutdown EndReason = "server_shutdown"  // graceful stop; a room found live at restart
	EndNodeLost       EndReason = "node_lost"        // cluster: the room's node died or lost its registration
)

// Valid reports whether e is one of the end reasons above.
func (e EndReason) Valid() bool {
	switch e {
	case EndHostLeft, EndHostTimeout, EndStoppedByAdmin, EndServerShutdown, EndNodeLost:
		return true
	}
	return false
}

func newRoom(s *SFU, name, host, title, metadata string) *Room {
	r := &Room{
		sfu: s, name: name, host: host, title: title, metadata: metadata,
		log:          s.log.With("room", name),
		status:       StatusIdle,
		createdAt:    time.Now().UTC(),
		participants: map[string]*Participant{},
		broadcastID:  NewBroadcastID(),
	}
	r.broadcastAt = r.createdAt
	s.cfg.Metrics.Rooms.WithLabelValues(string(StatusIdle)).Inc()
	return r
}

// Name returns the room's name.
func (r *Room) Name() string { return r.name }

// Host returns the host's identity.
func (r *Room) Host() string { return r.host }

// Status returns the room's status.
func (r *Room) Status() RoomStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Info returns the room object; withParticipants lists them.
func (r *Room) Info(withParticipants bool) RoomInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.infoLocked(withParticipants)
}

func (r *Room) infoLocked(withParticipants bool) RoomInfo {
	info := RoomInfo{
		Name: r.name, Host: r.host, Status: r.status, Title: r.title,
		CreatedAt: r.createdAt, StartedAt: r.startedAt, EndedAt: r.endedAt,
		NumParticipants: len(r.participants),
		BroadcastID:     r.broadcastID, BroadcastCreatedAt: r.broadcastAt, Recording: r.recording && !r.status.Ended(),
	}
	if r.status.Ended() {
		info.EndReason = r.endReason
	}
	if r.metadata != "" {
		info.Metadata = json.RawMessage(r.metadata)
	}
	for _, p := range r.sortedLocked() {
		if p.role == RoleViewer {
			info.Viewers++
		}
		if withParticipants {
			info.Participants = append(info.Participants, p.infoLocked())
		}
	}
	return info
}

func (r *Room) sortedLocked() []*Participant {
	ps := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].key() < ps[j].key() })
	return ps
}

// MayPublish is the one place that decides whether a participant may send
// media into this room: the host; an accepted co-host (that role only ever
// comes from an accepted invitation); a relay whose identity is this room's
// host or holds an accepted invitation here (Config.IsCohost).
func (r *Room) MayPublish(p *Participant) bool {
	relayOK := r.relayMayPublish(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mayPublishLocked(p, relayOK)
}

// relayMayPublish is the gate's answer for a relay participant (true for
// others), asked before r.mu is taken: it calls Config.IsCohost, and no
// callback is called under the room's lock. A relay's role never changes,
// so the answer holds under the lock.
func (r *Room) relayMayPublish(p *Participant) bool {
	return !p.relay || r.mayPublishAs(p.identity, RoleRelay)
}

// mayPublishLocked is MayPublish; the caller holds r.mu and asked
// relayMayPublish before taking it.
func (r *Room) mayPublishLocked(p *Participant, relayOK bool) bool {
	if r.status.Ended() || p.gone {
		return false
	}
	if p.relay {
		return relayOK
	}
	return r.mayPublishAs(p.identity, p.role) // no callback for these roles
}

// MayPublishAs answers MayPublish for an identity about to join with role:
// the relay asks it before joining a destination.
func (r *Room) MayPublishAs(identity string, role Role) bool {
	r.mu.Lock()
	ended := r.status.Ended()
	r.mu.Unlock()
	return !ended && r.mayPublishAs(identity, role)
}

// mayPublishAs is the gate by role; for RoleRelay it calls Config.IsCohost,
// so it is never called with r.mu held for that role.
func (r *Room) mayPublishAs(identity string, role Role) bool {
	switch role {
	case RoleHost:
		return identity == r.host
	case RoleCohost:
		return true
	case RoleRelay:
		return identity == r.host || (r.sfu.cfg.IsCohost != nil && r.sfu.cfg.IsCohost(r.name, identity))
	}
	return false
}

// JoinState is what a participant learns when it joins.
type JoinState struct {
	Participant  ParticipantInfo
	Room         RoomInfo
	Participants []ParticipantInfo // the others
	Tracks       []TrackInfo       // every published track
}

// Join adds a participant. A direct participant whose identity is already
// in the room replaces the older session, which is told SessionEnded. A
// participant joining a room with tracks is subscribed to them before Join
// returns: its first subscriber offer is already in its mailbox.
func (r *Room) Join(pp ParticipantParams) (*Participant, JoinState, error) {
	r.mu.Lock()
	if r.status.Ended() {
		r.mu.Unlock()
		return nil, JoinState{}, ErrRoomEnded
	}
	k := key(pp.Identity, pp.Role)
	old := r.participants[k]
	r.mu.Unlock()
	if old != nil {
		old.replaced()
	}

	p := newParticipant(r, pp)
	r.mu.Lock()
	if r.status.Ended() {
		r.mu.Unlock()
		p.close()
		return nil, JoinState{}, ErrRoomEnded
	}
	if other := r.participants[k]; other != nil {
		// A third session raced us in; the newest wins again.
		r.mu.Unlock()
		other.replaced()
		r.mu.Lock()
		if r.status.Ended() {
			r.mu.Unlock()
			p.close()
			return nil, JoinState{}, ErrRoomEnded
		}
	}
	r.participants[p.key()] = p
	if p.role == RoleHost && r.grace != nil {
		r.grace.Stop() // the host is back; "live" again when its track arrives
		r.grace = nil
	}
	if p.role == RoleHost {
		r.heldPrior = "" // a held host replaced: its status is not returned to
	}
	st := JoinState{Participant: p.infoLocked(), Room: r.infoLocked(false)}
	var ups []*UpTrack
	for _, q := range r.sortedLocked() {
		if q == p {
			continue
		}
		st.Participants = append(st.Participants, q.infoLocked())
		for _, t := range q.published {
			st.Tracks = append(st.Tracks, q.trackInfo(t))
			ups = append(ups, t)
		}
		q.inbox.post(ParticipantJoined{Participant: p.infoLocked()})
	}
	r.sfu.cfg.Metrics.Participants.WithLabelValues(string(p.role)).Inc()
	joined := p.infoLocked()
	r.mu.Unlock()
	r.sfu.observe(ParticipantChanged{Room: r, Participant: p, Info: joined, Joined: true})

	if p.subscribes() && len(ups) > 0 {
		// Waited for: the first offer is in p's mailbox before the events
		// of whoever joins next, so a joiner into a busy room is not kept
		// from its media by its neighbours' participant.joined.
		p.subscribeNow(ups)
	}
	return p, st, nil
}

// publish announces an up track of p and subscribes everyone else to it.
// It returns false when p may no longer publish (the caller drops the
// track).
func (r *Room) publish(p *Participant, t *UpTrack) bool {
	relayOK := r.relayMayPublish(p)
	r.mu.Lock()
	if !r.mayPublishLocked(p, relayOK) {
		r.mu.Unlock()
		return false
	}
	p.published = append(p.published, t)
	info := p.trackInfo(t)
	r.watchLayersLocked(p, t, info)
	var subs []*Participant
	for _, q := range r.sortedLocked() {
		if q == p {
			continue
		}
		q.inbox.post(TrackPublished{Track: info})
		if q.subscribes() {
			subs = append(subs, q)
		}
	}
	changed := false
	if p.role == RoleHost && (r.status == StatusIdle || r.status == StatusWaitingReconnect) {
		if r.startedAt == nil {
			now := time.Now().UTC()
			r.startedAt = &now
		}
		r.setStatusLocked(StatusLive)
		changed = true
	}
	r.sfu.cfg.Metrics.Tracks.WithLabelValues(t.Kind().String()).Inc()
	r.mu.Unlock()
	if changed {
		r.statusChanged()
	}
	for _, q := range subs {
		q.subscribe([]*UpTrack{t})
	}
	r.sfu.observe(TrackChanged{Room: r, Participant: p, Track: t, Published: true})
	return true
}

// unpublish removes an ended up track of p from the room.
func (r *Room) unpublish(p *Participant, t *UpTrack) {
	r.mu.Lock()
	found := false
	for i, x := range p.published {
		if x == t {
			p.published = append(p.published[:i:i], p.published[i+1:]...)
			found = true
			break
		}
	}
	if !found {
		r.mu.Unlock()
		return
	}
	r.unwatchLayersLocked(t)
	info := p.trackInfo(t)
	var subs []*Participant
	for _, q := range r.sortedLocked() {
		if q == p {
			continue
		}
		q.inbox.post(TrackUnpublished{Track: info})
		subs = append(subs, q)
	}
	r.sfu.cfg.Metrics.Tracks.WithLabelValues(t.Kind().String()).Dec()
	r.mu.Unlock()
	for _, q := range subs {
		q.unsubscribe(t)
	}
	r.sfu.observe(TrackChanged{Room: r, Participant: p, Track: t, Published: false})
}

// remove takes p out of the room after its tracks are unpublished. A host
// that leaves puts the room in waiting_reconnect; it ends after the grace
// unless the host comes back (hostLeft false: replaced by a new session).
func (r *Room) remove(p *Participant, hostLeft bool) {
	r.mu.Lock()
	if r.participants[p.key()] != p {
		r.mu.Unlock()
		return
	}
	delete(r.participants, p.key())
	p.gone = true
	info := p.infoLocked()
	for _, q := range r.sortedLocked() {
		q.inbox.post(ParticipantLeft{Participant: info})
	}
	r.sfu.cfg.Metrics.Participants.WithLabelValues(string(p.role)).Dec()
	changed := false
	if hostLeft && p.role == RoleHost && !r.status.Ended() {
		r.setStatusLocked(StatusWaitingReconnect)
		if r.grace != nil {
			r.grace.Stop()
		}
		r.grace = time.AfterFunc(r.sfu.cfg.ReconnectGrace, r.graceExpired)
		changed = true
	}
	r.mu.Unlock()
	r.sfu.observe(ParticipantChanged{Room: r, Participant: p, Info: info, Joined: false})
	if changed {
		r.statusChanged()
	}
}

func (r *Room) graceExpired() {
	r.mu.Lock()
	waiting := r.status == StatusWaitingReconnect && r.participants[key(r.host, RoleHost)] == nil
	r.mu.Unlock()
	if waiting {
		r.End(EndHostTimeout)
	}
}

// End ends the room for everyone, in this order: status ended (with
// reason); the observer's RoomStatusChanged (which stores the room, cancels its
// invitations, stops relays, emits its webhook); every participant told
// RoomUpdated "ended"; then each one's PCs closed and its session told
// SessionEnded (a 1000 close). So room.updated is the last thing a
// participant hears of the room.
//
// It returns when all of that is done, the events delivered to the
// participants' EventSinks included, also when another goroutine's End got
// there first (the grace timer racing a shutdown): whoever calls End may
// rely on the room's effects having run. So an EventSink's Notify must not
// end its own room.
func (r *Room) End(reason EndReason) {
	r.mu.Lock()
	if r.status.Ended() {
		done := r.ended
		r.mu.Unlock()
		if done != nil {
			<-done
		}
		return
	}
	done := make(chan struct{})
	r.ended = done
	defer close(done)
	if r.grace != nil {
		r.grace.Stop()
		r.grace = nil
	}
	now := time.Now().UTC()
	r.endedAt, r.endReason = &now, reason
	ps := r.sortedLocked()
	for _, p := range ps {
		p.gone = true
		r.sfu.cfg.Metrics.Participants.WithLabelValues(string(p.role)).Dec()
	}
	// Participants are told below, after the hook: emptied first, the
	// status change notifies nobody here.
	r.participants = map[string]*Participant{}
	r.setStatusLocked(StatusEnded)
	info := r.infoLocked(false)
	r.mu.Unlock()
	r.log.Info("room ended", "reason", reason)
	r.statusChanged()
	for _, p := range ps {
		p.inbox.post(RoomUpdated{Room: info})
	}
	for _, p := range ps {
		p.close()
		p.inbox.post(SessionEnded{Code: 1000, Reason: "room ended"})
	}
	for _, p := range ps {
		p.inbox.flush()
	}
}

// MarkRecorded moves an ended room to recorded: its recordings are final.
func (r *Room) MarkRecorded() {
	r.mu.Lock()
	if r.status != StatusEnded {
		r.mu.Unlock()
		return
	}
	r.setStatusLocked(StatusRecorded)
	r.mu.Unlock()
	r.statusChanged()
}

// setStatusLocked changes the status, tells every participant and keeps
// the rooms gauge (ended rooms are not counted).
func (r *Room) setStatusLocked(s RoomStatus) {
	if s == r.status {
		return
	}
	g := r.sfu.cfg.Metrics.Rooms
	if !r.status.Ended() {
		g.WithLabelValues(string(r.status)).Dec()
	}
	if !s.Ended() {
		g.WithLabelValues(string(s)).Inc()
	}
	r.status = s
	info := r.infoLocked(false)
	for _, p := range r.participants {
		p.inbox.post(RoomUpdated{Room: info})
	}
}

// statusChanged tells the observer; call it without r.mu held.
func (r *Room) statusChanged() {
	r.sfu.observe(RoomStatusChanged{Room: r, Info: r.Info(false)})
}

// Participant returns the direct (non-relay) participant with identity, or
// nil.
func (r *Room) Participant(identity string) *Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.participants[key(identity, RoleViewer)]
}

// Members returns the room's participants.
func (r *Room) Members() []*Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sortedLocked()
}

// Participants returns the participants' objects.
func (r *Room) Participants() []ParticipantInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ParticipantInfo
	for _, p := range r.sortedLocked() {
		out = append(out, p.infoLocked())
	}
	return out
}
