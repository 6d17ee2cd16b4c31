package invitations

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// A room record carries its current broadcast: PutRoom stores that
// broadcast's record with it; PutBroadcast stores a past one without
// touching the room; ListBroadcasts lists a room's, oldest first, across a
// reopen; DeleteRoom takes them with the room (not another room's).
func TestBroadcastRecords(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		open := k.at(t)
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
		t1, t2, t3 := created.Add(time.Minute), created.Add(time.Hour), created.Add(2*time.Hour)
		first := RoomRecord{Name: "show", Host: "alice", Status: "ended", CreatedAt: created, StartedAt: &t1, EndedAt: &t2,
			EndReason: "host_left", BroadcastID: "BC_0000000000000001"}
		second := RoomRecord{Name: "show", Host: "bob", Status: "live", CreatedAt: created, StartedAt: &t3,
			BroadcastID: "BC_0000000000000002", BroadcastCreatedAt: t2}
		other := RoomRecord{Name: "show2", Host: "carol", Status: "idle", CreatedAt: created, BroadcastID: "BC_0000000000000003"}
		legacy := RoomRecord{Name: "old", Host: "dan", Status: "ended", CreatedAt: created}
		for _, r := range []RoomRecord{first, second, other, legacy} {
			if err := s.PutRoom(r); err != nil {
				t.Fatal(err)
			}
		}
		// The first broadcast's recordings became final later.
		late := first.Broadcast()
		late.Status = "recorded"
		if err := s.PutBroadcast(late); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []BroadcastRecord{{Room: "show"}, {ID: "BC_1"}, {ID: "BC_1", Room: "a\x00b"}} {
			if err := s.PutBroadcast(bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutBroadcast(%+v): %v, want ErrInvalid", bad, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = open(); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got, err := s.GetRoom("show"); err != nil || !reflect.DeepEqual(got, second) {
			t.Errorf("room record %+v, %v; want the second broadcast's %+v", got, err, second)
		}
		want := []BroadcastRecord{late, {ID: "BC_0000000000000002", Room: "show", Host: "bob", Status: "live", CreatedAt: t2, StartedAt: &t3}}
		if got, err := s.ListBroadcasts("show"); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ListBroadcasts(show) = %+v, %v; want %+v", got, err, want)
		}
		if got, err := s.ListBroadcasts("old"); err != nil || got == nil || len(got) != 0 {
			t.Errorf("ListBroadcasts of a record from before broadcasts: %+v, %v; want []", got, err)
		}
		if got, err := s.ListBroadcasts("none"); err != nil || got == nil || len(got) != 0 {
			t.Errorf("ListBroadcasts of no room: %+v, %v; want []", got, err)
		}
		if ok, err := s.DeleteRoom("show", created); !ok || err != nil {
			t.Fatalf("DeleteRoom: %v, %v", ok, err)
		}
		if got, err := s.ListBroadcasts("show"); err != nil || len(got) != 0 {
			t.Errorf("broadcasts after DeleteRoom: %+v, %v", got, err)
		}
		if got, err := s.ListBroadcasts("show2"); err != nil || len(got) != 1 {
			t.Errorf("another room's broadcasts after DeleteRoom: %+v, %v", got, err)
		}
	})
}

// Invitations are made in a broadcast; EndOlder ends those of the other
// broadcasts (pending: cancelled, accepted: removed) and tells each; a
// filter selects one broadcast's.
func TestInvitationsOfBroadcasts(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		old1 := must(t)(first(f.m.CreateIn("show", "BC_1", "alice", "alice", "u1")))
		old2 := must(t)(first(f.m.CreateIn("show", "BC_1", "alice", "alice", "u2")))
		must(t)(f.m.Accept(old2.ID, "u2"))
		legacy := must(t)(first(f.m.Create("show", "alice", "alice", "u3")))
		other := must(t)(first(f.m.CreateIn("other", "BC_9", "alice", "alice", "u1")))
		if old1.BroadcastID != "BC_1" || legacy.BroadcastID != "" {
			t.Fatalf("broadcast ids %q %q", old1.BroadcastID, legacy.BroadcastID)
		}
		// u1's pending invitation of the old broadcast is still the one
		// returned until the old ones end.
		if again, created, err := f.m.CreateIn("show", "BC_2", "alice", "alice", "u1"); err != nil || created || again.ID != old1.ID {
			t.Fatalf("re-invite before EndOlder: %+v %v %v", again, created, err)
		}
		cur := must(t)(first(f.m.CreateIn("show", "BC_2", "alice", "alice", "u4")))
		changed, err := f.m.EndOlder("show", "BC_2")
		if err != nil || len(changed) != 3 {
			t.Fatalf("EndOlder: %d changed, %v; want 3", len(changed), err)
		}
		for id, want := range map[string]Status{old1.ID: StatusCancelled, old2.ID: StatusRemoved, legacy.ID: StatusCancelled,
			cur.ID: StatusPending, other.ID: StatusPending} {
			if got := must(t)(f.m.Get(id)); got.Status != want {
				t.Errorf("%s: %s, want %s", id, got.Status, want)
			}
		}
		if f.m.IsCohost("show", "u2") {
			t.Error("the old broadcast's co-host is still one")
		}
		list := mustList(t)(f.m.List(Filter{Room: "show", BroadcastID: "BC_2"}))
		if len(list) != 1 || list[0].ID != cur.ID {
			t.Errorf("the current broadcast's invitations: %+v", list)
		}
		if all := mustList(t)(f.m.List(Filter{Room: "show"})); len(all) != 4 {
			t.Errorf("every broadcast's: %d, want 4", len(all))
		}
		// A new invitation of u1 in the current broadcast, now the old one
		// has ended.
		if again, created, err := f.m.CreateIn("show", "BC_2", "alice", "alice", "u1"); err != nil || !created || again.BroadcastID != "BC_2" {
			t.Fatalf("re-invite after EndOlder: %+v %v %v", again, created, err)
		}
	})
}

// first drops CreateIn's created flag.
func first(inv Invitation, _ bool, err error) (Invitation, error) { return inv, err }

// IsCohostIn counts the accepted invitations of that broadcast and those
// made before broadcasts, not another broadcast's.
func TestIsCohostIn(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		a := must(t)(first(f.m.CreateIn("show", "BC_1", "alice", "alice", "u1")))
		must(t)(f.m.Accept(a.ID, "u1"))
		l := must(t)(first(f.m.Create("show", "alice", "alice", "u2")))
		must(t)(f.m.Accept(l.ID, "u2"))
		for _, tc := range []struct {
			bc, user string
			want     bool
		}{
			{"BC_1", "u1", true}, {"BC_2", "u1", false}, {"", "u1", true},
			{"BC_2", "u2", true}, {"BC_1", "u3", false},
		} {
			if got := f.m.IsCohostIn("show", tc.bc, tc.user); got != tc.want {
				t.Errorf("IsCohostIn(show, %q, %s) = %v, want %v", tc.bc, tc.user, got, tc.want)
			}
		}
	})
}
