package rooms

// Broadcasts (PROTOCOL.md 1.1 §1a): a room's name is reused. Each go-live
// is a broadcast with its own id; status, start, end and endReason,
// participants, bans, invitations and the RPC chat belong to the room's
// current broadcast, and past broadcasts stay readable over HTTP (their
// record, recordings, invitations and chat).
//
// A broadcast is an sfu.Room; the next one replaces an ended one of the
// same name (sfu.NextBroadcast) when a 1.1 host joins fresh
// (startsBroadcast) or POST /v1/rooms names it. Each broadcast's record is
// stored with the room's (persist); a late recording marks only its own
// broadcast recorded.

import (
	"errors"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/sfu"
)

// startsBroadcast decides whether a join into a room of status status
// starts the room's next broadcast: a host's (host), in a 1.1 session
// (v11), not a resume attempt (resume), into a room that has ended
// (ended or recorded). Anyone else joining an ended room gets 4009: 1.0
// hosts (so a v1 client that rejoins by itself never restarts a show that
// timed out), viewers, and resumes.
func startsBroadcast(status sfu.RoomStatus, host, v11, resume bool) bool {
	return status.Ended() && host && v11 && !resume
}

// nextBroadcast starts the next broadcast of old's room (ended), for host,
// with title and metadata: counted by the room creation rate limit, stored,
// recording as the policy or record says. Older broadcasts' invitations
// still pending are cancelled and still accepted removed (each told
// invitation.updated). When another caller started it first, it returns
// that broadcast and sfu.ErrRoomExists.
func (r *Rooms) nextBroadcast(old *sfu.Room, host, title, metadata string, record bool) (*sfu.Room, error) {
	if !r.creates.allow(host) {
		r.log.Debug("broadcast creation rate limited", "identity", host, "room", old.Name())
		return nil, errorf(ErrRateLimited, "rate limited: %s may create at most %d rooms a minute", host, r.creates.perMinute)
	}
	room, err := r.sfu.NextBroadcast(old, host, title, metadata)
	if errors.Is(err, sfu.ErrRoomExists) {
		return room, err
	}
	if err != nil {
		return nil, fromSFU(err)
	}
	info := room.Info(false)
	r.persist(room, info)
	r.unban(info.Name) // a kick that raced the end of the last one
	if _, err := r.inv.EndOlder(info.Name, info.BroadcastID); err != nil {
		r.log.Error("ending the older broadcasts' invitations", "room", info.Name, "err", err)
	}
	r.startRecording(room, record)
	r.log.Info("next broadcast", "room", info.Name, "broadcast", info.BroadcastID, "previous", old.BroadcastID(), "host", host)
	return room, nil
}

// Broadcasts returns the records of a room's broadcasts, oldest first
// (GET /v1/rooms/{room}/broadcasts); ErrNotFound without the room.
func (r *Rooms) Broadcasts(room string) ([]invitations.BroadcastRecord, error) {
	if r.Room(room) == nil {
		return nil, errorf(ErrNotFound, "room %s not found", room)
	}
	return r.store.ListBroadcasts(room)
}

// checkBroadcast refuses (ErrNotFound) a broadcast id room does not have;
// "" (none named) passes.
func (r *Rooms) checkBroadcast(room, bc string) error {
	if bc == "" {
		return nil
	}
	list, err := r.store.ListBroadcasts(room)
	if err != nil {
		return err
	}
	for _, b := range list {
		if b.ID == bc {
			return nil
		}
	}
	return errorf(ErrNotFound, "room %s has no broadcast %s", room, bc)
}

// Chat returns up to limit messages (0: HistoryLimit; at most HistoryMax)
// of a room's broadcast bc ("": the current one) before the message id
// before ("" the newest), newest last (GET /v1/rooms/{room}/chat).
// ErrNotFound without the room, or when it has no broadcast bc.
func (r *Rooms) Chat(room, bc, before string, limit int) ([]chat.Message, error) {
	rm := r.Room(room)
	if rm == nil {
		return nil, errorf(ErrNotFound, "room %s not found", room)
	}
	if bc == "" {
		bc = rm.BroadcastID()
	} else if err := r.checkBroadcast(room, bc); err != nil {
		return nil, err
	}
	return r.chat.History(room, bc, before, pageSize(limit))
}

// RoomInvitations lists a room's invitations for the HTTP API, of a status
// ("" every status) and a broadcast ("" every broadcast); ErrNotFound when
// there is no such room, or it has no broadcast bc.
func (r *Rooms) RoomInvitations(room string, status invitations.Status, bc string) ([]invitations.Invitation, error) {
	rm := r.Room(room)
	if rm == nil {
		return nil, errorf(ErrNotFound, "room %s not found", room)
	}
	if err := r.checkBroadcast(room, bc); err != nil {
		return nil, err
	}
	list, err := r.inv.List(invitations.Filter{Room: rm.Name(), Status: status, BroadcastID: bc})
	return list, fromInvitations(err)
}
