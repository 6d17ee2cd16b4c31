package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
)

// noNote checks that c gets no notification of method matching match
// within d.
func noNote(t *testing.T, c *client.Client, method string, match func(json.RawMessage) bool, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if n, err := c.WaitNotification(ctx, method, match); err == nil {
		t.Fatalf("unexpected %s %s", method, n.Params)
	}
}

// mutedNote matches track.muted for track id, muted, by.
func mutedNote(id string, muted bool, by string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev client.TrackMutedEvent
		return json.Unmarshal(p, &ev) == nil && ev.TrackID == id && ev.Muted == muted && ev.By == by
	}
}

// streamNote matches track.stream for track id, state, reason.
func streamNote(id, state, reason string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev client.TrackStreamEvent
		return json.Unmarshal(p, &ev) == nil && ev.TrackID == id && ev.State == state && ev.Reason == reason
	}
}

// ownTrack waits for the track.published a 1.1 publisher gets for its own
// track of kind, and returns it.
func ownTrack(t *testing.T, c *client.Client, identity, kind string) client.Track {
	t.Helper()
	ev, err := client.WaitEvent(testCtx(t), c, client.NotifyTrackPublished, func(ev client.TrackEvent) bool {
		return ev.Track.Participant == identity && ev.Track.Kind == kind
	})
	if err != nil {
		t.Fatalf("%s's own %s track.published: %v", identity, kind, err)
	}
	return ev.Track
}

