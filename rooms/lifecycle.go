package rooms

// A room's lifecycle (PROTOCOL.md "Room lifecycle"): created by its
// host's join or by POST /v1/rooms, restored from the store after a
// restart (or, in cluster mode, by the node it is placed on), ended with a
// reason, and started again as its next broadcast (broadcasts.go). The
// sfu flips the status (sfu.Room.End); everything that follows from an
// end is here, in roomEnded, run once per end from the sfu's
// RoomStatusChanged; a dead node's rooms, which no sfu holds any more, are
// ended in the store by EndRoomsOfNode with the same effects that still
// apply.

import (
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/sfu"
)

// RoomChanged implements sfu.Observer: the one place the sfu's changes
// turn into their effects. It runs in the goroutine that made the change,
// without sfu locks held.
func (r *Rooms) RoomChanged(c sfu.RoomChange) {
	switch c := c.(type) {
	case sfu.RoomStatusChanged:
		r.statusChanged(c.Room, c.Info)
	case sfu.ParticipantChanged:
		typ := "participant.left"
		if c.Joined {
			typ = "participant.joined"
		}
		r.emit(typ, c.Room.Name(), withBroadcast(map[string]any{"identity": c.Info.Identity, "role": c.Info.Role}, c.Room.BroadcastID()))
		if !c.Joined && c.Info.Role == sfu.RoleRelay {
			r.streams.participantGone(c.Participant)
		}
	case sfu.TrackChanged:
		r.relays.TrackChanged(c.Participant, c.Track, c.Published)
		r.rec.onTrack(c.Room, c.Participant, c.Track, c.Published)
		r.trackChanged(c)
	}
}

// trackChanged keeps the 1.1 sessions' views of a track: a 1.1 publisher
// is told of its own tracks (track.published and track.unpublished: an
// extension, so that it learns the ids track.mute takes; 1.0 sessions
// never were); a track that a paused relay publishes holds relay_paused
// from the start. It may run in a relay's step (a relay publishing its
// copies): it calls nothing of the relays.
func (r *Rooms) trackChanged(c sfu.TrackChanged) {
	id := c.Track.ID()
	if !c.Published {
		r.streams.trackGone(id)
	} else if r.streams.relayPaused(c.Participant) {
		r.streams.trackCause(id, CauseRelayPaused, true)
	}
	m := r.memberOf(c.Participant)
	if m == nil || !m.v11 {
		return
	}
	info := c.Participant.TrackInfo(c.Track)
	switch {
	case c.Published:
		m.deliver(sfu.TrackPublished{Track: info})
	case c.Room.Participant(m.identity) == c.Participant:
		// Still in the room: not after an end's room.updated "ended",
		// which is the last thing a session hears of its room.
		m.deliver(sfu.TrackUnpublished{Track: info})
	}
}

// statusChanged stores the new status of room (a broadcast); the first
// time a broadcast goes live it tells room.started (once per broadcast:
// the host coming back after waiting_reconnect tells nothing); when it
// ends, roomEnded.
func (r *Rooms) statusChanged(room *sfu.Room, info sfu.RoomInfo) {
	r.persist(room, info)
	switch info.Status {
	case sfu.StatusLive:
		r.mu.Lock()
		seen := r.started[info.BroadcastID]
		r.started[info.BroadcastID] = true
		r.mu.Unlock()
		if !seen {
			r.emit("room.started", info.Name, withBroadcast(map[string]any{"host": info.Host}, info.BroadcastID))
		}
	case sfu.StatusEnded:
		r.roomEnded(room, info)
	}
}

