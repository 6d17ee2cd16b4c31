package invitations

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestStageLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 2)
		u1, u2, u3 := f.invite(t, "u1"), f.invite(t, "u2"), f.invite(t, "u3")
		must(t)(f.m.Accept(u1.ID, "u1"))
		must(t)(f.m.Accept(u2.ID, "u2"))

		if _, _, err := f.m.Create(room, host, host, "u4"); !errors.Is(err, ErrStageFull) {
			t.Fatalf("third create on a full stage: %v, want ErrStageFull", err)
		}
		if _, err := f.m.Accept(u3.ID, "u3"); !errors.Is(err, ErrStageFull) {
			t.Fatalf("accept on a full stage: %v, want ErrStageFull", err)
		}
		if inv := must(t)(f.store.Get(u3.ID)); inv.Status != StatusPending {
			t.Fatalf("refused accept left %s, want pending", inv.Status)
		}
		// Asking again for someone already invited answers with their
		// invitation, full stage or not.
		for _, want := range []Invitation{must(t)(f.store.Get(u1.ID)), u3} {
			got, created, err := f.m.Create(room, host, host, want.User)
			if err != nil || created || !reflect.DeepEqual(got, want) {
				t.Errorf("re-invite %s on a full stage = %+v, %v, %v; want %+v", want.User, got, created, err, want)
			}
		}
		// Other rooms have their own stage.
		if _, _, err := f.m.Create("other", host, host, "u4"); err != nil {
			t.Fatalf("create in another room: %v", err)
		}

		must(t)(f.m.Leave(room, "u1"))
		if inv := must(t)(f.m.Accept(u3.ID, "u3")); inv.Status != StatusAccepted {
			t.Fatalf("accept after a seat freed: %s", inv.Status)
		}
		if !f.m.IsCohost(room, "u3") || f.m.IsCohost(room, "u1") || f.m.IsCohost("other", "u3") {
			t.Errorf("IsCohost disagrees with the invitations")
		}
	})
}

func TestOnePendingPerUser(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		// finish brings a pending invitation into each final status.
		finish := map[Status]func(t *testing.T, f *fixture, inv Invitation) (Invitation, error){
			StatusRejected:  func(_ *testing.T, f *fixture, inv Invitation) (Invitation, error) { return f.m.Reject(inv.ID, invitee) },
			StatusCancelled: func(_ *testing.T, f *fixture, inv Invitation) (Invitation, error) { return f.m.Cancel(inv.ID, host) },
			StatusExpired: func(_ *testing.T, f *fixture, inv Invitation) (Invitation, error) {
				f.clock.Advance(testTTL)
				return f.m.Get(inv.ID)
			},
			StatusRemoved: func(t *testing.T, f *fixture, inv Invitation) (Invitation, error) {
				must(t)(f.m.Accept(inv.ID, invitee))
				return f.m.Remove(room, host, invitee)
			},
			StatusLeft: func(t *testing.T, f *fixture, inv Invitation) (Invitation, error) {
				must(t)(f.m.Accept(inv.ID, invitee))
				return f.m.Leave(room, invitee)
			},
		}
		for status, fin := range finish {
			t.Run(string(status), func(t *testing.T) {
				f := newFixture(t, k, 0)
				first := f.invite(t, invitee)
				again, created, err := f.m.Create(room, host, host, invitee)
				if err != nil || created || !reflect.DeepEqual(again, first) {
					t.Fatalf("second create = %+v, %v, %v; want the first", again, created, err)
				}
				if n := len(f.rec.of(first.ID)); n != 1 {
					t.Errorf("%d OnChange calls for a created-once invitation", n)
				}

				if inv := must(t)(fin(t, f, first)); inv.Status != status {
					t.Fatalf("finishing gave %s", inv.Status)
				}
				f.clock.Advance(time.Second) // List sorts by createdAt, then by the random id
				second, created, err := f.m.Create(room, host, host, invitee)
				if err != nil || !created || second.ID == first.ID || second.Status != StatusPending {
					t.Fatalf("re-invite after %s = %+v, %v, %v; want a new pending one", status, second, created, err)
				}
				if !second.ExpiresAt.Equal(f.clock.Now().Add(testTTL)) {
					t.Errorf("re-invite expires at %v, want a full TTL from now", second.ExpiresAt)
				}
				list := mustList(t)(f.m.List(Filter{Room: room, User: invitee}))
				if len(list) != 2 || list[0].ID != first.ID || list[1].ID != second.ID {
					t.Errorf("List = %+v, want the first then the second", list)
				}
			})
		}
	})
}

func TestReinviteWhileAccepted(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		acc := must(t)(f.m.Accept(f.invite(t, invitee).ID, invitee))
		got, created, err := f.m.Create(room, host, host, invitee)
		if err != nil || created || !reflect.DeepEqual(got, acc) {
			t.Fatalf("inviting a co-host = %+v, %v, %v; want their accepted invitation", got, created, err)
		}
	})
}

// A due pending invitation does not block a new one: it is expired (and
// announced) first.
func TestReinviteAfterDueNotSwept(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		first := f.invite(t, invitee)
		f.clock.Advance(testTTL + time.Minute)
		second, created, err := f.m.Create(room, host, host, invitee)
		if err != nil || !created || second.ID == first.ID {
			t.Fatalf("create after expiry = %+v, %v, %v", second, created, err)
		}
		var order []Status
		for _, inv := range f.rec.got {
			order = append(order, inv.Status)
		}
		if want := []Status{StatusPending, StatusExpired, StatusPending}; !reflect.DeepEqual(order, want) {
			t.Errorf("OnChange order %v, want %v", order, want)
		}
	})
}

