package invitations

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/relaysfu/relayd/metrics"
)

// The contract's defaults (--invitation-ttl, --max-cohosts).
const (
	defaultTTL        = 10 * time.Minute
	defaultMaxCohosts = 8
)

// Config configures a Manager. Store and Metrics are required.
type Config struct {
	Store      Store
	TTL        time.Duration    // how long an invitation stays pending; default 10m
	MaxCohosts int              // accepted invitations one room may have; 0: the default 8; < 0: none (--max-cohosts 0)
	Now        func() time.Time // the clock; default time.Now
	Logger     *slog.Logger     // default: discard
	Metrics    *metrics.Metrics

	// OnChange, when set, is called after every committed transition,
	// creation included, with the invitation as committed. It runs
	// outside every lock of the package, in commit order for any one
	// invitation (different invitations may be announced concurrently).
	// It may call back into the Manager. The caller fans it out as
	// invitation.updated.
	OnChange func(Invitation)
}

// Manager runs the invitation state machine over a Store. It is safe for
// concurrent use. It does not own the Store: the caller closes it, after
// Run has returned.
type Manager struct {
	store      Store
	ttl        time.Duration
	maxCohosts int
	clock      func() time.Time
	log        *slog.Logger
	metrics    *metrics.Metrics
	notify     *notifier

	// commit is held across each store write and the push of its
	// transition to notify, so that transitions are queued in the order
	// they were committed. bbolt runs one write transaction at a time
	// anyway, so this serializes nothing more than the store already
	// does. Reads do not take it.
	commit sync.Mutex
}

// NewManager makes a Manager. It panics without a Store or Metrics.
func NewManager(c Config) *Manager {
	if c.Store == nil || c.Metrics == nil {
		panic("invitations: Config needs a Store and Metrics")
	}
	if c.TTL <= 0 {
		c.TTL = defaultTTL
	}
	switch {
	case c.MaxCohosts == 0:
		c.MaxCohosts = defaultMaxCohosts
	case c.MaxCohosts < 0:
		c.MaxCohosts = 0 // a stage for the host alone
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		store: c.Store, ttl: c.TTL, maxCohosts: c.MaxCohosts, clock: c.Now,
		log: c.Logger, metrics: c.Metrics, notify: newNotifier(c.OnChange),
	}
}

// now reads the clock as stored: UTC, without the monotonic reading (so
// that an invitation equals itself after a JSON round trip).
func (m *Manager) now() time.Time { return m.clock().UTC().Round(0) }

// Create invites user onto room's stage. host is the room's host and
// caller the identity asking; only the host may invite (ErrForbidden).
// user must be a valid name other than the host (ErrInvalid). When user
// already has a pending or accepted invitation in room, that one is
// returned with created=false, even on a full stage. Otherwise a full
// stage (MaxCohosts accepted) is ErrStageFull.
func (m *Manager) Create(room, host, caller, user string) (inv Invitation, created bool, err error) {
	return m.CreateIn(room, "", host, caller, user)
}

// CreateIn is Create for the room's broadcast broadcast (PROTOCOL.md 1.1
// §1a): the invitation is made in it. The rule of one pending or accepted
// invitation per user stays the room's (a new broadcast ends the older
// ones: EndOlder).
func (m *Manager) CreateIn(room, broadcast, host, caller, user string) (inv Invitation, created bool, err error) {
	switch {
	case !validName(room):
		return Invitation{}, false, fmt.Errorf("room %q: want 1-128 characters of [A-Za-z0-9_.:@-]: %w", room, ErrInvalid)
	case !validName(host):
		return Invitation{}, false, fmt.Errorf("host %q: want 1-128 characters of [A-Za-z0-9_.:@-]: %w", host, ErrInvalid)
	case !validName(user):
		return Invitation{}, false, fmt.Errorf("user %q: want 1-128 characters of [A-Za-z0-9_.:@-]: %w", user, ErrInvalid)
	case user == host:
		return Invitation{}, false, fmt.Errorf("user: the host cannot invite themselves: %w", ErrInvalid)
	case caller != host:
		return Invitation{}, false, fmt.Errorf("only the host of %s may invite: %w", room, ErrForbidden)
	}
	// A due pending invitation is expired first, so that its expiry is
	// announced before the new invitation (the store would otherwise
	// skip it anyway: see Store.Create).
	if _, err := m.expireDue(Filter{Room: room, User: user, Status: StatusPending}); err != nil {
		return Invitation{}, false, err
	}

	m.commit.Lock()
	now := m.now()
	inv = Invitation{
		ID: newID(), Room: room, Host: host, User: user, Status: StatusPending,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(m.ttl), BroadcastID: broadcast,
	}
	inv, created, err = m.store.Create(inv, m.stageFull)
	if err == nil && created {
		m.committed("", inv)
	}
	m.commit.Unlock()
	if err != nil {
		return Invitation{}, false, err
	}
	if created {
		m.notify.deliver(inv.ID)
	}
	return inv, created, nil
}

