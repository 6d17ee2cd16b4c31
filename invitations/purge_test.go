package invitations

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// DeleteRoom deletes a room record only when it is the room the caller
// read (its CreatedAt), and is safe to repeat.
func TestDeleteRoom(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		s := openStore(t, k)
		created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
		ended := created.Add(time.Hour)
		old := RoomRecord{Name: "show", Host: "alice", Status: "ended", CreatedAt: created, EndedAt: &ended}
		other := RoomRecord{Name: "other", Host: "bob", Status: "idle", CreatedAt: created}
		for _, r := range []RoomRecord{old, other} {
			if err := s.PutRoom(r); err != nil {
				t.Fatal(err)
			}
		}
		// Another CreatedAt is another room of that name: kept.
		if ok, err := s.DeleteRoom("show", created.Add(time.Nanosecond)); ok || err != nil {
			t.Fatalf("DeleteRoom of another incarnation: %v, %v", ok, err)
		}
		if _, err := s.GetRoom("show"); err != nil {
			t.Fatalf("record gone after a refused delete: %v", err)
		}
		// The same instant in another zone is the same room.
		if ok, err := s.DeleteRoom("show", created.In(time.FixedZone("x", 3600))); !ok || err != nil {
			t.Fatalf("DeleteRoom: %v, %v", ok, err)
		}
		if _, err := s.GetRoom("show"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetRoom after DeleteRoom: %v", err)
		}
		if ok, err := s.DeleteRoom("show", created); ok || err != nil {
			t.Fatalf("DeleteRoom twice: %v, %v", ok, err)
		}
		if ok, err := s.DeleteRoom("never", created); ok || err != nil {
			t.Fatalf("DeleteRoom of a missing room: %v, %v", ok, err)
		}
		if list, err := s.ListRooms(); err != nil || len(list) != 1 || list[0].Name != "other" {
			t.Fatalf("ListRooms after the delete: %+v, %v", list, err)
		}
		// A room of that name can be stored again.
		if err := s.PutRoom(RoomRecord{Name: "show", Host: "carol", Status: "idle", CreatedAt: ended}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetRoom("show"); err != nil || got.Host != "carol" {
			t.Fatalf("new room of a purged name: %+v, %v", got, err)
		}
	})
}

// DeleteInvitations deletes a room's invitations up to an instant, every
// index entry with them; later ones, and other rooms', stay.
func TestDeleteInvitations(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		acc := must(t)(f.m.Accept(f.invite(t, "u1").ID, "u1"))
		pend := f.invite(t, "u2")
		elsewhere, _, err := f.m.Create("other", "alice", "alice", "u1")
		if err != nil {
			t.Fatal(err)
		}
		until := f.clock.Now()
		f.clock.Advance(time.Minute)
		later := f.invite(t, "u3") // a newer room of the name

		n, err := f.store.DeleteInvitations("show", until)
		if err != nil || n != 2 {
			t.Fatalf("DeleteInvitations = %d, %v; want 2", n, err)
		}
		for _, id := range []string{acc.ID, pend.ID} {
			if _, err := f.store.Get(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%s) after the delete: %v", id, err)
			}
		}
		for _, tc := range []struct {
			f    Filter
			want []string
		}{
			{Filter{Room: "show"}, []string{later.ID}},
			{Filter{User: "u1"}, []string{elsewhere.ID}},
			{Filter{User: "u2"}, nil},
			{Filter{Status: StatusAccepted}, nil},
			{Filter{Status: StatusPending}, []string{elsewhere.ID, later.ID}},
			{Filter{}, []string{elsewhere.ID, later.ID}},
		} {
			var got []string
			for _, inv := range mustList(t)(f.store.List(tc.f)) {
				got = append(got, inv.ID)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("List(%+v) = %v, want %v", tc.f, got, tc.want)
			}
		}
		if f.m.IsCohost("show", "u1") {
			t.Error("a deleted acceptance still makes a co-host")
		}
		// Repeating it deletes nothing more.
		if n, err := f.store.DeleteInvitations("show", until); err != nil || n != 0 {
			t.Fatalf("DeleteInvitations again = %d, %v", n, err)
		}
		// The newer invitation is still a working one.
		must(t)(f.m.Accept(later.ID, "u3"))
		// u1 can be invited again: the deleted acceptance is not returned.
		if inv, created, err := f.m.Create("show", "alice", "alice", "u1"); err != nil || !created || inv.ID == acc.ID {
			t.Fatalf("invite after the delete: %+v, %v, %v", inv, created, err)
		}
		if n, err := f.store.DeleteInvitations("show", f.clock.Now()); err != nil || n != 2 {
			t.Fatalf("DeleteInvitations of the rest = %d, %v", n, err)
		}
		if list := mustList(t)(f.store.List(Filter{Room: "show"})); len(list) != 0 {
			t.Fatalf("room still lists %d invitations", len(list))
		}
		if rs, ok := f.store.(*RedisStore); ok {
			// Nothing of the room is left in Redis (memory is bounded
			// by the rooms kept, not by every room ever made).
			keys, err := rs.c.Keys(context.Background(), rs.p+"*show*").Result()
			if err != nil || len(keys) != 0 {
				t.Fatalf("keys of the purged room left: %v, %v", keys, err)
			}
		}
		if _, err := f.store.DeleteInvitations("a\x00b", until); !errors.Is(err, ErrInvalid) {
			t.Fatalf("NUL in the room: %v", err)
		}
	})
}