// flowsAgain waits (at most within) until tr gets a keyframe after the n
// it had and packets after the p it had.
func flowsAgain(t *testing.T, tr *client.RemoteTrack, keyframes, packets int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for tr.Keyframes() <= keyframes || tr.Packets() <= packets+5 {
		if time.Now().After(deadline) {
			t.Fatalf("%s of %s: no keyframe and media within %v (keyframes %d, packets %d)", tr.Kind, tr.StreamID, within, tr.Keyframes(), tr.Packets()-packets)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A 1.1 publisher learns its own track ids (track.published for its own
// tracks), a 1.0 one does not; it mutes its video: nothing more reaches a
// viewer nor a relay destination; 1.1 sessions elsewhere (viewers, the
// relay destination with the copy's id) are told track.muted, 1.0 ones
// and the caller are not; a second mute changes and tells nothing; track
// objects say muted (a late joiner's join result, GET /v1/rooms/{room});
// unmute brings a keyframe and media back within 2 s.
func TestTrackMute(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B"}}))
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "A", "host")
	v11, _ := ts.join11(t, "v11", "A", "viewer")
	v10, _ := ts.join(t, "v10", "A", "viewer")
	ts.join(t, "host-B", "B", "host")
	destB, _ := ts.join11(t, "viewer-B", "B", "viewer")
	publish(t, host)
	video := ownTrack(t, host, "alice", "video")
	ownTrack(t, host, "alice", "audio")
	if video.Muted {
		t.Fatalf("a new track says muted: %+v", video)
	}
	if err := host.Call(ctx, "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B")}, nil); err != nil {
		t.Fatal(err)
	}
	copyEv, err := client.WaitEvent(ctx, destB, client.NotifyTrackPublished, func(ev client.TrackEvent) bool { return ev.Track.Kind == "video" })
	if err != nil {
		t.Fatal(err)
	}
	trs := map[string]*client.RemoteTrack{
		"v11": receiving(t, v11, "video", 20), "v10": receiving(t, v10, "video", 20), "viewer-B": receiving(t, destB, "video", 20),
	}

	got, err := host.MuteTrack(ctx, video.ID, true)
	if err != nil {
		t.Fatalf("track.mute: %v", err)
	}
	if got.ID != video.ID || !got.Muted || got.Kind != "video" || got.Participant != "alice" {
		t.Fatalf("track.mute result %+v", got)
	}
	waitNote(t, v11, "track.muted", mutedNote(video.ID, true, "publisher"))
	waitNote(t, destB, "track.muted", mutedNote(copyEv.Track.ID, true, "publisher"))
	for name, tr := range trs {
		t.Run("stops at "+name, func(t *testing.T) { packetsStop(t, tr) })
	}
	if _, err := host.MuteTrack(ctx, video.ID, true); err != nil {
		t.Fatalf("track.mute again: %v", err)
	}
	noNote(t, v11, "track.muted", nil, 300*time.Millisecond) // the repeat told nothing
	noNote(t, v10, "track.muted", nil, 10*time.Millisecond)
	noNote(t, host, "track.muted", nil, 10*time.Millisecond)

	late, res := ts.join(t, "late", "A", "viewer")
	defer late.Close()
	for _, tr := range res.Tracks {
		if tr.ID == video.ID && !tr.Muted {
			t.Errorf("a late joiner's join result says the muted track is not: %+v", tr)
		}
	}
	room, err := ts.admin(t).Room(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range room.Participants {
		for _, tr := range p.Tracks {
			if tr.Muted != (tr.ID == video.ID) {
				t.Errorf("GET /v1/rooms/A: %s's track %+v", p.Identity, tr)
			}
		}
	}

	before := map[string][2]int{}
	for name, tr := range trs {
		before[name] = [2]int{tr.Keyframes(), tr.Packets()}
	}
	if got, err = host.MuteTrack(ctx, video.ID, false); err != nil || got.Muted {
		t.Fatalf("unmute: %+v, %v", got, err)
	}
	start := time.Now()
	for name, tr := range trs {
		flowsAgain(t, tr, before[name][0], before[name][1], 2*time.Second)
	}
	t.Logf("media back at every subscriber %v after the unmute", time.Since(start).Round(time.Millisecond))
	waitNote(t, v11, "track.muted", mutedNote(video.ID, false, "publisher"))
	waitNote(t, destB, "track.muted", mutedNote(copyEv.Track.ID, false, "publisher"))
}

// track.mute's errors: params first (-32602), then a user session (4003),
// an unknown track (4004), another's (4003); nothing changes.
func TestTrackMuteErrors(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join11(t, "alice", "r", "host")
	viewer, _ := ts.join(t, "bob", "r", "viewer")
	publish(t, host)
	video := ownTrack(t, host, "alice", "video")
	user := userSession(t, ts, "carol")
	ctx := testCtx(t)
	for _, tc := range []struct {
		c      *client.Client
		params any
		code   int
	}{
		{viewer, map[string]any{"muted": true}, CodeInvalidParams},
		{viewer, map[string]any{"trackId": "", "muted": true}, CodeInvalidParams},
		{viewer, map[string]any{"trackId": video.ID}, CodeInvalidParams},
		{viewer, map[string]any{"trackId": 7, "muted": true}, CodeInvalidParams},
		{viewer, map[string]any{"trackId": video.ID, "muted": "yes"}, CodeInvalidParams},
		{user, map[string]any{"trackId": video.ID, "muted": true}, CodeForbidden},
		{viewer, map[string]any{"trackId": "TR_nosuchtrack", "muted": true}, CodeNotFound},
		{host, map[string]any{"trackId": "TR_nosuchtrack", "muted": true}, CodeNotFound},
		{viewer, map[string]any{"trackId": video.ID, "muted": true}, CodeForbidden},
	} {
		err := tc.c.Call(ctx, "track.mute", tc.params, nil)
		if client.ErrorCode(err) != tc.code {
			t.Errorf("track.mute %v: %v, want %d", tc.params, err, tc.code)
		}
	}
	receiving(t, viewer, "video", 10)
	if info, _ := ts.Rooms.RoomInfo("r", true); len(info.Participants) == 0 || info.Participants[0].Tracks[0].Muted || info.Participants[0].Tracks[1].Muted {
		t.Errorf("a refused call muted something: %+v", info.Participants)
	}
}

// A 1.0 publisher is never told of its own tracks (v1's behaviour).
func TestOwnTracksOnlyFor11(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r", "host")
	viewer, _ := ts.join(t, "bob", "r", "viewer")
	publish(t, host)
	waitNote(t, viewer, "track.published", nil)
	waitNote(t, viewer, "track.published", nil)
	noNote(t, host, "track.published", nil, 300*time.Millisecond)
}

// An operator mutes a participant's video over HTTP: {tracks} muted; the
// publisher is told too (by admin) and may unmute itself; the others are
// told; bad requests change nothing.
func TestAdminMute(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join11(t, "alice", "r", "host")
	viewer, _ := ts.join11(t, "bob", "r", "viewer")
	publish(t, host)
	video := ownTrack(t, host, "alice", "video")
	audio := ownTrack(t, host, "alice", "audio")
	tr := receiving(t, viewer, "video", 20)
	admin := ts.admin(t)
	ctx := testCtx(t)

	tracks, err := admin.MuteParticipant(ctx, "r", "alice", client.MuteRequest{Kind: "video"})
	if err != nil {
		t.Fatalf("admin mute: %v", err)
	}
	if len(tracks) != 1 || tracks[0].ID != video.ID || !tracks[0].Muted {
		t.Fatalf("admin mute answered %+v", tracks)
	}
	waitNote(t, host, "track.muted", mutedNote(video.ID, true, "admin"))
	waitNote(t, viewer, "track.muted", mutedNote(video.ID, true, "admin"))
	packetsStop(t, tr)

	// The publisher unmutes itself.
	k, p := tr.Keyframes(), tr.Packets()
	if _, err := host.MuteTrack(ctx, video.ID, false); err != nil {
		t.Fatal(err)
	}
	flowsAgain(t, tr, k, p, 2*time.Second)
	waitNote(t, viewer, "track.muted", mutedNote(video.ID, false, "publisher"))

	// All its tracks; one by id.
	if tracks, err = admin.MuteParticipant(ctx, "r", "alice", client.MuteRequest{}); err != nil || len(tracks) != 2 {
		t.Fatalf("mute all: %+v, %v", tracks, err)
	}
	if tracks, err = admin.MuteParticipant(ctx, "r", "alice", client.MuteRequest{TrackID: audio.ID}); err != nil || len(tracks) != 1 || tracks[0].ID != audio.ID {
		t.Fatalf("mute by id: %+v, %v", tracks, err)
	}

	// Refusals.
	tok := ts.adminToken(t)
	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/v1/rooms/r/participants/alice/mute", `{"kind":"screen"}`, 400},
		{"/v1/rooms/r/participants/alice/mute", `{"kind":7}`, 400},
		{"/v1/rooms/r/participants/alice/mute", `{"trackId":""}`, 400},
		{"/v1/rooms/r/participants/bob/mute", `{"trackId":"` + video.ID + `"}`, 404}, // another's track
		{"/v1/rooms/r/participants/bob/mute", `{}`, 404},                             // no tracks
		{"/v1/rooms/r/participants/alice/mute", `{"trackId":"TR_none"}`, 404},
		{"/v1/rooms/nosuchroom/participants/alice/mute", `{}`, 404},
		{"/v1/rooms/r/participants/bad%20name/mute", `{}`, 400},
	} {
		if status, body := httpDo(t, http.MethodPost, ts.URL+tc.path, tok, tc.body); status != tc.status {
			t.Errorf("POST %s %s: %d %v, want %d", tc.path, tc.body, status, body, tc.status)
		}
	}
	if status, _ := httpDo(t, http.MethodPost, ts.URL+"/v1/rooms/r/participants/alice/mute", ts.token(t, "x", "r", "host"), `{}`); status != 403 {
		t.Errorf("a room token: %d, want 403", status)
	}
}

// An operator kicks a viewer (4003 close, participant.left), the host
// (4003 close, then waiting_reconnect), and with ban the host again
// (the room ends stopped_by_admin); an identity not in the room is 404
// without ban; GET .../participants lists who is there.
func TestAdminKick(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join11(t, "alice", "r", "host")
	publish(t, host)
	waitNote(t, host, "room.updated", roomStatusIs("live"))
	bob, _ := ts.join11(t, "bob", "r", "viewer")
	carol, _ := ts.join11(t, "carol", "r", "viewer")
	admin := ts.admin(t)
	ctx := testCtx(t)

	// The room is live with the host's first track; its second comes up
	// a moment later (audio and video race): list until both are there.
	var names []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ps, err := admin.Participants(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		names = names[:0]
		for _, p := range ps {
			names = append(names, fmt.Sprintf("%s/%s/%d", p.Identity, p.Role, len(p.Tracks)))
		}
		if (len(ps) > 0 && len(ps[0].Tracks) == 2) || time.Now().After(deadline) {
			break
		}
	}
	if fmt.Sprint(names) != "[alice/host/2 bob/viewer/0 carol/viewer/0]" {
		t.Errorf("participants %v", names)
	}
	if _, err := admin.Participants(ctx, "nosuchroom"); client.ErrorCode(err) != CodeNotFound {
		t.Errorf("participants of a missing room: %v", err)
	}

	if err := admin.KickParticipant(ctx, "r", "nobody", false); client.ErrorCode(err) != CodeNotFound {
		t.Errorf("kick of someone not in the room: %v", err)
	}
	if err := admin.KickParticipant(ctx, "nosuchroom", "bob", false); client.ErrorCode(err) != CodeNotFound {
		t.Errorf("kick in a missing room: %v", err)
	}
	if err := admin.KickParticipant(ctx, "r", "bob", false); err != nil {
		t.Fatalf("kick bob: %v", err)
	}
	waitClosed(t, bob)
	if code := bob.CloseCode(); code != 4003 {
		t.Errorf("bob closed with %d, want 4003", code)
	}
	waitNote(t, carol, "participant.left", func(p json.RawMessage) bool {
		var ev client.ParticipantEvent
		return json.Unmarshal(p, &ev) == nil && ev.Participant.Identity == "bob"
	})

	// The host, without ban: 4003, the room waits for it.
	if err := admin.KickParticipant(ctx, "r", "alice", false); err != nil {
		t.Fatalf("kick the host: %v", err)
	}
	waitClosed(t, host)
	if code := host.CloseCode(); code != 4003 {
		t.Errorf("the host closed with %d, want 4003", code)
	}
	waitNote(t, carol, "room.updated", roomStatusIs("waiting_reconnect"))

	// Back, then kicked with ban: the room ends stopped_by_admin.
	host2, _ := ts.goLive(t, "alice", "r")
	waitNote(t, carol, "room.updated", roomStatusIs("live"))
	if err := admin.KickParticipant(ctx, "r", "alice", true); err != nil {
		t.Fatalf("kick and ban the host: %v", err)
	}
	waitClosed(t, host2)
	if code := host2.CloseCode(); code != 4003 {
		t.Errorf("the banned host closed with %d, want 4003", code)
	}
	n := waitNote(t, carol, "room.updated", roomStatusIs("ended"))
	if _, reason := endReasonOf(n); reason != "stopped_by_admin" {
		t.Errorf("room ended %s, want stopped_by_admin", n.Params)
	}
	if err := admin.KickParticipant(ctx, "r", "carol", false); client.ErrorCode(err) != CodeConflict {
		t.Errorf("kick in an ended room: %v", err)
	}
	tok := ts.adminToken(t)
	if status, _ := httpDo(t, http.MethodPost, ts.URL+"/v1/rooms/r/participants/bad%20name/kick", tok, `{}`); status != 400 {
		t.Errorf("a bad identity: %d, want 400", status)
	}
	if status, _ := httpDo(t, http.MethodPost, ts.URL+"/v1/rooms/r/participants/carol/kick", tok, `{"ban":"yes"}`); status != 400 {
		t.Errorf("a bad ban: %d, want 400", status)
	}
}

// A 1.1 publisher is told of its own track's unpublishing while it stays
// in the room (here: it stops the track), but nothing after its room's end:
// room.updated "ended" stays the last notification before the close.
// (Before, the own tracks' track.unpublished followed it.)
func TestOwnTrackUnpublishedNotAfterTheEnd(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join11(t, "alice", "r", "host")
	pub := publish(t, host)
	audio := ownTrack(t, host, "alice", "audio")
	ownTrack(t, host, "alice", "video")
	if err := host.Unpublish(testCtx(t), pub.Audio()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.WaitEvent(testCtx(t), host, client.NotifyTrackUnpublished, func(ev client.TrackEvent) bool {
		return ev.Track.ID == audio.ID
	}); err != nil {
		t.Fatalf("own track.unpublished: %v", err)
	}
	if err := host.StopRoom(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	last := lastNotification(t, host, "the host")
	if status, _ := endReasonOf(last); last.Method != client.NotifyRoomUpdated || status != "ended" {
		t.Errorf("the last notification is %s %s, want room.updated ended", last.Method, last.Params)
	}
}