// roomEnded runs the effects of a room's end, in this order (sfu.Room.End
// runs it before telling the participants room.updated "ended", their
// last notification): the record is stored (by statusChanged); the relays
// its participants source stop; its cluster placement is released; its
// bans and chat order are forgotten; its pending invitations are cancelled
// and every co-host's stage ended (stored, told, published to the other
// nodes); room.ended goes to the webhooks; its recordings are finalized
// (in the background: the broadcast goes recorded once they are). The
// room's next broadcast cannot begin before this has run
// (sfu.NextBroadcast waits for it), so what is forgotten here by the
// room's name is this broadcast's.
func (r *Rooms) roomEnded(room *sfu.Room, info sfu.RoomInfo) {
	for _, p := range r.endedParticipants(info.Name) {
		r.relays.SourceGone(p)
	}
	r.release(info.Name)
	r.mu.Lock()
	delete(r.chats, info.Name)
	delete(r.started, info.BroadcastID)
	r.mu.Unlock()
	r.unban(info.Name)
	if _, err := r.inv.EndRoom(info.Name); err != nil {
		r.log.Error("ending the room's invitations", "room", info.Name, "err", err)
	}
	r.emitEnded(info.Name, info.BroadcastID, info.EndReason, false)
	if r.rec != nil {
		r.rec.roomEnded(room)
	}
}

// emitEnded tells the webhooks room.ended: {broadcastId, endReason}, and
// for a dead node's room ended by EndRoomsOfNode also reason, the name
// this event's field had before endReason (1.1: kept equal).
func (r *Rooms) emitEnded(room, broadcast string, reason sfu.EndReason, deadNode bool) {
	data := withBroadcast(map[string]any{"endReason": reason}, broadcast)
	if deadNode {
		data["reason"] = reason
	}
	r.emit("room.ended", room, data)
}

// endedParticipants returns the members' participants of the ended room
// name. (The rooms' statuses are read after r.mu is released: the sfu's
// publish gate takes the ban lock under its room lock, and no lock of
// rooms is held while calling into the sfu.)
func (r *Rooms) endedParticipants(name string) []*sfu.Participant {
	r.mu.Lock()
	var ps []*sfu.Participant
	for p := range r.byPart {
		if p.Room().Name() == name {
			ps = append(ps, p)
		}
	}
	r.mu.Unlock()
	out := ps[:0]
	for _, p := range ps {
		if p.Room().Status().Ended() {
			out = append(out, p)
		}
	}
	return out
}

// persist stores the state of room, a broadcast: the room record (and
// its current broadcast's with it) while room is the current broadcast of
// its name, the broadcast's record alone once the next one has begun (a
// late recording: PROTOCOL.md 1.1 §1a). nil room: the room record,
// whatever is registered. A failure is logged. lifeMu orders the check
// and the write against a next broadcast's first write.
//
// info is what the room was at its change, and two changes' persists may
// run in either order (a host going live in its goroutine while another
// ends the room): what is written is the room's state now, if it is
// still the same broadcast, so the last write is the newest state (a live
// record written after the end's would restore as server_shutdown).
func (r *Rooms) persist(room *sfu.Room, info sfu.RoomInfo) {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if room != nil {
		if cur := room.Info(false); cur.BroadcastID == info.BroadcastID {
			info = cur
		}
	}
	var err error
	if room != nil && r.sfu.Room(info.Name) != room {
		err = r.store.PutBroadcast(recordOf(info).Broadcast())
	} else {
		err = r.put(info)
	}
	if err != nil {
		r.log.Error("persisting the room", "room", info.Name, "broadcast", info.BroadcastID, "err", err)
	}
}

// put stores the room's record; one that has not ended keeps its bans.
func (r *Rooms) put(info sfu.RoomInfo) error {
	rec := recordOf(info)
	if !info.Status.Ended() {
		rec.Bans = r.banList(info.Name)
	}
	return r.store.PutRoom(rec)
}

func recordOf(info sfu.RoomInfo) invitations.RoomRecord {
	return invitations.RoomRecord{
		Name: info.Name, Host: info.Host, Title: info.Title, Metadata: info.Metadata,
		Status: string(info.Status), CreatedAt: info.CreatedAt, StartedAt: info.StartedAt, EndedAt: info.EndedAt,
		EndReason: string(info.EndReason), BroadcastID: info.BroadcastID, BroadcastCreatedAt: info.BroadcastCreatedAt,
	}
}

