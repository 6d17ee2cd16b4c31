package invitations

import (
	"errors"
	"time"

	"github.com/relaysfu/relayd/internal/ids"
)

// Status is where an invitation is in its life.
//
//	pending -> accepted | rejected | cancelled | expired
//	accepted -> removed | left
type Status string

// The statuses of the contract.
const (
	StatusPending   Status = "pending"
	StatusAccepted  Status = "accepted"
	StatusRejected  Status = "rejected"
	StatusCancelled Status = "cancelled"
	StatusExpired   Status = "expired"
	StatusRemoved   Status = "removed"
	StatusLeft      Status = "left"
)

// Final reports whether no transition leaves s. Pending and accepted are
// not final (accepted still goes to removed or left); every other status
// is.
func (s Status) Final() bool {
	switch s {
	case StatusRejected, StatusCancelled, StatusExpired, StatusRemoved, StatusLeft:
		return true
	}
	return false
}

// Valid reports whether s is one of the seven statuses (for validating
// invitation.list's status param).
func (s Status) Valid() bool {
	return s == StatusPending || s == StatusAccepted || s.Final()
}

// Invitation is the contract's invitation object, as sent on the wire and
// as stored. Times are UTC.
type Invitation struct {
	ID        string    `json:"id"`
	Room      string    `json:"room"`
	Host      string    `json:"host"`
	User      string    `json:"user"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// BroadcastID is the room's broadcast the invitation was made in
	// (PROTOCOL.md 1.1 §1a); none for one made before broadcasts.
	BroadcastID string `json:"broadcastId,omitempty"`
}

// due reports whether a pending invitation has outlived its TTL at now.
// ExpiresAt itself is already too late.
func (inv *Invitation) due(now time.Time) bool {
	return inv.Status == StatusPending && !now.Before(inv.ExpiresAt)
}

// Errors of the package. They come wrapped with details: test them with
// errors.Is. The caller maps them to the contract's codes: ErrNotFound
// 4004, ErrForbidden 4003, ErrConflict 4009, ErrStageFull 4013, ErrInvalid
// -32602; anything else is internal (-32603).
var (
	ErrNotFound  = errors.New("not found")
	ErrForbidden = errors.New("forbidden")
	ErrConflict  = errors.New("conflict")
	ErrStageFull = errors.New("stage full")
	ErrInvalid   = errors.New("invalid params")
)

// validName reports whether s is an identity or room name of the
// contract: 1 to 128 characters of [A-Za-z0-9_.:@-].
func validName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == ':', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}

// newID returns "IN_" and 12 random base62 characters (71 bits); the store
// refuses a duplicate id anyway.
func newID() string { return ids.New("IN_", 12) }
