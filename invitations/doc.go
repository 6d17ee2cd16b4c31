// Package invitations is the co-host invitation state machine of the
// contract (docs/protocol.md §8.6) and its persistence.
// It is pure logic plus a store: no network, and no imports of this
// module but metrics. Signaling maps its methods to invitation.*,
// cohost.remove and stage.leave, and its errors to codes.
//
// # Statuses
//
//	pending  -> accepted   invitee: Accept (4013 while the stage is full)
//	pending  -> rejected   invitee: Reject
//	pending  -> cancelled  host: Cancel; or the room ends (EndRoom)
//	pending  -> expired    the clock reaches ExpiresAt (TTL, default 10m)
//	accepted -> removed    host: Remove; or the room ends (EndRoom)
//	accepted -> left       invitee: Leave
//
// Rejected, cancelled, expired, removed and left are final. Anyone else
// than the named party gets ErrForbidden; a transition from the wrong
// status gets ErrConflict.
//
// A room has at most one invitation per user that is pending or accepted:
// Create returns that one (created=false) instead of making a second. For
// a pending one this is the contract's rule; for an accepted one it means
// "already on stage", and the invitation returned says so. Any final
// status lets the host invite again, which makes a new invitation.
//
// Expiry is decided when an invitation is read or touched, not only by
// the sweeper: Accept, Reject and Cancel of a due invitation commit it as
// expired and answer ErrConflict; Get and List commit due ones as expired
// before answering; Create expires a due one before inviting again. The
// sweeper (Run) only makes the expiry, and its OnChange, happen within a
// second when nobody looks.
//
// # Concurrency
//
// Every transition is one Store.Update whose callback re-checks the
// status inside the transaction, so concurrent Accept, Cancel, Reject and
// expiry of one invitation end in exactly one outcome; the losers get
// ErrConflict together with the invitation as it now is. Stage limits are
// counted inside the same transaction. OnChange is called after each
// commit, outside every lock, in commit order per invitation (notify.go).
//
// # Persistence
//
// BoltStore keeps invitations and room records in <data-dir>/relayd.db,
// fsynced before each write returns. The Store interface is the seam for
// another backend.
package invitations
