package invitations

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Everyone in these tests: alice hosts room "show", bob is invited,
// carol is a stranger.
const (
	room     = "show"
	host     = "alice"
	invitee  = "bob"
	stranger = "carol"
)

// setups bring a fresh invitation of bob into each status.
var setups = map[Status]func(t *testing.T, f *fixture) Invitation{
	StatusPending: func(t *testing.T, f *fixture) Invitation { return f.invite(t, invitee) },
	StatusAccepted: func(t *testing.T, f *fixture) Invitation {
		return must(t)(f.m.Accept(f.invite(t, invitee).ID, invitee))
	},
	StatusRejected: func(t *testing.T, f *fixture) Invitation {
		return must(t)(f.m.Reject(f.invite(t, invitee).ID, invitee))
	},
	StatusCancelled: func(t *testing.T, f *fixture) Invitation {
		return must(t)(f.m.Cancel(f.invite(t, invitee).ID, host))
	},
	StatusExpired: func(t *testing.T, f *fixture) Invitation {
		inv := f.invite(t, invitee)
		f.clock.Advance(testTTL)
		f.m.sweep()
		return must(t)(f.m.Get(inv.ID))
	},
	StatusRemoved: func(t *testing.T, f *fixture) Invitation {
		must(t)(f.m.Accept(f.invite(t, invitee).ID, invitee))
		return must(t)(f.m.Remove(room, host, invitee))
	},
	StatusLeft: func(t *testing.T, f *fixture) Invitation {
		must(t)(f.m.Accept(f.invite(t, invitee).ID, invitee))
		return must(t)(f.m.Leave(room, invitee))
	},
}

// actions are what may happen to an invitation. Those that do not return
// one (EndRoom, the sweep) return it as stored.
var actions = map[string]func(f *fixture, inv Invitation) (Invitation, error){
	"accept by invitee":  func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Accept(inv.ID, invitee) },
	"accept by host":     func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Accept(inv.ID, host) },
	"accept by stranger": func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Accept(inv.ID, stranger) },
	"reject by invitee":  func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Reject(inv.ID, invitee) },
	"reject by host":     func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Reject(inv.ID, host) },
	"cancel by host":     func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Cancel(inv.ID, host) },
	"cancel by invitee":  func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Cancel(inv.ID, invitee) },
	"remove by host":     func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Remove(room, host, invitee) },
	"remove by invitee":  func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Remove(room, invitee, invitee) },
	"remove by stranger": func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Remove(room, stranger, invitee) },
	"leave by invitee":   func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Leave(room, invitee) },
	"leave by host":      func(f *fixture, inv Invitation) (Invitation, error) { return f.m.Leave(room, host) },
	"end room": func(f *fixture, inv Invitation) (Invitation, error) {
		if _, err := f.m.EndRoom(room); err != nil {
			return Invitation{}, err
		}
		return f.store.Get(inv.ID)
	},
	"accept 1ns before expiry": func(f *fixture, inv Invitation) (Invitation, error) {
		f.clock.Advance(inv.ExpiresAt.Sub(f.clock.Now()) - time.Nanosecond)
		return f.m.Accept(inv.ID, invitee)
	},
	// ExpiresAt itself is too late.
	"accept at expiry": func(f *fixture, inv Invitation) (Invitation, error) {
		f.clock.Advance(inv.ExpiresAt.Sub(f.clock.Now()))
		return f.m.Accept(inv.ID, invitee)
	},
	"reject after expiry": func(f *fixture, inv Invitation) (Invitation, error) {
		f.clock.Advance(testTTL + time.Second)
		return f.m.Reject(inv.ID, invitee)
	},
	"cancel after expiry": func(f *fixture, inv Invitation) (Invitation, error) {
		f.clock.Advance(testTTL + time.Second)
		return f.m.Cancel(inv.ID, host)
	},
	"get after expiry": func(f *fixture, inv Invitation) (Invitation, error) {
		f.clock.Advance(testTTL + time.Second)
		return f.m.Get(inv.ID)
	},
	"sweep after expiry": func(f *fixture, inv Invitation) (Invitation, error) {
		f.clock.Advance(testTTL + time.Second)
		f.m.sweep()
		return f.store.Get(inv.ID)
	},
	"end room after expiry": func(f *fixture, inv Invitation) (Invitation, error) {
		f.clock.Advance(testTTL + time.Second)
		if _, err := f.m.EndRoom(room); err != nil {
			return Invitation{}, err
		}
		return f.store.Get(inv.ID)
	},
}

type transitionCase struct {
	start   Status
	action  string
	wantErr error  // nil: success
	want    Status // the stored status afterwards
}