func roomInfoOf(rec invitations.RoomRecord) sfu.RoomInfo {
	return sfu.RoomInfo{
		Name: rec.Name, Host: rec.Host, Title: rec.Title, Metadata: rec.Metadata,
		Status: sfu.RoomStatus(rec.Status), CreatedAt: rec.CreatedAt, StartedAt: rec.StartedAt, EndedAt: rec.EndedAt,
		EndReason: sfu.EndReason(rec.EndReason), BroadcastID: rec.BroadcastID, BroadcastCreatedAt: rec.BroadcastCreatedAt,
	}
}

// restore registers the stored rooms after a restart: rooms that were
// live or waiting for their host are ended (server_shutdown, stored so,
// room.ended told, as a graceful stop would have); a record from before
// broadcasts gets its broadcast (stored). An ended room's invitations
// still open are closed as at any end (pending cancelled, accepted
// removed): a crash between a room's end and its invitations' leaves none
// open either. Idle rooms keep theirs.
func (r *Rooms) restore() error {
	recs, err := r.store.ListRooms()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		info := r.restored(rec, false).Info(false)
		if !info.Status.Ended() {
			continue
		}
		if !sfu.RoomStatus(rec.Status).Ended() {
			r.emitEnded(rec.Name, info.BroadcastID, info.EndReason, false)
		}
		if _, err := r.inv.EndRoom(rec.Name); err != nil {
			r.log.Error("ending a restored room's invitations", "room", rec.Name, "err", err)
		}
	}
	return nil
}

// restored registers the room of a stored record, stores it when changed
// or when restoring changed it (its end, its broadcast), applies the
// recording policy to one that has not ended, and returns it.
func (r *Rooms) restored(rec invitations.RoomRecord, changed bool) *sfu.Room {
	room := r.sfu.RestoreRoom(roomInfoOf(rec))
	info := room.Info(false)
	if !info.Status.Ended() {
		for _, identity := range rec.Bans {
			r.ban(rec.Name, identity)
		}
	}
	if changed || string(info.Status) != rec.Status || string(info.EndReason) != rec.EndReason || info.BroadcastID != rec.BroadcastID {
		r.persist(room, info)
	}
	if r.rec != nil && !info.Status.Ended() {
		r.rec.started(room, false)
	}
	return room
}

// HostOf names the host of the named room of this node (false: no such
// room here).
func (r *Rooms) HostOf(name string) (string, bool) {
	room := r.sfu.Room(name)
	if room == nil {
		return "", false
	}
	return room.Host(), true
}

// Room returns the named room of this node, or nil. In cluster mode a
// room this node now serves but has not seen (placed here after its node
// died, or created through another node's store write) is restored from
// the shared store first, so that an ended room stays ended; one the
// store has as not ended lost its node: it ends node_lost.
func (r *Rooms) Room(name string) *sfu.Room {
	if room := r.sfu.Room(name); room != nil || r.cfg.Cluster == nil {
		return room
	}
	rec, err := r.store.GetRoom(name)
	if err != nil {
		if !errors.Is(err, invitations.ErrNotFound) {
			r.log.Error("cluster: reading the room record", "room", name, "err", err)
		}
		return nil
	}
	info := roomInfoOf(rec)
	ended := info.Status.Ended()
	if !ended {
		rec = recordOf(lost(info, time.Now()))
	}
	room := r.restored(rec, !ended)
	r.release(name) // in case it was placed here for this request
	return room
}

// lost is a room as its node's loss leaves it: ended node_lost at now.
func lost(info sfu.RoomInfo, now time.Time) sfu.RoomInfo {
	now = now.UTC()
	info.Status, info.EndedAt, info.EndReason = sfu.StatusEnded, &now, sfu.EndNodeLost
	return info
}

// LostRoom is the room object to tell a client whose room's node died
// (the cluster bridge does): the stored room, ended node_lost now.
func (r *Rooms) LostRoom(name string) sfu.RoomInfo {
	info := sfu.RoomInfo{Name: name}
	if rec, err := r.store.GetRoom(name); err == nil {
		info = roomInfoOf(rec)
	}
	return lost(info, time.Now())
}

