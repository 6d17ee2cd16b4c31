package chat

import (
	"fmt"
	"testing"
	"time"
)

// Each broadcast of a room has its own history, trimmed to its own last
// Keep; ids go on increasing across broadcasts; a message is deleted in
// its broadcast only; DeleteRoom takes every broadcast's.
func TestBroadcasts(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			send := func(bc, text string) Message {
				t.Helper()
				m, err := s.Append(Message{Room: "bcs", BroadcastID: bc, Text: text, At: at})
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			var first []Message
			for i := range Keep + 5 {
				first = append(first, send("BC_1", fmt.Sprint("a", i)))
			}
			second := []Message{send("BC_2", "b0"), send("BC_2", "b1")}
			if second[0].ID <= first[len(first)-1].ID || second[0].BroadcastID != "BC_2" {
				t.Fatalf("the next broadcast's first id %s after %s", second[0].ID, first[len(first)-1].ID)
			}
			got, err := s.History("bcs", "BC_2", "", 10)
			if err != nil || len(got) != 2 || got[0].Text != "b0" || got[1].Text != "b1" || got[1].BroadcastID != "BC_2" {
				t.Fatalf("the second broadcast's history: %+v, %v", got, err)
			}
			old, _ := s.History("bcs", "BC_1", "", 10000)
			if len(old) != Keep || old[0].Text != "a5" || old[Keep-1].Text != fmt.Sprint("a", Keep+4) {
				t.Fatalf("the first broadcast keeps %d from %q, want its last %d", len(old), old[0].Text, Keep)
			}
			// A page of the first broadcast before an id of the second.
			if page, _ := s.History("bcs", "BC_1", second[1].ID, 1); len(page) != 1 || page[0].ID != first[len(first)-1].ID {
				t.Fatalf("page before a later id: %+v", page)
			}
			// The second broadcast did not trim the first one further.
			send("BC_2", "b2")
			if again, _ := s.History("bcs", "BC_1", "", 10000); len(again) != Keep {
				t.Fatalf("first broadcast after another message of the second: %d kept", len(again))
			}
			if err := s.Delete("bcs", "BC_2", first[len(first)-1].ID); err != ErrNotFound {
				t.Fatalf("delete of another broadcast's message: %v", err)
			}
			if err := s.Delete("bcs", "BC_1", first[len(first)-1].ID); err != nil {
				t.Fatal(err)
			}
			if page, _ := s.History("bcs", "BC_1", "", 1); page[0].ID != first[len(first)-2].ID {
				t.Fatalf("deleted message still listed: %+v", page)
			}
			// Deletes count: Keep more messages trim exactly the oldest.
			for i := range Keep {
				send("BC_1", fmt.Sprint("c", i))
			}
			if all, _ := s.History("bcs", "BC_1", "", 10000); len(all) != Keep || all[0].Text != "c0" {
				t.Fatalf("after a delete and Keep more: %d kept, oldest %q", len(all), all[0].Text)
			}
			if none, _ := s.History("bcs", "BC_9", "", 10); none == nil || len(none) != 0 {
				t.Fatalf("an unknown broadcast: %#v", none)
			}
			if n, err := s.DeleteRoom("bcs", at); err != nil || n != Keep+3 {
				t.Fatalf("DeleteRoom = %d, %v; want %d", n, err, Keep+3)
			}
			for _, bc := range []string{"BC_1", "BC_2"} {
				if left, _ := s.History("bcs", bc, "", 10); len(left) != 0 {
					t.Fatalf("%s after DeleteRoom: %+v", bc, left)
				}
			}
		})
	}
}
