package invitations

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRaceOneOutcome sets 50 goroutines on one pending invitation:
// Accept, Cancel, Reject and the sweep, with the clock moved past expiry
// midway. Exactly one outcome must win, every caller that succeeded must
// have been told that outcome, every loser must get ErrConflict with
// that outcome, and the store, OnChange and the metrics must agree.
func TestRaceOneOutcome(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		const goroutines = 50
		// Many rounds, so that each outcome gets its turn at winning.
		const rounds = 40
		// advancer is the sweeping goroutine (27 % 4 == 3) in the middle of
		// the pack that moves the clock past the expiry.
		const advancer = 27
		f := newFixture(t, k, rounds) // room on the stage for every accepted one
		wins := map[Status]int{}
		for round := range rounds {
			user := fmt.Sprintf("u%d", round)
			inv := f.invite(t, user)

			type result struct {
				op  string
				inv Invitation
				err error
			}
			results := make([]result, goroutines)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range goroutines {
				wg.Go(func() {
					<-start
					var r result
					switch i % 4 {
					case 0:
						r.op = "accept"
						r.inv, r.err = f.m.Accept(inv.ID, user)
					case 1:
						r.op = "cancel"
						r.inv, r.err = f.m.Cancel(inv.ID, host)
					case 2:
						r.op = "reject"
						r.inv, r.err = f.m.Reject(inv.ID, user)
					case 3:
						if i == advancer {
							f.clock.Advance(testTTL) // from now on it is due
						}
						r.op = "sweep"
						f.m.sweep()
					}
					results[i] = r
				})
			}
			close(start)
			wg.Wait()

			stored := must(t)(f.store.Get(inv.ID))
			if stored.Status == StatusPending {
				t.Fatalf("round %d: still pending", round)
			}
			wins[stored.Status]++
			for i, r := range results {
				switch {
				case r.op == "sweep":
				case r.err == nil:
					if r.inv.Status != stored.Status {
						t.Errorf("round %d: goroutine %d (%s) succeeded with %s, stored %s", round, i, r.op, r.inv.Status, stored.Status)
					}
				case errors.Is(r.err, ErrConflict):
					if r.inv.Status != stored.Status {
						t.Errorf("round %d: goroutine %d (%s) lost and was shown %s, stored %s", round, i, r.op, r.inv.Status, stored.Status)
					}
				default:
					t.Errorf("round %d: goroutine %d (%s): %v", round, i, r.op, r.err)
				}
			}
			if got, want := f.rec.of(inv.ID), []Status{StatusPending, stored.Status}; !reflect.DeepEqual(got, want) {
				t.Errorf("round %d: OnChange history %v, want %v", round, got, want)
			}
		}
		total := 0.0
		for _, s := range []Status{StatusAccepted, StatusCancelled, StatusRejected, StatusExpired} {
			n := testutil.ToFloat64(f.metrics.Invitations.WithLabelValues(string(s)))
			if int(n) != wins[s] {
				t.Errorf("relayd_invitations_total{status=%q} = %v, store has %d", s, n, wins[s])
			}
			total += n
		}
		if total != rounds {
			t.Errorf("%v outcomes counted for %d invitations", total, rounds)
		}
		t.Logf("winners over %d rounds: %v", rounds, wins)
	})
}

// TestRaceCreate: 50 concurrent invitations of one user to one room make
// exactly one.
func TestRaceCreate(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		const goroutines = 50
		f := newFixture(t, k, 0)
		type result struct {
			inv     Invitation
			created bool
			err     error
		}
		results := make([]result, goroutines)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				<-start
				var r result
				r.inv, r.created, r.err = f.m.Create(room, host, host, invitee)
				results[i] = r
			})
		}
		close(start)
		wg.Wait()

		created := 0
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("goroutine %d: %v", i, r.err)
			}
			if r.created {
				created++
			}
			if !reflect.DeepEqual(r.inv, results[0].inv) {
				t.Errorf("goroutine %d got %s, goroutine 0 %s", i, r.inv.ID, results[0].inv.ID)
			}
		}
		if created != 1 {
			t.Errorf("%d creates reported created, want 1", created)
		}
		if list := mustList(t)(f.store.List(Filter{Room: room, User: invitee})); len(list) != 1 {
			t.Errorf("store holds %d invitations, want 1", len(list))
		}
		if f.rec.len() != 1 {
			t.Errorf("%d OnChange calls, want 1", f.rec.len())
		}
		if n := testutil.ToFloat64(f.metrics.Invitations.WithLabelValues("pending")); n != 1 {
			t.Errorf("relayd_invitations_total{status=\"pending\"} = %v, want 1", n)
		}
	})
}
