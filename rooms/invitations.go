package rooms

// Invitations (PROTOCOL.md "Invitations"): the state machine is the
// invitations package's; here are who may call it from a room and what a
// change does to the room's participants.

import (
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/sfu"
)

// removedReason is why a relay participant is taken out of a room whose
// stage its identity left (SessionEnded to its relay, which drops the
// destination).
const removedReason = "no longer allowed to publish"

// invitationChanged is the invitations Manager's OnChange (local: a change
// made on this node) and, in cluster mode, what a note from another node
// brings (InvitationChanged). It tells the host and every member of the
// invitee, applies the change to the room's participants, and for a local
// change tells the other nodes and the webhooks.
func (r *Rooms) invitationChanged(inv invitations.Invitation, local bool) {
	for _, m := range r.membersOf(inv.Host, inv.User) {
		m.deliver(InvitationUpdated{Invitation: inv})
	}
	r.applyInvitation(inv)
	if !local {
		return
	}
	if r.cfg.Cluster != nil {
		r.cfg.Cluster.PublishInvitation(inv)
	}
	r.emit("invitation.updated", inv.Room, withBroadcast(map[string]any{"invitation": inv, "status": inv.Status}, inv.BroadcastID))
}

// InvitationChanged takes a change another node made (cluster mode): its
// members are told, and the room here, if it is here, follows.
func (r *Rooms) InvitationChanged(inv invitations.Invitation) { r.invitationChanged(inv, false) }

// applyInvitation makes the room follow an invitation. Accepted: the
// invitee's participant becomes co-host (participant.updated to all, no
// reconnect). Removed or left, when no other accepted invitation keeps
// the identity on the stage: its participant is a viewer again (its
// publisher PC closed, so its tracks stop at once), and a relay of that
// identity into this room loses the publish gate: its relay participant
// leaves the room (track.unpublished, participant.left) and the relay
// drops this destination (relay.event disconnect for the room).
func (r *Rooms) applyInvitation(inv invitations.Invitation) {
	room := r.sfu.Room(inv.Room)
	if room == nil {
		return
	}
	switch inv.Status {
	case invitations.StatusAccepted:
		if p := room.Participant(inv.User); p != nil && p.Role() == sfu.RoleViewer {
			p.SetRole(sfu.RoleCohost)
		}
	case invitations.StatusRemoved, invitations.StatusLeft:
		if r.isCohost(inv.Room, inv.User) {
			return
		}
		if p := room.Participant(inv.User); p != nil && p.Role() == sfu.RoleCohost {
			p.SetRole(sfu.RoleViewer)
		}
		if inv.User != room.Host() {
			for _, p := range relaysOf(room, inv.User) {
				p.Remove(1000, removedReason)
			}
		}
	}
}

// relaysOf returns the relay participants of identity in room.
func relaysOf(room *sfu.Room, identity string) []*sfu.Participant {
	var out []*sfu.Participant
	for _, p := range room.Members() {
		if p.Identity() == identity && p.Role() == sfu.RoleRelay {
			out = append(out, p)
		}
	}
	return out
}

// InvitationCreate invites user onto the member's room's stage: the host
// only, in a room that has not ended.
func (m *Member) InvitationCreate(user string) (invitations.Invitation, error) {
	if err := m.hostOnly(); err != nil {
		return invitations.Invitation{}, err
	}
	room := m.p.Room()
	if room.Status().Ended() {
		return invitations.Invitation{}, errorf(ErrConflict, "room has ended")
	}
	inv, _, err := m.r.inv.CreateIn(room.Name(), room.BroadcastID(), room.Host(), m.identity, user)
	return inv, fromInvitations(err)
}

// InvitationList lists the host's room's invitations (those of its
// current broadcast), or for anyone else their own, of a status (""
// every status).
func (m *Member) InvitationList(status invitations.Status) ([]invitations.Invitation, error) {
	f := invitations.Filter{Status: status}
	if m.p != nil && m.p.Role() == sfu.RoleHost {
		f.Room, f.BroadcastID = m.room, m.p.Room().BroadcastID()
	} else {
		f.User = m.identity
	}
	list, err := m.r.inv.List(f)
	return list, fromInvitations(err)
}

