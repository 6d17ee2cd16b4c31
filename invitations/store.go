package invitations

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Store keeps invitations and room records durably. It knows nothing of
// who may do what or of the clock: the Manager decides, and the Store
// makes each decision atomic. BoltStore is the one implementation; the
// interface is kept small so that another (Redis: WATCH/MULTI or a Lua
// script per call) can be added without touching the state machine.
//
// Every write is durable before the call returns: the contract wants an
// invitation written before the answer is sent.
type Store interface {
	// Create stores inv (a new pending invitation) atomically, unless
	// the same room already has an invitation for inv.User that is
	// accepted, or pending and not due (ExpiresAt after inv.CreatedAt).
	// Then nothing is written, and that invitation is returned with
	// created=false: a second invitation.create returns the pending one,
	// and inviting a user who is already on the stage returns their
	// accepted one. A pending invitation that is due does not count: it
	// is expired already, only not yet marked so.
	//
	// Otherwise check is called with every invitation of inv.Room (for
	// the stage count); its error aborts and is returned as is. A
	// duplicate inv.ID is an ErrConflict.
	//
	// Errors of the store itself (I/O, a corrupt record) are wrapped
	// with the operation; ErrNotFound and the callbacks' errors are not
	// wrapped by the store, so their messages can be shown to clients.
	Create(inv Invitation, check func(sameRoom []Invitation) error) (stored Invitation, created bool, err error)

	// Update runs fn on invitation id inside one atomic transaction,
	// giving it every invitation of the same room (inv included, as it
	// was before fn) for the stage count. fn may change Status and
	// UpdatedAt only. When fn returns nil the result is
	// durable before Update returns it. fn's error aborts the
	// transaction and is returned as is, with the invitation as stored.
	// A missing id is ErrNotFound. fn may run more than once (optimistic
	// stores retry), so it must not have effects outside *inv.
	Update(id string, fn func(inv *Invitation, sameRoom []Invitation) error) (Invitation, error)

	// Get returns one invitation, or ErrNotFound.
	Get(id string) (Invitation, error)

	// List returns the invitations matching f, sorted by CreatedAt then
	// ID.
	List(f Filter) ([]Invitation, error)

	// PutRoom creates or replaces the record of r.Name and, in the same
	// atomic write, the record of its current broadcast (r.Broadcast(),
	// when r has a BroadcastID).
	PutRoom(r RoomRecord) error
	// PutBroadcast creates or replaces the record of one broadcast of
	// room b.Room (a past one: its recordings became final after the next
	// one began). It does not touch the room's record.
	PutBroadcast(b BroadcastRecord) error
	// ListBroadcasts returns the records of room's broadcasts, sorted by
	// CreatedAt then ID (newest last); none when the room has none.
	ListBroadcasts(room string) ([]BroadcastRecord, error)
	// GetRoom returns the record of a room, or ErrNotFound.
	GetRoom(name string) (RoomRecord, error)
	// ListRooms returns every room record, sorted by name.
	ListRooms() ([]RoomRecord, error)

	// DeleteRoom deletes the record of room name, with the records of
	// all its broadcasts, if it is the one created at createdAt: the room
	// the caller decided to purge. No record, or the record of a newer
	// room of that name (another CreatedAt), is left alone and deleted is
	// false. Safe to repeat and to race with itself (nodes of a cluster).
	DeleteRoom(name string, createdAt time.Time) (deleted bool, err error)
	// DeleteInvitations deletes the invitations of room created at or
	// before until, with their index entries, in one atomic step, and
	// returns how many. Invitations created after until (those of a
	// newer room of that name) stay. Safe to repeat and to race with
	// itself.
	DeleteInvitations(room string, until time.Time) (int, error)

	// Close releases the store (for BoltStore, the file and its lock).
	Close() error
}

// Filter selects invitations; an empty field matches every value.
type Filter struct {
	Room        string
	User        string
	Status      Status
	BroadcastID string // the room's broadcast they were made in
}

