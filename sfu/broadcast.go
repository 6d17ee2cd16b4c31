package sfu

// Broadcasts (PROTOCOL.md 1.1 §1a): a room's name is reused; each go-live
// is a broadcast with its own id. A Room is one broadcast: the next one is
// a new Room of the same name (NextBroadcast), which takes the old one's
// place in the registry. What a broadcast keeps besides (its record, its
// recordings, invitations and chat) is the rooms layer's.

import (
	"crypto/rand"
	"encoding/hex"
)

// NewBroadcastID returns a broadcast id: "BC_" and 16 hex digits (64
// random bits).
func NewBroadcastID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "BC_" + hex.EncodeToString(b[:])
}

// BroadcastID returns the id of the broadcast r is.
func (r *Room) BroadcastID() string { return r.broadcastID }

// restoreBroadcast gives a restored room its stored broadcast (a record
// from before broadcasts keeps the new id newRoom gave it).
func (r *Room) restoreBroadcast(info RoomInfo) {
	if info.BroadcastID != "" {
		r.broadcastID = info.BroadcastID
	}
	r.broadcastAt = info.BroadcastCreatedAt
	if r.broadcastAt.IsZero() {
		r.broadcastAt = r.createdAt
	}
}

// NextBroadcast replaces old, an ended room still registered under its
// name, by the room's next broadcast: a new Room of that name, idle, with
// a new broadcast id, old's createdAt kept, and host, title and metadata as
// given. It first waits until old's End has run its effects, so that none
// of them reaches the new broadcast. When old is no longer the room of its
// name, or has not ended (another caller started the next broadcast
// first), it returns the current room and ErrRoomExists (ErrRoomNotFound
// when there is none); ErrClosed once the SFU is closed.
func (s *SFU) NextBroadcast(old *Room, host, title, metadata string) (*Room, error) {
	old.mu.Lock()
	done := old.ended
	old.mu.Unlock()
	if done != nil {
		<-done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	cur := s.rooms[old.name]
	switch {
	case cur == nil:
		return nil, ErrRoomNotFound
	case cur != old || !old.Status().Ended():
		return cur, ErrRoomExists
	}
	r := newRoom(s, old.name, host, title, metadata)
	r.createdAt = old.createdAt // the room's; the broadcast's is broadcastAt
	s.rooms[old.name] = r
	return r, nil
}

// SetRecording says whether the room's broadcast records (the room
// object's recording) and tells every participant room.updated when that
// changes. It reports whether it changed; an ended room records nothing
// and does not change.
func (r *Room) SetRecording(on bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recording == on || r.status.Ended() {
		return false
	}
	r.recording = on
	info := r.infoLocked(false)
	for _, p := range r.participants {
		p.inbox.post(RoomUpdated{Room: info})
	}
	return true
}