func TestListFiltersAndExpires(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		a := f.invite(t, "u1")
		f.clock.Advance(time.Minute)
		b := f.invite(t, "u2")
		f.clock.Advance(time.Second)
		c := must(t)(f.m.Accept(f.invite(t, "u3").ID, "u3"))
		_, _, err := f.m.Create("other", "dave", "dave", "u1")
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(testTTL - 30*time.Second) // a is due, b is not (due in 31s)

		ids := func(list []Invitation) []string {
			out := []string{}
			for _, inv := range list {
				out = append(out, inv.ID)
			}
			return out
		}
		tests := []struct {
			f    Filter
			want []string
		}{
			{Filter{Room: room}, []string{a.ID, b.ID, c.ID}},
			{Filter{Room: room, Status: StatusPending}, []string{b.ID}},
			{Filter{Room: room, Status: StatusExpired}, []string{a.ID}},
			{Filter{Room: room, Status: StatusAccepted}, []string{c.ID}},
			{Filter{Room: room, User: "u3"}, []string{c.ID}},
			{Filter{Room: room, Status: StatusLeft}, []string{}},
			{Filter{User: "u1"}, []string{a.ID, ids(mustList(t)(f.store.List(Filter{Room: "other"})))[0]}},
			{Filter{Room: "nobody-here"}, []string{}},
		}
		for _, tc := range tests {
			got, err := f.m.List(tc.f)
			if err != nil || !reflect.DeepEqual(ids(got), tc.want) {
				t.Errorf("List(%+v) = %v, %v; want %v", tc.f, ids(got), err, tc.want)
			}
		}
		if got := f.rec.of(a.ID); !reflect.DeepEqual(got, []Status{StatusPending, StatusExpired}) {
			t.Errorf("List's expiry was not announced once: %v", got)
		}

		if list := mustList(t)(f.m.List(Filter{Room: "nobody-here"})); list == nil {
			t.Errorf("an empty List is nil: it would encode as null")
		}
		for _, bad := range []Filter{{Status: "bogus"}, {Room: "a b"}, {User: "\x00"}} {
			if _, err := f.m.List(bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("List(%+v) = %v, want ErrInvalid", bad, err)
			}
		}
	})
}

func TestEndRoom(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		p := f.invite(t, "u1")
		a := must(t)(f.m.Accept(f.invite(t, "u2").ID, "u2"))
		r := must(t)(f.m.Reject(f.invite(t, "u3").ID, "u3"))
		elsewhere, _, err := f.m.Create("other", host, host, "u1")
		if err != nil {
			t.Fatal(err)
		}

		changed, err := f.m.EndRoom(room)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]Status{p.ID: StatusCancelled, a.ID: StatusRemoved}
		if len(changed) != len(want) {
			t.Fatalf("EndRoom changed %+v", changed)
		}
		for _, inv := range changed {
			if want[inv.ID] != inv.Status {
				t.Errorf("%s became %s, want %s", inv.User, inv.Status, want[inv.ID])
			}
		}
		for id, st := range map[string]Status{r.ID: StatusRejected, elsewhere.ID: StatusPending} {
			if got := must(t)(f.store.Get(id)); got.Status != st {
				t.Errorf("%s: %s, want it untouched (%s)", id, got.Status, st)
			}
		}
		if f.m.IsCohost(room, "u2") {
			t.Errorf("still a co-host of an ended room")
		}
		if again, err := f.m.EndRoom(room); err != nil || len(again) != 0 {
			t.Errorf("second EndRoom = %+v, %v; want nothing", again, err)
		}
	})
}

// OnChange may call back into the Manager: it runs outside every lock.
func TestOnChangeReentrant(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		var seen []bool
		f.m.notify.fn = func(inv Invitation) {
			got, err := f.m.Get(inv.ID)
			if err != nil || got.Status != inv.Status {
				t.Errorf("Get from OnChange = %+v, %v", got, err)
			}
			seen = append(seen, f.m.IsCohost(inv.Room, inv.User))
			if inv.Status == StatusAccepted {
				must(t)(f.m.Leave(inv.Room, inv.User)) // a transition from inside OnChange
			}
		}
		inv := f.invite(t, invitee)
		must(t)(f.m.Accept(inv.ID, invitee))
		if want := []bool{false, true, false}; !reflect.DeepEqual(seen, want) {
			t.Errorf("IsCohost seen from OnChange: %v, want %v", seen, want)
		}
		if got := must(t)(f.store.Get(inv.ID)); got.Status != StatusLeft {
			t.Errorf("status %s, want left", got.Status)
		}
	})
}

func TestMaxCohostsConfig(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		tests := []struct {
			given, seats int
		}{
			{0, 8},  // the default
			{-1, 0}, // --max-cohosts 0: nobody joins the host on stage
			{3, 3},
		}
		for _, tc := range tests {
			f := newFixture(t, k, tc.given)
			if f.m.maxCohosts != tc.seats {
				t.Errorf("MaxCohosts %d gives %d seats, want %d", tc.given, f.m.maxCohosts, tc.seats)
			}
			_, _, err := f.m.Create(room, host, host, invitee)
			if full := errors.Is(err, ErrStageFull); full != (tc.seats == 0) {
				t.Errorf("MaxCohosts %d: Create = %v", tc.given, err)
			}
		}
	})
}
