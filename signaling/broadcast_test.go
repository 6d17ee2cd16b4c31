package signaling

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
)

// join11 dials and joins as a 1.1 session.
func (ts *testServer) join11(t *testing.T, identity, room, role string) (*client.Client, *client.JoinResult) {
	t.Helper()
	c, err := client.Dial(testCtx(t), ts.URL, ts.token(t, identity, room, role), client.Options{})
	if err != nil {
		t.Fatalf("dial %s: %v", identity, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	res, err := c.JoinWith(testCtx(t), client.JoinParams{Version: "1.1"})
	if err != nil {
		t.Fatalf("join %s: %v", identity, err)
	}
	return c, res
}

func (ts *testServer) admin(t *testing.T) *client.Admin {
	return &client.Admin{BaseURL: ts.URL, Token: ts.adminToken(t)}
}

// goLive joins as a 1.1 host, publishes, and waits for the room to be live.
func (ts *testServer) goLive(t *testing.T, identity, room string) (*client.Client, *client.JoinResult) {
	t.Helper()
	host, res := ts.join11(t, identity, room, "host")
	publish(t, host)
	waitNote(t, host, "room.updated", roomStatusIs("live"))
	return host, res
}

// waitClosed waits for c's socket to close.
func waitClosed(t *testing.T, c *client.Client) {
	t.Helper()
	select {
	case <-c.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("socket not closed")
	}
}

// A host goes live, ends, and goes live again in the same room: the next
// broadcast, seen by its viewers, and both broadcasts listed over HTTP.
// A 1.0 host (or a viewer) joining the ended room still gets 4009.
func TestGoLiveAgain(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.admin(t)
	host, first := ts.goLive(t, "alice", "show")
	viewer, _ := ts.join11(t, "bob", "show", "viewer")
	receiving(t, viewer, "video", 20)
	if err := host.StopRoom(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, host)
	waitClosed(t, viewer)

	for _, tc := range []struct{ who, role, version string }{{"alice", "host", ""}, {"bob", "viewer", "1.1"}} {
		c, err := client.Dial(testCtx(t), ts.URL, ts.token(t, tc.who, "show", tc.role), client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.JoinWith(testCtx(t), client.JoinParams{Version: tc.version})
		if client.ErrorCode(err) != CodeConflict {
			t.Errorf("%s %q join into the ended room: %v, want 4009", tc.role, tc.version, err)
		}
		_ = c.Close()
	}

	host2, next := ts.goLive(t, "alice", "show")
	if next.Room.BroadcastID == first.Room.BroadcastID || next.Room.Status != "idle" || !next.Room.CreatedAt.Equal(first.Room.CreatedAt) {
		t.Fatalf("the next broadcast's join result: %+v (first %+v)", next.Room, first.Room)
	}
	viewer2, res := ts.join11(t, "bob", "show", "viewer")
	if res.Room.BroadcastID != next.Room.BroadcastID || res.Room.Status != "live" || res.Room.EndReason != "" {
		t.Fatalf("a viewer of the next broadcast: %+v", res.Room)
	}
	receiving(t, viewer2, "video", 20)

	list, err := admin.Broadcasts(testCtx(t), "show")
	if err != nil || len(list) != 2 {
		t.Fatalf("broadcasts: %+v %v", list, err)
	}
	if b := list[0]; b.ID != first.Room.BroadcastID || b.Status != "ended" || b.EndReason != "host_left" || b.StartedAt == nil || b.EndedAt == nil {
		t.Errorf("the first broadcast: %+v", b)
	}
	if b := list[1]; b.ID != next.Room.BroadcastID || b.Status != "live" || b.EndReason != "" || b.EndedAt != nil {
		t.Errorf("the second broadcast: %+v", b)
	}
	room, err := admin.Room(testCtx(t), "show")
	if err != nil || room.BroadcastID != next.Room.BroadcastID || room.Status != "live" || room.EndReason != "" {
		t.Fatalf("GET the room: %+v %v", room, err)
	}
	_ = host2
	if _, err := admin.Broadcasts(testCtx(t), "nope"); client.ErrorCode(err) != CodeNotFound {
		t.Errorf("broadcasts of no room: %v", err)
	}
}

// getJSON does an HTTP GET with a token (bearer, or ?token= when inQuery)
// and returns the status and body.
func getJSON(t *testing.T, u, token string, inQuery bool) (int, string) {
	t.Helper()
	if inQuery {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "token=" + url.QueryEscape(token)
		token = ""
	}
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The host turns recording on with room.record while publishing: every
// participant is told (room.updated, recording true), the tracks already
// published are recorded, and after the end the broadcast goes recorded
// and its recording is listed with its URL: in GET /v1/rooms/{room}, and
// to a token of the room (bearer or ?token=), which may download it.
func TestRecordWithRoomRecord(t *testing.T) {
	ts := newTestServer(t)
	host, res := ts.goLive(t, "alice", "rec")
	if res.Room.Recording {
		t.Fatal("recording before it was asked for")
	}
	viewer, _ := ts.join11(t, "bob", "rec", "viewer")
	receiving(t, viewer, "video", 10)
	room, err := host.SetRecording(testCtx(t), true)
	if err != nil || !room.Recording || room.BroadcastID != res.Room.BroadcastID {
		t.Fatalf("room.record: %+v %v", room, err)
	}
	if _, err := client.WaitEvent(testCtx(t), viewer, client.NotifyRoomUpdated, func(ev client.RoomEvent) bool { return ev.Room.Recording }); err != nil {
		t.Fatalf("the viewer was not told: %v", err)
	}
	time.Sleep(1500 * time.Millisecond) // media into the file
	if err := host.StopRoom(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n, err := client.WaitEvent(testCtx(t), viewer, client.NotifyRoomUpdated, func(ev client.RoomEvent) bool { return ev.Room.Status == "ended" }); err != nil || n.Room.Recording {
		t.Fatalf("the ended room.updated: %+v %v, want recording false", n.Room, err)
	}
	admin := ts.admin(t)
	var got *client.Room
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got, err = admin.Room(testCtx(t), "rec"); err == nil && got.Status == "recorded" && len(got.Recordings) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the room after the end: %+v %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rec := got.Recordings[0]
	if rec.Participant != "alice" || rec.BroadcastID != res.Room.BroadcastID || rec.URL != "/v1/rooms/rec/recordings/"+rec.Name || rec.Duration < 0.5 {
		t.Fatalf("the recording: %+v", rec)
	}
	viewerTok := ts.token(t, "bob", "rec", "viewer")
	for _, q := range []bool{false, true} {
		code, body := getJSON(t, ts.URL+"/v1/rooms/rec/recordings", viewerTok, q)
		if code != 200 || !strings.Contains(body, rec.Name) {
			t.Errorf("list with a viewer token (query %v): %d %s", q, code, body)
		}
		code, body = getJSON(t, ts.URL+"/v1/rooms/rec", viewerTok, q)
		if code != 200 || !strings.Contains(body, `"endReason":"host_left"`) || !strings.Contains(body, rec.URL) {
			t.Errorf("GET the room with a viewer token (query %v): %d %s", q, code, body)
		}
	}
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/v1/rooms/rec/recordings", ts.token(t, "bob", "other", "viewer"), 403},
		{"/v1/rooms/rec/recordings", ts.token(t, "bob", "", ""), 403},
		{"/v1/rooms/rec/recordings", "", 401},
		{"/v1/rooms/rec", ts.token(t, "bob", "other", "viewer"), 403},
		{"/v1/rooms/rec/recordings?broadcast=BC_0000000000000000", ts.adminToken(t), 404},
		{"/v1/rooms/rec/recordings?broadcast=" + res.Room.BroadcastID, viewerTok, 200},
		{"/v1/rooms/rec/broadcasts", viewerTok, 403}, // admin only
		{"/v1/rooms/rec/chat", viewerTok, 403},
	} {
		if code, body := getJSON(t, ts.URL+tc.path, tc.token, false); code != tc.want {
			t.Errorf("GET %s: %d %s, want %d", tc.path, code, body, tc.want)
		}
	}
	if code, body := getJSON(t, ts.URL+rec.URL, viewerTok, true); code != 200 || !strings.HasPrefix(body, "\x1a\x45\xdf\xa3") {
		t.Errorf("download with ?token=: %d (%d bytes)", code, len(body))
	}

	// The next broadcast lists none of the first one's recordings in the
	// room object; the list without ?broadcast= has every broadcast's.
	_, next := ts.goLive(t, "alice", "rec")
	if got, err := admin.Room(testCtx(t), "rec"); err != nil || len(got.Recordings) != 0 || got.Recording || got.BroadcastID != next.Room.BroadcastID {
		t.Errorf("the next broadcast's room: %+v %v", got, err)
	}
	if all, err := admin.Recordings(testCtx(t), "rec"); err != nil || len(all) != 1 {
		t.Errorf("every broadcast's recordings: %+v %v", all, err)
	}
	if none, err := admin.BroadcastRecordings(testCtx(t), "rec", next.Room.BroadcastID); err != nil || len(none) != 0 {
		t.Errorf("the next broadcast's recordings: %+v %v", none, err)
	}
}

// room.record: malformed on -32602 (before 4003), a viewer 4003, a user
// session 4003; a server without a recorder answers -32601.
func TestRoomRecordErrors(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join11(t, "alice", "r", "host")
	viewer, _ := ts.join11(t, "bob", "r", "viewer")
	user, _ := ts.join11(t, "carol", "", "")
	for _, tc := range []struct {
		c      *client.Client
		params any
		want   int
	}{
		{host, map[string]any{}, CodeInvalidParams},
		{host, map[string]any{"on": "yes"}, CodeInvalidParams},
		{host, map[string]any{"on": nil}, CodeInvalidParams},
		{viewer, map[string]any{"on": 1}, CodeInvalidParams},
		{viewer, map[string]any{"on": true}, CodeForbidden},
		{user, map[string]any{"on": true}, CodeForbidden},
	} {
		if err := tc.c.Call(testCtx(t), "room.record", tc.params, nil); client.ErrorCode(err) != tc.want {
			t.Errorf("room.record %v: %v, want %d", tc.params, err, tc.want)
		}
	}
	if room, err := host.SetRecording(testCtx(t), false); err != nil || room.Recording {
		t.Errorf("off while off: %+v %v", room, err)
	}

	none := newTestServer(t, func(o *serverOpts) { o.noRecorder = true })
	h, _ := none.join11(t, "alice", "r", "host")
	if _, err := h.SetRecording(testCtx(t), true); client.ErrorCode(err) != CodeMethodNotFound {
		t.Errorf("room.record without a recorder: %v, want -32601", err)
	}
}

// A past broadcast's chat and invitations stay readable over HTTP; the
// current one's are the default; an unknown broadcast is 404.
func TestPastBroadcastOverHTTP(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.admin(t)
	host, first := ts.join11(t, "alice", "show", "host")
	if _, err := host.SendChat(testCtx(t), "one"); err != nil {
		t.Fatal(err)
	}
	if _, err := host.CreateInvitation(testCtx(t), "bob"); err != nil {
		t.Fatal(err)
	}
	if err := host.StopRoom(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, host)
	host2, next := ts.join11(t, "alice", "show", "host")
	m2, err := host2.SendChat(testCtx(t), "two")
	if err != nil {
		t.Fatal(err)
	}
	if h, err := host2.ChatHistory(testCtx(t), "", 0); err != nil || len(h) != 1 || h[0].ID != m2.ID {
		t.Errorf("chat.history of the next broadcast: %+v %v", h, err)
	}
	if l, err := host2.ListInvitations(testCtx(t), ""); err != nil || len(l) != 0 {
		t.Errorf("invitation.list of the next broadcast: %+v %v", l, err)
	}
	ctx := testCtx(t)
	cur, err := admin.Chat(ctx, "show", client.ChatQuery{})
	if err != nil || len(cur) != 1 || cur[0].Text != "two" || cur[0].BroadcastID != next.Room.BroadcastID {
		t.Errorf("the current broadcast's chat: %+v %v", cur, err)
	}
	old, err := admin.Chat(ctx, "show", client.ChatQuery{Broadcast: first.Room.BroadcastID, Limit: 5})
	if err != nil || len(old) != 1 || old[0].Text != "one" || old[0].ID >= m2.ID {
		t.Errorf("the first broadcast's chat: %+v %v", old, err)
	}
	if _, err := admin.Chat(ctx, "show", client.ChatQuery{Broadcast: "BC_0000000000000000"}); client.ErrorCode(err) != CodeNotFound {
		t.Errorf("chat of an unknown broadcast: %v", err)
	}
	if code, body := getJSON(t, ts.URL+"/v1/rooms/show/chat?limit=0", ts.adminToken(t), false); code != 400 {
		t.Errorf("limit=0: %d %s", code, body)
	}
	invs, err := admin.BroadcastInvitations(ctx, "show", first.Room.BroadcastID, "")
	if err != nil || len(invs) != 1 || invs[0].Status != "cancelled" || invs[0].BroadcastID != first.Room.BroadcastID {
		t.Errorf("the first broadcast's invitations: %+v %v", invs, err)
	}
	if invs, err := admin.BroadcastInvitations(ctx, "show", next.Room.BroadcastID, ""); err != nil || len(invs) != 0 {
		t.Errorf("the next broadcast's invitations: %+v %v", invs, err)
	}
	var he *client.HTTPError
	if _, err := admin.BroadcastInvitations(ctx, "show", "BC_0000000000000000", ""); !errors.As(err, &he) || he.Status != 404 {
		t.Errorf("invitations of an unknown broadcast: %v", err)
	}
}
