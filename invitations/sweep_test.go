package invitations

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// TestRun: the sweeper expires at once what is due, announces it, and
// returns when its context ends.
func TestRun(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		due := f.invite(t, "u1")
		f.clock.Advance(time.Minute)
		fresh := f.invite(t, "u2")
		f.clock.Advance(testTTL - 30*time.Second) // due is past, fresh has 30s left

		expired := make(chan Invitation, 4)
		f.m.notify.fn = func(inv Invitation) {
			f.rec.OnChange(inv)
			expired <- inv
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.m.Run(ctx)
		}()
		select {
		case inv := <-expired:
			if inv.ID != due.ID || inv.Status != StatusExpired {
				t.Errorf("swept %+v, want %s expired", inv, due.ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the first sweep did not expire the due invitation")
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
		if got := must(t)(f.store.Get(fresh.ID)); got.Status != StatusPending {
			t.Errorf("the fresh one was swept too: %s", got.Status)
		}
		if got := f.rec.of(due.ID); !reflect.DeepEqual(got, []Status{StatusPending, StatusExpired}) {
			t.Errorf("OnChange during Run: %v", got)
		}
	})
}