// transitionCases lists every action from every status.
func transitionCases() []transitionCase {
	cases := []transitionCase{
		{StatusPending, "accept by invitee", nil, StatusAccepted},
		{StatusPending, "accept by host", ErrForbidden, StatusPending},
		{StatusPending, "accept by stranger", ErrForbidden, StatusPending},
		{StatusPending, "reject by invitee", nil, StatusRejected},
		{StatusPending, "reject by host", ErrForbidden, StatusPending},
		{StatusPending, "cancel by host", nil, StatusCancelled},
		{StatusPending, "cancel by invitee", ErrForbidden, StatusPending},
		{StatusPending, "remove by host", ErrNotFound, StatusPending},
		{StatusPending, "remove by invitee", ErrNotFound, StatusPending},
		{StatusPending, "leave by invitee", ErrConflict, StatusPending},
		{StatusPending, "leave by host", ErrConflict, StatusPending},
		{StatusPending, "end room", nil, StatusCancelled},
		{StatusPending, "accept 1ns before expiry", nil, StatusAccepted},
		{StatusPending, "accept at expiry", ErrConflict, StatusExpired},
		{StatusPending, "reject after expiry", ErrConflict, StatusExpired},
		{StatusPending, "cancel after expiry", ErrConflict, StatusExpired},
		{StatusPending, "get after expiry", nil, StatusExpired},
		{StatusPending, "sweep after expiry", nil, StatusExpired},
		{StatusPending, "end room after expiry", nil, StatusExpired},

		{StatusAccepted, "accept by invitee", ErrConflict, StatusAccepted},
		{StatusAccepted, "accept by host", ErrForbidden, StatusAccepted},
		{StatusAccepted, "reject by invitee", ErrConflict, StatusAccepted},
		{StatusAccepted, "cancel by host", ErrConflict, StatusAccepted},
		{StatusAccepted, "cancel by invitee", ErrForbidden, StatusAccepted},
		{StatusAccepted, "remove by host", nil, StatusRemoved},
		{StatusAccepted, "remove by invitee", ErrForbidden, StatusAccepted},
		{StatusAccepted, "remove by stranger", ErrForbidden, StatusAccepted},
		{StatusAccepted, "leave by invitee", nil, StatusLeft},
		{StatusAccepted, "leave by host", ErrConflict, StatusAccepted},
		{StatusAccepted, "end room", nil, StatusRemoved},
		{StatusAccepted, "accept at expiry", ErrConflict, StatusAccepted},
		{StatusAccepted, "get after expiry", nil, StatusAccepted},
		{StatusAccepted, "sweep after expiry", nil, StatusAccepted},
	}
	// Nothing leaves a final status.
	for _, s := range []Status{StatusRejected, StatusCancelled, StatusExpired, StatusRemoved, StatusLeft} {
		cases = append(cases,
			transitionCase{s, "accept by invitee", ErrConflict, s},
			transitionCase{s, "accept by host", ErrForbidden, s},
			transitionCase{s, "reject by invitee", ErrConflict, s},
			transitionCase{s, "reject by host", ErrForbidden, s},
			transitionCase{s, "cancel by host", ErrConflict, s},
			transitionCase{s, "cancel by invitee", ErrForbidden, s},
			transitionCase{s, "remove by host", ErrNotFound, s},
			transitionCase{s, "leave by invitee", ErrConflict, s},
			transitionCase{s, "end room", nil, s},
			transitionCase{s, "get after expiry", nil, s},
			transitionCase{s, "sweep after expiry", nil, s},
		)
	}
	return cases
}

func TestTransitions(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		for _, tc := range transitionCases() {
			t.Run(string(tc.start)+"/"+tc.action, func(t *testing.T) {
				f := newFixture(t, k, 0)
				start := setups[tc.start](t, f)
				if start.Status != tc.start {
					t.Fatalf("setup gave %s", start.Status)
				}
				events := f.rec.len()
				counted := testutil.ToFloat64(f.metrics.Invitations.WithLabelValues(string(tc.want)))

				got, err := actions[tc.action](f, start)

				if !errors.Is(err, tc.wantErr) { // errors.Is(err, nil) is err == nil
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				stored, serr := f.store.Get(start.ID)
				if serr != nil {
					t.Fatal(serr)
				}
				if stored.Status != tc.want {
					t.Fatalf("stored status %s, want %s", stored.Status, tc.want)
				}
				// A successful call, and a conflict, return the invitation as
				// it now is.
				if (err == nil || errors.Is(err, ErrConflict)) && got.ID != "" && !reflect.DeepEqual(got, stored) {
					t.Errorf("returned %+v, stored %+v", got, stored)
				}

				changed := tc.want != tc.start
				wantEvents := 0
				if changed {
					wantEvents = 1
				}
				if n := f.rec.len() - events; n != wantEvents {
					t.Errorf("%d OnChange calls, want %d", n, wantEvents)
				}
				if changed {
					if last := f.rec.got[len(f.rec.got)-1]; !reflect.DeepEqual(last, stored) {
						t.Errorf("OnChange got %+v, stored %+v", last, stored)
					}
					if !stored.UpdatedAt.Equal(f.clock.Now()) {
						t.Errorf("updatedAt %v, want the commit's time %v", stored.UpdatedAt, f.clock.Now())
					}
					if n := testutil.ToFloat64(f.metrics.Invitations.WithLabelValues(string(tc.want))) - counted; n != 1 {
						t.Errorf("relayd_invitations_total{status=%q} grew by %v, want 1", tc.want, n)
					}
				} else if !reflect.DeepEqual(stored, start) {
					t.Errorf("unchanged status but the record changed: %+v -> %+v", start, stored)
				}
			})
		}
	})
}