// Accept moves invitation id from pending to accepted; only its invitee
// may. A due invitation is committed as expired and answered ErrConflict;
// a full stage is ErrStageFull (the invitation stays pending).
func (m *Manager) Accept(id, caller string) (Invitation, error) {
	return m.fromPending(id, StatusAccepted, m.invitee(caller, "accept"), m.stageFull)
}

// Reject moves invitation id from pending to rejected; only its invitee
// may.
func (m *Manager) Reject(id, caller string) (Invitation, error) {
	return m.fromPending(id, StatusRejected, m.invitee(caller, "reject"), nil)
}

// Cancel moves invitation id from pending to cancelled; only its host
// may.
func (m *Manager) Cancel(id, caller string) (Invitation, error) {
	return m.fromPending(id, StatusCancelled, m.host(caller, "cancel"), nil)
}

// Remove takes user off room's stage: their accepted invitation becomes
// removed. Only that invitation's host may (ErrForbidden); without an
// accepted invitation it is ErrNotFound. Signaling should check that the
// caller is the room's host first, so that a non-host gets 4003 whether
// or not user is a co-host.
func (m *Manager) Remove(room, caller, user string) (Invitation, error) {
	if !validName(user) {
		return Invitation{}, fmt.Errorf("user %q: want 1-128 characters of [A-Za-z0-9_.:@-]: %w", user, ErrInvalid)
	}
	none := fmt.Errorf("%s is not a co-host of %s: %w", user, room, ErrNotFound)
	return m.fromAccepted(room, user, StatusRemoved, m.host(caller, "remove"), none)
}

// Leave takes caller off room's stage, back to viewer: their accepted
// invitation becomes left. Without one it is ErrConflict (not a co-host).
func (m *Manager) Leave(room, caller string) (Invitation, error) {
	none := fmt.Errorf("%s is not a co-host of %s: %w", caller, room, ErrConflict)
	return m.fromAccepted(room, caller, StatusLeft, m.invitee(caller, "leave"), none)
}

// EndRoom closes room's invitations when the room ends: pending ones
// become cancelled (expired, when already due) and accepted ones removed.
// It returns those it changed, OnChange having been called for each. It
// goes on past a failing invitation and returns the errors joined.
func (m *Manager) EndRoom(room string) ([]Invitation, error) { return m.endRoom(room, "") }

// EndOlder closes, as EndRoom does, room's invitations of every broadcast
// but current (PROTOCOL.md 1.1 §1a: at a new broadcast, older invitations
// still pending are cancelled and still accepted removed; only the
// current broadcast's make co-hosts).
func (m *Manager) EndOlder(room, current string) ([]Invitation, error) {
	return m.endRoom(room, current)
}

// endRoom closes room's invitations but those of the broadcast keep ("":
// all of them).
func (m *Manager) endRoom(room, keep string) ([]Invitation, error) {
	list, err := m.store.List(Filter{Room: room})
	if err != nil {
		return nil, err
	}
	var changed []Invitation
	var errs []error
	for _, old := range list {
		if old.Status.Final() || (keep != "" && old.BroadcastID == keep) {
			continue
		}
		inv, err := m.apply(old.ID, func(inv *Invitation, _ []Invitation, now time.Time) error {
			switch {
			case inv.due(now):
				inv.Status = StatusExpired
			case inv.Status == StatusPending:
				inv.Status = StatusCancelled
			case inv.Status == StatusAccepted:
				inv.Status = StatusRemoved
			default:
				return errSkip // it became final meanwhile
			}
			return nil
		})
		switch {
		case errors.Is(err, errSkip):
		case err != nil:
			errs = append(errs, err)
		default:
			changed = append(changed, inv)
		}
	}
	return changed, errors.Join(errs...)
}

