package invitations

import (
	"errors"
	"fmt"
	"time"
)

// errSkip aborts a transition that no longer applies (the invitation
// changed meanwhile); it never leaves the package.
var errSkip = errors.New("invitations: nothing to do")

// step decides one transition: it sets inv.Status, or returns why not.
// It sees every invitation of the room and the time of the commit. It
// must depend on nothing but its arguments and what it closes over
// unchanged, because a store may run it more than once.
type step func(inv *Invitation, sameRoom []Invitation, now time.Time) error

// apply commits st on invitation id in one store transaction, then
// counts, logs and announces the transition. On error it returns the
// invitation as stored (the zero value when it was not found).
func (m *Manager) apply(id string, st step) (Invitation, error) {
	var from Status
	m.commit.Lock()
	inv, err := m.store.Update(id, func(inv *Invitation, sameRoom []Invitation) error {
		now := m.now()
		from = inv.Status
		if err := st(inv, sameRoom, now); err != nil {
			return err
		}
		inv.UpdatedAt = now
		return nil
	})
	if err == nil {
		m.committed(from, inv)
	}
	m.commit.Unlock()
	if err != nil {
		return inv, err
	}
	m.notify.deliver(id)
	return inv, nil
}

// committed counts, logs and queues a committed transition. The caller
// holds m.commit.
func (m *Manager) committed(from Status, inv Invitation) {
	m.metrics.Invitations.WithLabelValues(string(inv.Status)).Inc()
	if inv.Status == StatusAccepted {
		m.metrics.InvitationAcceptSeconds.Observe(inv.UpdatedAt.Sub(inv.CreatedAt).Seconds())
	}
	m.log.Info("invitation", "id", inv.ID, "room", inv.Room, "host", inv.Host, "user", inv.User,
		"from", string(from), "to", string(inv.Status))
	m.notify.push(inv)
}

// fromPending commits pending -> to on invitation id, when allowed lets
// the caller and gate (if any) lets the room. A due invitation is
// committed as expired instead, and answered ErrConflict.
func (m *Manager) fromPending(id string, to Status, allowed func(*Invitation) error, gate func([]Invitation) error) (Invitation, error) {
	if !validName(id) {
		return Invitation{}, fmt.Errorf("id %q: %w", id, ErrInvalid)
	}
	inv, err := m.apply(id, func(inv *Invitation, sameRoom []Invitation, now time.Time) error {
		if err := allowed(inv); err != nil {
			return err
		}
		if inv.Status != StatusPending {
			return notIn(inv, StatusPending)
		}
		if inv.due(now) {
			inv.Status = StatusExpired
			return nil
		}
		if gate != nil {
			if err := gate(sameRoom); err != nil {
				return err
			}
		}
		inv.Status = to
		return nil
	})
	if err == nil && inv.Status != to {
		return inv, fmt.Errorf("invitation %s expired at %s: %w", inv.ID, inv.ExpiresAt.Format(time.RFC3339), ErrConflict)
	}
	return inv, err
}

// fromAccepted commits accepted -> to on user's accepted invitation in
// room, when allowed lets the caller. Without one it returns none.
func (m *Manager) fromAccepted(room, user string, to Status, allowed func(*Invitation) error, none error) (Invitation, error) {
	list, err := m.store.List(Filter{Room: room, User: user, Status: StatusAccepted})
	if err != nil {
		return Invitation{}, err
	}
	if len(list) == 0 {
		return Invitation{}, none
	}
	// Create keeps one accepted invitation per (room, user) at most.
	return m.apply(list[0].ID, func(inv *Invitation, _ []Invitation, _ time.Time) error {
		if err := allowed(inv); err != nil {
			return err
		}
		if inv.Status != StatusAccepted {
			return notIn(inv, StatusAccepted)
		}
		inv.Status = to
		return nil
	})
}

// notIn is the ErrConflict of a transition from the wrong status.
func notIn(inv *Invitation, want Status) error {
	return fmt.Errorf("invitation %s is %s, not %s: %w", inv.ID, inv.Status, want, ErrConflict)
}

// expire commits invitation id as expired if it is due, and returns it as
// it then is (someone else may have moved it first).
func (m *Manager) expire(id string) (Invitation, error) {
	inv, err := m.apply(id, func(inv *Invitation, _ []Invitation, now time.Time) error {
		if !inv.due(now) {
			return errSkip
		}
		inv.Status = StatusExpired
		return nil
	})
	if errors.Is(err, errSkip) {
		return inv, nil
	}
	return inv, err
}

// expireDue commits as expired every due invitation matching f (whose
// Status should be pending) and returns those it expired.
func (m *Manager) expireDue(f Filter) ([]Invitation, error) {
	list, err := m.store.List(f)
	if err != nil {
		return nil, err
	}
	now := m.now()
	var expired []Invitation
	for _, inv := range list {
		if !inv.due(now) {
			continue
		}
		inv, err := m.expire(inv.ID)
		if err != nil {
			return expired, err
		}
		if inv.Status == StatusExpired {
			expired = append(expired, inv)
		}
	}
	return expired, nil
}