func TestCreateValidation(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		long := make([]byte, 129)
		for i := range long {
			long[i] = 'a'
		}
		tests := []struct {
			name                    string
			room, host, caller, who string
			want                    error
		}{
			{"ok", room, host, host, invitee, nil},
			{"empty user", room, host, host, "", ErrInvalid},
			{"user with a space", room, host, host, "bo b", ErrInvalid},
			{"user of 129 characters", room, host, host, string(long), ErrInvalid},
			{"user of 128 characters", room, host, host, string(long[:128]), nil},
			{"every allowed character", room, host, host, "aZ09_.:@-", nil},
			{"the host invites themselves", room, host, host, host, ErrInvalid},
			{"bad room", "a/b", host, host, invitee, ErrInvalid},
			{"not the host", room, host, stranger, invitee, ErrForbidden},
			// Params are validated before permissions (-32602 before 4003).
			{"not the host and a bad user", room, host, stranger, "", ErrInvalid},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, k, 0)
				inv, created, err := f.m.Create(tc.room, tc.host, tc.caller, tc.who)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if err != nil {
					if f.rec.len() != 0 {
						t.Errorf("OnChange called for a refused create")
					}
					return
				}
				want := Invitation{
					ID: inv.ID, Room: tc.room, Host: tc.host, User: tc.who, Status: StatusPending,
					CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0.Add(testTTL),
				}
				if !created || !reflect.DeepEqual(inv, want) {
					t.Errorf("Create = %+v (created %v), want %+v", inv, created, want)
				}
				if len(inv.ID) != 15 || inv.ID[:3] != "IN_" || !validName(inv.ID) {
					t.Errorf("id %q: want IN_ and 12 base62 characters", inv.ID)
				}
				if got := f.rec.of(inv.ID); !reflect.DeepEqual(got, []Status{StatusPending}) {
					t.Errorf("OnChange: %v", got)
				}
			})
		}
	})
}

func TestBadIDs(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		for _, id := range []string{"", "IN_ x", "IN_\x00"} {
			if _, err := f.m.Accept(id, invitee); !errors.Is(err, ErrInvalid) {
				t.Errorf("Accept(%q) = %v, want ErrInvalid", id, err)
			}
			if _, err := f.m.Get(id); !errors.Is(err, ErrInvalid) {
				t.Errorf("Get(%q) = %v, want ErrInvalid", id, err)
			}
		}
		for name, call := range map[string]func() (Invitation, error){
			"accept": func() (Invitation, error) { return f.m.Accept("IN_000000000000", invitee) },
			"reject": func() (Invitation, error) { return f.m.Reject("IN_000000000000", invitee) },
			"cancel": func() (Invitation, error) { return f.m.Cancel("IN_000000000000", host) },
			"get":    func() (Invitation, error) { return f.m.Get("IN_000000000000") },
		} {
			if _, err := call(); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s of an unknown id = %v, want ErrNotFound", name, err)
			}
		}
	})
}

func TestStatusFinal(t *testing.T) {
	tests := []struct {
		s            Status
		final, valid bool
	}{
		{StatusPending, false, true},
		{StatusAccepted, false, true},
		{StatusRejected, true, true},
		{StatusCancelled, true, true},
		{StatusExpired, true, true},
		{StatusRemoved, true, true},
		{StatusLeft, true, true},
		{"", false, false},
		{"Pending", false, false},
	}
	for _, tc := range tests {
		if tc.s.Final() != tc.final || tc.s.Valid() != tc.valid {
			t.Errorf("%q: Final %v Valid %v, want %v %v", tc.s, tc.s.Final(), tc.s.Valid(), tc.final, tc.valid)
		}
	}
}