// release drops the placement of an ended room held by this node.
func (r *Rooms) release(name string) {
	if r.cfg.Cluster == nil {
		return
	}
	ctx, cancel := clusterCtx()
	defer cancel()
	if err := r.cfg.Cluster.Release(ctx, name); err != nil {
		r.log.Warn("cluster: releasing an ended room", "room", name, "err", err)
	}
}

// roomOpen answers whether a room exists and has not ended, as needed to
// answer one of its invitations, made in broadcast bc ("": before
// broadcasts): from this node's sfu, or in cluster mode, for a room of
// another live node, from the shared store. A room no live node holds has
// ended with its node (or was never joined). An invitation of a past
// broadcast is answered as if its room had ended: only the current
// broadcast's invitations make co-hosts (PROTOCOL.md 1.1 §1a).
func (r *Rooms) roomOpen(name, bc string) error {
	ended := errorf(ErrConflict, "room %s has ended", name)
	past := func(cur string) error {
		if bc != "" && cur != bc {
			return errorf(ErrConflict, "the broadcast of room %s this invitation was made in has ended", name)
		}
		return nil
	}
	if room := r.sfu.Room(name); room != nil || r.cfg.Cluster == nil {
		if room == nil || room.Status().Ended() {
			return ended
		}
		return past(room.BroadcastID())
	}
	ctx, cancel := clusterCtx()
	elsewhere, err := r.cfg.Cluster.Elsewhere(ctx, name)
	cancel()
	if err != nil {
		return err
	}
	if !elsewhere {
		return ended
	}
	rec, err := r.store.GetRoom(name)
	if err != nil || sfu.RoomStatus(rec.Status).Ended() {
		return ended
	}
	return past(rec.BroadcastID)
}

// isCohost reports whether identity holds an accepted invitation of room's
// current broadcast (or one made before broadcasts). An older broadcast's
// accepted invitations were removed when the next began; this holds even
// if that write failed.
func (r *Rooms) isCohost(room, identity string) bool {
	bc := ""
	if rm := r.sfu.Room(room); rm != nil {
		bc = rm.BroadcastID()
	}
	return r.inv.IsCohostIn(room, bc, identity)
}

// create makes a room for host: counted by the creation rate limit
// (ErrRateLimited, nothing created), stored, recording when the policy or
// record says so. An existing room that has not ended is returned with no
// error when exists is true (a host's join), as ErrConflict otherwise.
func (r *Rooms) create(name, host, title, metadata string, exists, record bool) (*sfu.Room, error) {
	if cur := r.sfu.Room(name); cur != nil && !cur.Status().Ended() {
		if exists {
			return cur, nil
		}
		return nil, errorf(ErrConflict, "room %s exists", name) // before the limit: nothing to count
	}
	if !r.creates.allow(host) {
		r.log.Debug("room creation rate limited", "identity", host)
		return nil, errorf(ErrRateLimited, "rate limited: %s may create at most %d rooms a minute", host, r.creates.perMinute)
	}
	room, err := r.sfu.CreateRoom(name, host, title, metadata)
	switch {
	case errors.Is(err, sfu.ErrRoomExists) && exists:
		return room, nil
	case errors.Is(err, sfu.ErrRoomExists):
		return nil, errorf(ErrConflict, "room %s exists", name)
	case err != nil:
		return nil, fromSFU(err)
	}
	r.persist(room, room.Info(false))
	r.startRecording(room, record)
	return room, nil
}

// startRecording applies the recording policy to a new broadcast.
func (r *Rooms) startRecording(room *sfu.Room, record bool) {
	if r.rec != nil {
		r.rec.started(room, record)
	}
}