// Match reports whether inv passes f.
func (f Filter) Match(inv Invitation) bool {
	return (f.Room == "" || f.Room == inv.Room) &&
		(f.User == "" || f.User == inv.User) &&
		(f.Status == "" || f.Status == inv.Status) &&
		(f.BroadcastID == "" || f.BroadcastID == inv.BroadcastID)
}

// sortInvitations orders list by CreatedAt, then ID, the order List
// promises.
func sortInvitations(list []Invitation) {
	slices.SortFunc(list, func(a, b Invitation) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// RoomRecord is what persists of a room, so that rooms survive a restart
// with their invitations. Status is the room's word (idle, live,
// waiting_reconnect, ended, recorded); this package does not interpret it.
// A room's name is reused by its broadcasts (PROTOCOL.md 1.1 §1a): the
// record is the room's current broadcast (BroadcastID, begun at
// BroadcastCreatedAt), whose host, status, times and end reason it holds;
// CreatedAt is the room's (its first broadcast's). A record from before
// broadcasts has no BroadcastID.
type RoomRecord struct {
	Name               string          `json:"name"`
	Host               string          `json:"host"`
	Title              string          `json:"title,omitempty"`
	Metadata           json.RawMessage `json:"metadata,omitempty"`
	Status             string          `json:"status"`
	CreatedAt          time.Time       `json:"createdAt"`
	StartedAt          *time.Time      `json:"startedAt,omitempty"`
	EndedAt            *time.Time      `json:"endedAt,omitempty"`
	EndReason          string          `json:"endReason,omitempty"` // the room's word, like Status
	BroadcastID        string          `json:"broadcastId,omitempty"`
	BroadcastCreatedAt time.Time       `json:"broadcastCreatedAt,omitzero"`
	// Bans are the identities banned from the current broadcast of a room
	// that has not ended (a ban lasts until the room ends, restarts
	// included).
	Bans []string `json:"bans,omitempty"`
}

// Broadcast returns the record of r's current broadcast (zero when r has
// none).
func (r RoomRecord) Broadcast() BroadcastRecord {
	if r.BroadcastID == "" {
		return BroadcastRecord{}
	}
	at := r.BroadcastCreatedAt
	if at.IsZero() {
		at = r.CreatedAt
	}
	return BroadcastRecord{
		ID: r.BroadcastID, Room: r.Name, Host: r.Host, Status: r.Status, CreatedAt: at,
		StartedAt: r.StartedAt, EndedAt: r.EndedAt, EndReason: r.EndReason,
	}
}

// BroadcastRecord is what persists of one broadcast of a room: the
// contract's broadcast object ({id, status, createdAt, startedAt?,
// endedAt?, endReason?}), with its room and host (a room's host may change
// from one broadcast to the next).
type BroadcastRecord struct {
	ID        string     `json:"id"`
	Room      string     `json:"room"`
	Host      string     `json:"host"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"createdAt"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
	EndReason string     `json:"endReason,omitempty"`
}

// encodeBroadcast checks and encodes a broadcast record for a store.
func encodeBroadcast(b BroadcastRecord) ([]byte, error) {
	if b.ID == "" || b.Room == "" {
		return nil, fmt.Errorf("invitations: broadcast record without an id or a room: %w", ErrInvalid)
	}
	if err := checkKeys(b.Room, b.ID); err != nil {
		return nil, err
	}
	v, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("invitations: encode broadcast %s of %s: %w", b.ID, b.Room, err)
	}
	return v, nil
}

// sortBroadcasts orders list by CreatedAt, then ID, the order
// ListBroadcasts promises.
func sortBroadcasts(list []BroadcastRecord) {
	slices.SortFunc(list, func(a, b BroadcastRecord) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// encodeRoom checks and encodes a room record for a store.
func encodeRoom(r RoomRecord) ([]byte, error) {
	if r.Name == "" {
		return nil, fmt.Errorf("invitations: room record without a name: %w", ErrInvalid)
	}
	v, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("invitations: encode room %s: %w", r.Name, err)
	}
	return v, nil
}