// InvitationAccept accepts invitation id as its invitee. In the contract's
// order: an unknown id is ErrNotFound; someone else's invitation
// ErrForbidden; then the state: its room ended, the invitation no longer
// pending (ErrConflict), the stage full (ErrTooMany).
func (m *Member) InvitationAccept(id string) (invitations.Invitation, error) {
	inv, err := m.r.inv.Get(id)
	if err != nil {
		return invitations.Invitation{}, fromInvitations(err)
	}
	if inv.User != m.identity {
		return invitations.Invitation{}, errorf(ErrForbidden, "forbidden: only the invitee may accept invitation %s", id)
	}
	return m.r.accept(inv)
}

// accept accepts inv as its invitee, if its room is open.
func (r *Rooms) accept(inv invitations.Invitation) (invitations.Invitation, error) {
	if err := r.roomOpen(inv.Room, inv.BroadcastID); err != nil {
		return invitations.Invitation{}, err
	}
	inv, err := r.inv.Accept(inv.ID, inv.User)
	return inv, fromInvitations(err)
}

// InvitationReject rejects invitation id as its invitee.
func (m *Member) InvitationReject(id string) (invitations.Invitation, error) {
	inv, err := m.r.inv.Reject(id, m.identity)
	return inv, fromInvitations(err)
}

// InvitationCancel cancels invitation id as its host.
func (m *Member) InvitationCancel(id string) (invitations.Invitation, error) {
	inv, err := m.r.inv.Cancel(id, m.identity)
	return inv, fromInvitations(err)
}

// CohostRemove takes user off the host's stage (the effects:
// applyInvitation).
func (m *Member) CohostRemove(user string) error {
	if err := m.hostOnly(); err != nil {
		return err
	}
	_, err := m.r.inv.Remove(m.room, m.identity, user)
	return fromInvitations(err)
}

// StageLeave takes a co-host off the stage, back to viewer.
func (m *Member) StageLeave() error {
	if m.p == nil || m.p.Role() != sfu.RoleCohost {
		return errorf(ErrForbidden, "forbidden: only a co-host may leave the stage")
	}
	_, err := m.r.inv.Leave(m.room, m.identity)
	return fromInvitations(err)
}

// UserInvitations lists a user's invitations for the HTTP API.
func (r *Rooms) UserInvitations(user string, status invitations.Status) ([]invitations.Invitation, error) {
	list, err := r.inv.List(invitations.Filter{User: user, Status: status})
	return list, fromInvitations(err)
}

// Invite invites user into room on its host's behalf (the HTTP API):
// ErrNotFound without the room, ErrConflict once it has ended. created is
// false when user already had a pending or accepted invitation there (it
// is returned).
func (r *Rooms) Invite(room, user string) (inv invitations.Invitation, created bool, err error) {
	rm := r.Room(room)
	if rm == nil {
		return invitations.Invitation{}, false, errorf(ErrNotFound, "room %s not found", room)
	}
	if rm.Status().Ended() {
		return invitations.Invitation{}, false, errorf(ErrConflict, "room has ended")
	}
	inv, created, err = r.inv.CreateIn(rm.Name(), rm.BroadcastID(), rm.Host(), rm.Host(), user)
	return inv, created, fromInvitations(err)
}

// Invitation actions of the HTTP API.
const (
	ActAccept = "accept" // as the invitee
	ActReject = "reject" // as the invitee
	ActCancel = "cancel" // as the host
)

// ActOnInvitation accepts or rejects invitation id as its invitee, or
// cancels it as its host, on an app back end's behalf. An unknown id or
// action is ErrNotFound.
func (r *Rooms) ActOnInvitation(id, action string) (invitations.Invitation, error) {
	inv, err := r.inv.Get(id)
	if err != nil {
		return invitations.Invitation{}, fromInvitations(err)
	}
	switch action {
	case ActAccept:
		return r.accept(inv)
	case ActReject:
		inv, err = r.inv.Reject(id, inv.User)
	case ActCancel:
		inv, err = r.inv.Cancel(id, inv.Host)
	default:
		return invitations.Invitation{}, errorf(ErrNotFound, "no such action %q", action)
	}
	return inv, fromInvitations(err)
}