// IsCohost reports whether user holds an accepted invitation in room:
// the publish gate, and the role given at join. A store failure is
// logged and answers false (the gate stays closed).
func (m *Manager) IsCohost(room, user string) bool { return m.IsCohostIn(room, "", user) }

// IsCohostIn is IsCohost counting only the invitations made in the room's
// broadcast broadcast, and those made before broadcasts (none of its
// broadcast); broadcast "" counts every one.
func (m *Manager) IsCohostIn(room, broadcast, user string) bool {
	list, err := m.store.List(Filter{Room: room, User: user, Status: StatusAccepted})
	if err != nil {
		m.log.Error("invitations: co-host lookup failed", "room", room, "user", user, "err", err)
		return false
	}
	for _, inv := range list {
		if broadcast == "" || inv.BroadcastID == "" || inv.BroadcastID == broadcast {
			return true
		}
	}
	return false
}

// Get returns invitation id, committing it as expired first when it is
// due.
func (m *Manager) Get(id string) (Invitation, error) {
	if !validName(id) {
		return Invitation{}, fmt.Errorf("id %q: %w", id, ErrInvalid)
	}
	inv, err := m.store.Get(id)
	if err != nil || !inv.due(m.now()) {
		return inv, err
	}
	return m.expire(id)
}

// List returns the invitations matching f, sorted by CreatedAt then ID
// (an empty list is not nil, so it encodes as []).
// Pending ones that are due are committed as expired first and reported
// so (and filtered as such). An unknown status or a bad name in f is
// ErrInvalid.
func (m *Manager) List(f Filter) ([]Invitation, error) {
	switch {
	case f.Status != "" && !f.Status.Valid():
		return nil, fmt.Errorf("status %q: %w", f.Status, ErrInvalid)
	case f.Room != "" && !validName(f.Room), f.User != "" && !validName(f.User):
		return nil, fmt.Errorf("filter %+v: %w", f, ErrInvalid)
	}
	// Expiry changes pending into expired: when f asks for either, read
	// both and filter after expiring.
	q := f
	if q.Status == StatusPending || q.Status == StatusExpired {
		q.Status = ""
	}
	list, err := m.store.List(q)
	if err != nil {
		return nil, err
	}
	now := m.now()
	out := make([]Invitation, 0, len(list)) // never nil: {"invitations": []}
	for _, inv := range list {
		if inv.due(now) {
			if inv, err = m.expire(inv.ID); err != nil {
				return nil, err
			}
		}
		if f.Match(inv) {
			out = append(out, inv)
		}
	}
	return out, nil
}

// stageFull refuses when sameRoom already has MaxCohosts accepted
// invitations.
func (m *Manager) stageFull(sameRoom []Invitation) error {
	n := 0
	for _, inv := range sameRoom {
		if inv.Status == StatusAccepted {
			n++
		}
	}
	if n >= m.maxCohosts {
		return fmt.Errorf("the stage is full (%d co-hosts): %w", n, ErrStageFull)
	}
	return nil
}

// invitee allows only the invitation's user to do verb.
func (m *Manager) invitee(caller, verb string) func(*Invitation) error {
	return func(inv *Invitation) error {
		if caller != inv.User {
			return fmt.Errorf("only the invitee may %s invitation %s: %w", verb, inv.ID, ErrForbidden)
		}
		return nil
	}
}

// host allows only the invitation's host to do verb.
func (m *Manager) host(caller, verb string) func(*Invitation) error {
	return func(inv *Invitation) error {
		if caller != inv.Host {
			return fmt.Errorf("only the host may %s invitation %s: %w", verb, inv.ID, ErrForbidden)
		}
		return nil
	}
}
