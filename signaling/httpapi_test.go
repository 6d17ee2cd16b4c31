package signaling

import "testing"

// GET /v1/rooms/{room} always lists the participants: [] for a room with
// none (before: the field was left out, as the room object omits it
// elsewhere).
func TestGetRoomListsNoParticipants(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	if code, body := httpDo(t, "POST", ts.URL+"/v1/rooms", admin, `{"name":"empty","host":"alice"}`); code != 201 {
		t.Fatalf("POST /v1/rooms: %d %v", code, body)
	}
	code, body := httpDo(t, "GET", ts.URL+"/v1/rooms/empty", admin, "")
	if code != 200 {
		t.Fatalf("GET: %d %v", code, body)
	}
	list, ok := body["participants"].([]any)
	if !ok || len(list) != 0 {
		t.Fatalf("participants = %#v (present: %v), want []", body["participants"], ok)
	}
	// A room with someone in it lists them.
	ts.join(t, "alice", "empty", "host")
	_, body = httpDo(t, "GET", ts.URL+"/v1/rooms/empty", admin, "")
	if list, _ := body["participants"].([]any); len(list) != 1 {
		t.Fatalf("participants = %#v, want alice", body["participants"])
	}
}
