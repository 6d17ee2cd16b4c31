package rooms

// Mute (PROTOCOL.md 1.1 §7): a publisher mutes or unmutes its own track
// (track.mute), an operator mutes a participant's tracks (the HTTP API).
// While a track is muted the sfu forwards nothing of it, to relays and the
// recorder neither; unmuting asks for a keyframe.
//
// Who is told: a change is one sfu.TrackMuted posted to everyone in the
// track's room, and to everyone in each room its relayed copies are in
// (with the copy's id), in each room's order with its other changes. A
// copy in a room of another node is told over its relay's link: there
// relayCopyMuted mutes the copy and tells its room.
// Member.Notify then keeps it from 1.0 sessions and from the publisher
// when it muted the track itself (it has its result). A call that
// changes nothing tells nothing.

import (
	"github.com/relaysfu/relayd/sfu"
)

// Who muted a track: track.muted's by.
const (
	MutedByPublisher = "publisher"
	MutedByAdmin     = "admin"
)

// TrackMute mutes (or unmutes) track id, one of the member's own, and
// returns its track object. An unknown track is ErrNotFound, another's
// ErrForbidden, a user session's call ErrForbidden.
func (m *Member) TrackMute(id string, muted bool) (sfu.TrackInfo, error) {
	if err := m.inRoom(); err != nil {
		return sfu.TrackInfo{}, err
	}
	room := m.p.Room()
	owner, up := findTrack(room, id)
	switch {
	case up == nil:
		return sfu.TrackInfo{}, errorf(ErrNotFound, "track %s not found", id)
	case owner != m.p:
		return sfu.TrackInfo{}, errorf(ErrForbidden, "forbidden: track %s is not yours", id)
	}
	m.r.setMuted(room, up, muted, MutedByPublisher)
	return m.p.TrackInfo(up), nil
}

// findTrack returns track id of room and its publisher (nil, nil: none).
func findTrack(room *sfu.Room, id string) (*sfu.Participant, *sfu.UpTrack) {
	for _, p := range room.Members() {
		for _, t := range p.PublishedTracks() {
			if t.ID() == id {
				return p, t
			}
		}
	}
	return nil, nil
}

// setMuted mutes or unmutes up, a track published in room, by who, and
// tells of the change (see the top of this file); it reports whether
// anything changed.
func (r *Rooms) setMuted(room *sfu.Room, up *sfu.UpTrack, muted bool, by string) bool {
	r.muteMu.Lock()
	defer r.muteMu.Unlock()
	if !up.SetMuted(muted) {
		return false
	}
	r.log.Info("track muted", "room", room.Name(), "track", up.ID(), "participant", up.Participant(), "muted", muted, "by", by)
	room.TellMuted(up, by)
	for _, c := range r.copiesOf(up) {
		c.room.TellMuted(c.up, by)
	}
	r.relays.TrackMuted(up, muted, by)
	return true
}

// relayCopyMuted is the relay links' OnMuted: the source of up, relay
// participant p's copy here, was muted or unmuted on another node. The
// copy follows (its track object says so; it forwards nothing until a
// keyframe after an unmute) and its room is told.
func (r *Rooms) relayCopyMuted(p *sfu.Participant, up *sfu.UpTrack, muted bool, by string) {
	r.muteMu.Lock()
	defer r.muteMu.Unlock()
	if up.SetMuted(muted) {
		p.Room().TellMuted(up, by)
	}
}

// relayedCopy is a relayed copy of a track, in a destination room.
type relayedCopy struct {
	room *sfu.Room
	up   *sfu.UpTrack
}

// copiesOf returns the relayed copies of up published on this node.
func (r *Rooms) copiesOf(up *sfu.UpTrack) []relayedCopy {
	var out []relayedCopy
	for _, room := range r.sfu.Rooms() {
		for _, p := range room.Members() {
			if p.Role() != sfu.RoleRelay {
				continue
			}
			for _, t := range p.PublishedTracks() {
				if t.Origin() == up {
					out = append(out, relayedCopy{room, t})
				}
			}
		}
	}
	return out
}

// MuteParticipant mutes tracks of identity's direct participant in room
// for the HTTP API (by "admin"): track trackID, or every track of kind
// ("audio" or "video"), or, with neither, all of them; it returns the
// tracks it names, now muted. A bad kind is ErrInvalid; no such room, a
// trackID that is not identity's, or no track to mute, ErrNotFound. The
// publisher is told too, and may unmute itself (as in LiveKit). A relay
// participant's tracks are muted at their source (mute the source
// participant in its room): its copies follow.
func (r *Rooms) MuteParticipant(name, identity, trackID, kind string) ([]sfu.TrackInfo, error) {
	if kind != "" && kind != "audio" && kind != "video" {
		return nil, errorf(ErrInvalid, `invalid params: kind must be "audio" or "video"`)
	}
	room := r.Room(name)
	if room == nil {
		return nil, errorf(ErrNotFound, "room %s not found", name)
	}
	p := room.Participant(identity)
	var ups []*sfu.UpTrack
	if p != nil {
		for _, t := range p.PublishedTracks() {
			if (trackID == "" || t.ID() == trackID) && (kind == "" || t.Kind().String() == kind) {
				ups = append(ups, t)
			}
		}
	}
	if len(ups) == 0 {
		switch {
		case trackID != "":
			return nil, errorf(ErrNotFound, "%s has no track %s in room %s", identity, trackID, name)
		case kind != "":
			return nil, errorf(ErrNotFound, "%s has no %s track in room %s", identity, kind, name)
		}
		return nil, errorf(ErrNotFound, "%s has no track in room %s", identity, name)
	}
	out := make([]sfu.TrackInfo, 0, len(ups))
	for _, up := range ups {
		r.setMuted(room, up, true, MutedByAdmin)
		out = append(out, p.TrackInfo(up))
	}
	return out, nil
}