// CreateRoom creates a room for the HTTP API (POST /v1/rooms), recorded
// when record is set: ErrConflict when one of that name has not ended,
// ErrRateLimited over the host's creation rate. An ended room of that name
// gets its next broadcast (PROTOCOL.md 1.1 §1a), whose host may be
// another.
func (r *Rooms) CreateRoom(name, host, title string, metadata json.RawMessage, record bool) (sfu.RoomInfo, error) {
	if cur := r.Room(name); cur != nil && cur.Status().Ended() {
		room, err := r.nextBroadcast(cur, host, title, string(metadata), record)
		if errors.Is(err, sfu.ErrRoomExists) {
			return sfu.RoomInfo{}, errorf(ErrConflict, "room %s exists", name)
		}
		if err != nil {
			return sfu.RoomInfo{}, err
		}
		return room.Info(false), nil
	}
	room, err := r.create(name, host, title, string(metadata), false, record)
	if err != nil {
		return sfu.RoomInfo{}, err
	}
	return room.Info(false), nil
}

// RoomInfo returns the room object, with its participants listed when
// withParticipants; ErrNotFound when there is no such room.
func (r *Rooms) RoomInfo(name string, withParticipants bool) (sfu.RoomInfo, error) {
	room := r.Room(name)
	if room == nil {
		return sfu.RoomInfo{}, errorf(ErrNotFound, "room %s not found", name)
	}
	return room.Info(withParticipants), nil
}

// List returns this node's rooms of a status (every status when ""),
// sorted by name.
func (r *Rooms) List(status sfu.RoomStatus) []sfu.RoomInfo {
	rooms := []sfu.RoomInfo{}
	for _, room := range r.sfu.Rooms() {
		info := room.Info(false)
		if status == "" || info.Status == status {
			rooms = append(rooms, info)
		}
	}
	return rooms
}

// Stored returns the stored rooms of a status (every status when "") that
// are not in skip, sorted by name: in cluster mode the rooms of dead nodes
// (the store has them as ended), which no live node lists.
func (r *Rooms) Stored(status sfu.RoomStatus, skip map[string]bool) ([]sfu.RoomInfo, error) {
	recs, err := r.store.ListRooms()
	if err != nil {
		return nil, err
	}
	var out []sfu.RoomInfo
	for _, rec := range recs {
		if skip[rec.Name] || (status != "" && sfu.RoomStatus(rec.Status) != status) {
			continue
		}
		out = append(out, roomInfoOf(rec))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// StopRoom ends a room for the HTTP API (stopped_by_admin) and returns it
// as ended; ErrNotFound when there is no such room.
func (r *Rooms) StopRoom(name string) (sfu.RoomInfo, error) {
	room := r.Room(name)
	if room == nil {
		return sfu.RoomInfo{}, errorf(ErrNotFound, "room %s not found", name)
	}
	room.End(sfu.EndStoppedByAdmin)
	return room.Info(false), nil
}

// EndAll ends every room of this node that has not ended, with reason
// (node_lost: the others ended this node's rooms in the store already, as
// they saw it die), and returns once their effects have run.
func (r *Rooms) EndAll(reason sfu.EndReason) {
	for _, room := range r.sfu.Rooms() {
		if !room.Status().Ended() {
			room.End(reason)
		}
	}
}

// EndRoomsOfNode ends a dead node's rooms in the store, as a restart ends
// them on one node: status ended (node_lost), pending invitations
// cancelled and stages ended, room.ended told. Exactly one surviving node
// calls it (the cluster's cleanup owner). A room never created (placed for
// a join that failed) has no record and is skipped.
func (r *Rooms) EndRoomsOfNode(node string, rooms []string) {
	now := time.Now()
	for _, name := range rooms {
		rec, err := r.store.GetRoom(name)
		if err != nil {
			continue
		}
		if info := roomInfoOf(rec); !info.Status.Ended() {
			if err := r.put(lost(info, now)); err != nil {
				r.log.Error("cluster: ending a dead node's room", "node", node, "room", name, "err", err)
				continue
			}
			r.emitEnded(name, info.BroadcastID, sfu.EndNodeLost, true)
		}
		if _, err := r.inv.EndRoom(name); err != nil {
			r.log.Error("cluster: ending a dead node's invitations", "node", node, "room", name, "err", err)
		}
	}
}
