package rooms

// What operators do to participants over the HTTP API (PROTOCOL.md 1.1
// §7): list, kick, mute (mute.go).

import "github.com/relaysfu/relayd/sfu"

// adminKickedReason closes the session of a participant an operator
// kicked (code 4003, as the host's kick).
const adminKickedReason = "kicked by an operator"

// KickParticipant takes identity out of room as participant.kick does
// (kick), for the HTTP API: the host too (its session closes with 4003,
// the room goes waiting_reconnect; with ban the room ends
// stopped_by_admin). No such room, or identity not in it without ban:
// ErrNotFound; an ended room: ErrConflict. (A session held for resume,
// once sessions are, ends too: it is the participant that goes.)
func (r *Rooms) KickParticipant(name, identity string, ban bool) error {
	room := r.Room(name)
	if room == nil {
		return errorf(ErrNotFound, "room %s not found", name)
	}
	if room.Status().Ended() {
		return errorf(ErrConflict, "room %s has ended", name)
	}
	return r.kick(room, identity, ban, adminKickedReason)
}

// Participants returns the participant objects of room (relays included,
// role relay), sorted by identity; ErrNotFound when there is no such room.
func (r *Rooms) Participants(name string) ([]sfu.ParticipantInfo, error) {
	room := r.Room(name)
	if room == nil {
		return nil, errorf(ErrNotFound, "room %s not found", name)
	}
	ps := room.Participants()
	if ps == nil {
		ps = []sfu.ParticipantInfo{}
	}
	return ps, nil
}
