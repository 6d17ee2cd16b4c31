package chat

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// DeleteRoom removes a room's messages up to an instant; later ones (a
// newer room of that name) and other rooms' stay; once nothing is left the
// room's sequence starts again.
func TestDeleteRoom(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			for i := range 5 {
				if _, err := s.Append(Message{Room: "show", Text: fmt.Sprint(i), At: at.Add(time.Duration(i) * time.Second)}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Append(Message{Room: "other", Text: "x", At: at}); err != nil {
				t.Fatal(err)
			}
			// Up to the third message (at+2s, inclusive).
			if n, err := s.DeleteRoom("show", at.Add(2*time.Second)); err != nil || n != 3 {
				t.Fatalf("DeleteRoom = %d, %v; want 3", n, err)
			}
			left, err := s.History("show", "", "", 10)
			if err != nil || len(left) != 2 || left[0].Text != "3" || left[1].Text != "4" {
				t.Fatalf("history after a partial delete: %+v, %v", left, err)
			}
			if n, err := s.DeleteRoom("show", at.Add(2*time.Second)); err != nil || n != 0 {
				t.Fatalf("DeleteRoom again = %d, %v", n, err)
			}
			// The sequence goes on while messages are left.
			if m, err := s.Append(Message{Room: "show", Text: "5", At: at.Add(5 * time.Second)}); err != nil || m.ID != idOf(6) {
				t.Fatalf("append after a partial delete: %+v, %v", m, err)
			}
			if n, err := s.DeleteRoom("show", at.Add(time.Hour)); err != nil || n != 3 {
				t.Fatalf("DeleteRoom of the rest = %d, %v", n, err)
			}
			if left, _ := s.History("show", "", "", 10); len(left) != 0 {
				t.Fatalf("history after the delete: %+v", left)
			}
			if n, err := s.DeleteRoom("never", at); err != nil || n != 0 {
				t.Fatalf("DeleteRoom of a room without messages = %d, %v", n, err)
			}
			if other, _ := s.History("other", "", "", 10); len(other) != 1 {
				t.Fatalf("another room's messages went: %+v", other)
			}
			if rs, ok := s.(*RedisStore); ok {
				keys, err := rs.c.Keys(context.Background(), rs.p+"*show*").Result()
				if err != nil || len(keys) != 0 {
					t.Fatalf("keys of the purged room left: %v, %v", keys, err)
				}
			}
			// Nothing of the room is left: a new room of that name
			// starts a new sequence.
			if m, err := s.Append(Message{Room: "show", Text: "new", At: at.Add(2 * time.Hour)}); err != nil || m.ID != idOf(1) {
				t.Fatalf("append in a purged room: %+v, %v", m, err)
			}
		})
	}
}
