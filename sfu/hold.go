package sfu

import "time"

// A held host (PROTOCOL.md 1.1 §5): its session lost its socket and waits
// for a resume. It stays a participant (its tracks, relays and stage seat
// stay), but its room shows waiting_reconnect until it resumes, then
// returns to the status it had. The rooms layer decides when (rooms/hold.go);
// the room only keeps the status.

// SetHostHeld puts the room in waiting_reconnect while its host p is held
// (held true), and back to the status it had before once p resumes (held
// false); every participant is told room.updated. It does nothing for a
// participant that is not the room's host in it, in an ended room, or when
// nothing changes. It reports whether the status changed.
func (r *Room) SetHostHeld(p *Participant, held bool) bool {
	r.mu.Lock()
	if r.status.Ended() || p.gone || p.role != RoleHost || r.participants[p.key()] != p {
		r.mu.Unlock()
		return false
	}
	changed := false
	switch {
	case held && r.status != StatusWaitingReconnect:
		r.heldPrior = r.status
		r.setStatusLocked(StatusWaitingReconnect)
		changed = true
	case !held && r.status == StatusWaitingReconnect && r.heldPrior != "":
		r.setStatusLocked(r.heldPrior)
		r.heldPrior = ""
		changed = true
	}
	r.mu.Unlock()
	if changed {
		r.statusChanged()
	}
	return changed
}

// StateOf returns what p would learn joining now (JoinState): itself,
// the room, the others and every track but its own; for a resumed
// session's result. ErrRoomEnded when p is no longer in the room.
func (r *Room) StateOf(p *Participant) (JoinState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.Ended() || p.gone || r.participants[p.key()] != p {
		return JoinState{}, ErrRoomEnded
	}
	st := JoinState{Participant: p.infoLocked(), Room: r.infoLocked(false)}
	for _, q := range r.sortedLocked() {
		if q == p {
			continue
		}
		st.Participants = append(st.Participants, q.infoLocked())
		for _, t := range q.published {
			st.Tracks = append(st.Tracks, q.trackInfo(t))
		}
	}
	return st, nil
}

// ReconnectGrace is how long a room waits for its vanished host, and a
// held session for its resume.
func (s *SFU) ReconnectGrace() time.Duration { return s.cfg.ReconnectGrace }
