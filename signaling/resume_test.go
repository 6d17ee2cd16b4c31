package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/client"
)

// The session's life across sockets, decided by nextHold.
func TestNextHold(t *testing.T) {
	for _, tc := range []struct {
		st       holdState
		in       holdInput
		holdable bool
		want     holdState
		act      holdAction
	}{
		{stOpen, inSocketLost, true, stHeld, actHold},
		{stOpen, inSocketLost, false, stEnded, actEnd}, // 1.0, or not joined
		{stOpen, inClosing, true, stClosing, actNone},
		{stOpen, inResume, true, stMoved, actTakeOver}, // still open: closed 1000 "resumed"
		{stOpen, inResume, false, stOpen, actRefuse},
		{stOpen, inGraceExpired, true, stOpen, actNone},
		{stClosing, inSocketLost, true, stEnded, actEnd}, // leave, kick, room end: no hold
		{stClosing, inResume, true, stClosing, actRefuse},
		{stClosing, inClosing, true, stClosing, actNone},
		{stHeld, inResume, true, stMoved, actTakeOver},
		{stHeld, inGraceExpired, true, stEnded, actExpire},
		{stHeld, inClosing, true, stEnded, actEnd}, // kicked, room ended, replaced while held
		{stHeld, inSocketLost, true, stHeld, actNone},
		{stMoved, inSocketLost, true, stMoved, actNone}, // the taken-over socket's end: nothing
		{stMoved, inGraceExpired, true, stMoved, actNone},
		{stMoved, inResume, true, stMoved, actRefuse}, // a used token
		{stMoved, inClosing, true, stMoved, actNone},
		{stEnded, inResume, true, stEnded, actRefuse}, // an expired token
		{stEnded, inSocketLost, true, stEnded, actNone},
	} {
		st, act := nextHold(tc.st, tc.in, tc.holdable)
		if st != tc.want || act != tc.act {
			t.Errorf("nextHold(%d, %d, %v) = %d, %d; want %d, %d", tc.st, tc.in, tc.holdable, st, act, tc.want, tc.act)
		}
	}
}

// holdCtx waits for the notes that show alice's session is held at
// viewer (a 1.1 session): video paused publisher_reconnecting, the room
// waiting_reconnect.
func heldSeen(t *testing.T, viewer *client.Client, videoID string) {
	t.Helper()
	waitNote(t, viewer, "track.stream", streamNote(videoID, "paused", "publisher_reconnecting"))
	waitNote(t, viewer, "room.updated", roomStatusIs("waiting_reconnect"))
}

// A 1.1 host's socket drops: held. Its 1.1 viewer sees its tracks paused
// publisher_reconnecting and the room waiting_reconnect, and no one sees
// it leave. It resumes: the same session (sessionId, participant), a new
// resume token, the notifications it missed replayed in order (a viewer
// who joined meanwhile, a chat message), a subscriber offer restarting
// ICE, then new ones; it restarts its publisher's ICE without
// republishing (the same track ids); the room is live again, its viewers
// are told active and get video again. A 1.0 viewer sees nothing but the
// media stall and come back. The old resume token is void.
func TestResumeHost(t *testing.T) {
	ts := newTestServer(t, withGrace(20*time.Second))
	ctx := testCtx(t)
	host, res := ts.join11(t, "alice", "r1", "host")
	publish(t, host)
	video := ownTrack(t, host, "alice", "video")
	waitNote(t, host, "room.updated", roomStatusIs("live"))
	v11, _ := ts.join11(t, "v11", "r1", "viewer")
	v10, _ := ts.join(t, "v10", "r1", "viewer")
	tr11 := receiving(t, v11, "video", 20)
	tr10 := receiving(t, v10, "video", 20)
	waitNote(t, host, "participant.joined", nil)
	waitNote(t, host, "participant.joined", nil)
	oldRT := host.ResumeToken()
	k11, p11, k10, p10 := tr11.Keyframes(), tr11.Packets(), tr10.Keyframes(), tr10.Packets()
	pubPC := host.PublisherPC()
	mids := func() (out []string) {
		for _, tr := range pubPC.GetTransceivers() {
			out = append(out, tr.Mid())
		}
		return out
	}
	midsBefore, ufragBefore := fmt.Sprint(mids()), ufragOf(pubPC.CurrentLocalDescription().SDP)

	host.DropSocket()
	heldSeen(t, v11, video.ID)
	// While held: a viewer joins, and v11 chats.
	late, _ := ts.join11(t, "late", "r1", "viewer")
	// Given the track while its publisher is held: paused right after.
	waitNote(t, late, "track.stream", streamNote(video.ID, "paused", "publisher_reconnecting"))
	if _, err := v11.SendChat(ctx, "while you were away"); err != nil {
		t.Fatal(err)
	}
	receiving(t, late, "video", 1) // media of a held host still flows where the network allows
	lastSeen := host.LastSeq()

	got, err := host.Resume(ctx, client.ResumeOptions{})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if !got.Resumed || got.SessionID != res.SessionID || got.ResumeToken == "" || got.ResumeToken == oldRT ||
		got.Gap || got.Seq <= lastSeen || got.Participant.Identity != "alice" || got.Participant.Role != "host" {
		t.Fatalf("resume result: %+v (fresh join %+v, lastSeq %d)", got, res, lastSeen)
	}
	if len(got.Participant.Tracks) != 2 {
		t.Errorf("resumed participant's tracks: %+v", got.Participant.Tracks)
	}
	// The current state: the resume put the room back to live.
	if got.Room == nil || got.Room.Status != "live" {
		t.Errorf("the resume result's room: %+v, want live", got.Room)
	}
	// The replay, in order: the room went waiting_reconnect, late joined,
	// the chat message; no seq missing from lastSeen+1 to the result's.
	var seqs []uint64
	var methods []string
	deadline := time.After(10 * time.Second)
	for len(seqs) == 0 || seqs[len(seqs)-1] < got.Seq {
		select {
		case n := <-host.Notifications():
			if n.Seq > lastSeen && n.Seq <= got.Seq {
				seqs = append(seqs, n.Seq)
				methods = append(methods, n.Method)
			}
		case <-deadline:
			t.Fatalf("replay: got %v %v, want up to %d", seqs, methods, got.Seq)
		}
	}
	for i, s := range seqs {
		if s != lastSeen+1+uint64(i) {
			t.Fatalf("replay seqs %v (from %d)", seqs, lastSeen+1)
		}
	}
	joined := strings.Join(methods, " ")
	if !strings.Contains(joined, "room.updated") || !strings.Contains(joined, "participant.joined") || !strings.Contains(joined, "chat.message") ||
		strings.Index(joined, "participant.joined") > strings.Index(joined, "chat.message") {
		t.Errorf("replayed %v", methods)
	}
	waitNote(t, v11, "room.updated", roomStatusIs("live"))
	activeAgain(t, v11, video.ID)
	activeAgain(t, late, video.ID)
	// A keyframe since: the resume asked the publisher for one.
	flowsAgain(t, tr11, k11, p11, 5*time.Second)
	flowsAgain(t, tr10, k10, p10, 5*time.Second)
	// The publisher PC restarted ICE: the same PC, the same mids, a new
	// ufrag.
	if host.PublisherPC() != pubPC || fmt.Sprint(mids()) != midsBefore {
		t.Errorf("the publisher PC after the resume: mids %v, were %s", mids(), midsBefore)
	}
	if u := ufragOf(pubPC.CurrentLocalDescription().SDP); u == ufragBefore || u == "" {
		t.Errorf("the publisher's ICE ufrag %q after the resume (was %q): no ICE restart", u, ufragBefore)
	}
	restarted := ts.Metrics.Resume.ICERestarts.WithLabelValues("publisher", "connected")
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(restarted) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := testutil.ToFloat64(restarted); n != 1 {
		t.Errorf("ice_restarts_total{publisher,connected} = %v", n)
	}
	noNote(t, v11, "participant.left", nil, 10*time.Millisecond)
	noNote(t, v11, "track.unpublished", nil, 10*time.Millisecond)
	noNote(t, v10, "participant.left", nil, 10*time.Millisecond)
	noNote(t, v10, "track.stream", nil, 10*time.Millisecond) // 1.0: nothing new
	noNote(t, late, "participant.joined", func(p json.RawMessage) bool { return strings.Contains(string(p), `"alice"`) }, 10*time.Millisecond)
	// The same tracks: no republish.
	room, err := ts.admin(t).Room(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range room.Participants {
		if p.Identity == "alice" && (len(p.Tracks) != 2 || (p.Tracks[0].ID != video.ID && p.Tracks[1].ID != video.ID)) {
			t.Errorf("alice's tracks after the resume: %+v (video was %s)", p.Tracks, video.ID)
		}
	}
	if n := testutil.ToFloat64(ts.Metrics.Resume.Outcomes.WithLabelValues("resumed")); n != 1 {
		t.Errorf("resumes_total{resumed} = %v", n)
	}

	// The old resume token is void: a fresh join (which replaces the
	// session, v1's duplicate rule).
	c, _, err := websocket.DefaultDialer.Dial(ts.wsURL(ts.token(t, "alice", "r1", "host"))+"&resume="+oldRT, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := &rawConn{t: t, Conn: c}
	defer rc.Close()
	r := rc.send(`{"jsonrpc":"2.0","id":1,"method":"join","params":{"version":"1.1","lastSeq":1}}`)
	if r.Error != nil || !strings.Contains(string(r.Result), `"resumed":false`) {
		t.Fatalf("a used resume token: %s %v", r.Result, r.Error)
	}
}

// A 1.1 viewer's socket drops and it resumes: the server's subscriber
// offer restarts ICE on the same PC (new ufrag), and the same track keeps
// receiving; the publisher sees no participant.left or joined.
func TestResumeViewerRestartsSubscriberICE(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "r1", "host")
	publish(t, host)
	viewer, _ := ts.join11(t, "bob", "r1", "viewer")
	tr := receiving(t, viewer, "video", 20)
	waitNote(t, host, "participant.joined", nil)
	pc := viewer.SubscriberPC()
	oldUfrag := ufragOf(pc.RemoteDescription().SDP)
	offers := viewer.SubscriberOffers()
	kf, pk := tr.Keyframes(), tr.Packets()

	// track.settings made before the drop hold after the resume (1.1 §3).
	var video string
	for _, tr := range viewerTracks(t, ts, "r1", "alice") {
		if tr.Kind == "video" {
			video = tr.ID
		}
	}
	if _, err := viewer.TrackSettings(ctx, client.TrackSettingsParams{TrackID: video, Quality: "low", MaxWidth: new(640)}); err != nil {
		t.Fatal(err)
	}

	viewer.DropSocket()
	time.Sleep(200 * time.Millisecond)
	got, err := viewer.Resume(ctx, client.ResumeOptions{})
	if err != nil || !got.Resumed {
		t.Fatalf("resume: %+v %v", got, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for viewer.SubscriberOffers() == offers {
		if time.Now().After(deadline) {
			t.Fatal("no subscriber offer after the resume")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if viewer.SubscriberPC() != pc {
		t.Fatal("the viewer's subscriber PC was replaced")
	}
	if u := ufragOf(pc.RemoteDescription().SDP); u == oldUfrag || u == "" {
		t.Fatalf("the resume's offer kept the ICE ufrag %q", u)
	}
	// A keyframe since: the restarted PC's tracks start at one.
	flowsAgain(t, tr, kf, pk, 5*time.Second)
	if st, err := viewer.TrackSettings(ctx, client.TrackSettingsParams{TrackID: video}); err != nil || st.Quality != "low" || st.MaxWidth != 640 {
		t.Errorf("settings after the resume: %+v %v, want low and maxWidth 640", st, err)
	}
	noNote(t, host, "participant.left", nil, 10*time.Millisecond)
	noNote(t, host, "participant.joined", nil, 10*time.Millisecond)
	// Counted in pion's state callback, which may come after the media.
	restarted := ts.Metrics.Resume.ICERestarts.WithLabelValues("subscriber", "connected")
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(restarted) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := testutil.ToFloat64(restarted); n != 1 {
		t.Errorf("ice_restarts_total{subscriber,connected} = %v", n)
	}
}

func ufragOf(sdp string) string {
	for _, l := range strings.Split(sdp, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(l), "a=ice-ufrag:"); ok {
			return u
		}
	}
	return ""
}

// resumeRaw opens a raw socket resuming rt with token tok.
func (ts *testServer) resumeRaw(t *testing.T, tok, rt string) *rawConn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(ts.wsURL(tok)+"&resume="+rt, nil)
	if err != nil {
		t.Fatalf("dial with resume=: %v (%v)", err, resp)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, Conn: c}
}

// joinResult11 decodes a 1.1 join result's resume fields.
type joinResult11 struct {
	SessionID   string `json:"sessionId"`
	ResumeToken string `json:"resumeToken"`
	Resumed     bool   `json:"resumed"`
	Seq         uint64 `json:"seq"`
	Gap         bool   `json:"gap"`
}

func decodeJoin(t *testing.T, m map[string]json.RawMessage) joinResult11 {
	t.Helper()
	var r joinResult11
	if err := json.Unmarshal(m["result"], &r); err != nil {
		t.Fatalf("join result %s: %v", m["result"], err)
	}
	return r
}

// seqOf returns a frame's params.seq (0: none).
func seqOf(m map[string]json.RawMessage) uint64 {
	var p struct {
		Seq uint64 `json:"seq"`
	}
	_ = json.Unmarshal(m["params"], &p)
	return p.Seq
}

// The wire of a resume, over raw sockets: chat messages numbered 1..5,
// the last two while held; a lastSeq past the session's is -32602 and the
// session stays held; a resume with lastSeq 2 gets, right after its
// result (seq 5, gap false), exactly seq 3, 4, 5, then new ones (6). A
// resume while the old socket is still open closes it 1000 "resumed".
// Another identity's token, and the used one, join fresh.
func TestResumeReplayOverTheWire(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "r1", "host")
	tok := ts.token(t, "bob", "r1", "viewer")
	bob := ts.dialRaw(t, tok)
	first := decodeJoin(t, joinFirst(t, bob, `{"version":"1.1"}`))
	chat := func(text string) {
		if _, err := host.SendChat(ctx, text); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		chat(fmt.Sprint("m", i))
	}
	var seen []uint64
	for _, f := range bob.frames(500 * time.Millisecond) {
		if s := seqOf(f); s != 0 {
			seen = append(seen, s)
		}
	}
	if fmt.Sprint(seen) != "[1 2 3]" {
		t.Fatalf("bob got seqs %v", seen)
	}
	_ = bob.Close() // dropped
	time.Sleep(100 * time.Millisecond)
	chat("m4")
	chat("m5")

	again := ts.resumeRaw(t, tok, first.ResumeToken)
	r := again.send(`{"jsonrpc":"2.0","id":1,"method":"join","params":{"version":"1.1","lastSeq":9}}`)
	wantError(t, r, CodeInvalidParams, "1")
	if n := testutil.ToFloat64(ts.Metrics.Resume.Outcomes.WithLabelValues("bad_seq")); n != 1 {
		t.Errorf("resumes_total{bad_seq} = %v", n)
	}
	res := decodeJoin(t, joinFirst(t, again, `{"version":"1.1","lastSeq":2}`))
	if !res.Resumed || res.SessionID != first.SessionID || res.Seq != 5 || res.Gap || res.ResumeToken == first.ResumeToken {
		t.Fatalf("resume result %+v (first %+v)", res, first)
	}
	chat("m6")
	var got []string
	for _, f := range again.readN(4) {
		var m string
		_ = json.Unmarshal(f["method"], &m)
		got = append(got, fmt.Sprintf("%s/%d", m, seqOf(f)))
	}
	if want := "[chat.message/3 chat.message/4 chat.message/5 chat.message/6]"; fmt.Sprint(got) != want {
		t.Fatalf("after the result: %v, want %s", got, want)
	}

	// Resuming while the socket is still open: it closes 1000 "resumed".
	third := ts.resumeRaw(t, tok, res.ResumeToken)
	res3 := decodeJoin(t, joinFirst(t, third, `{"version":"1.1","lastSeq":6}`))
	if !res3.Resumed || res3.Seq != 6 {
		t.Fatalf("resume of an open session: %+v", res3)
	}
	_ = again.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := again.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != 1000 || ce.Text != "resumed" {
				t.Fatalf("the old socket closed %d %q", ce.Code, ce.Text)
			}
			break
		}
		if err != nil {
			t.Fatalf("the old socket: %v", err)
		}
	}

	// Another identity's resume token, and a used one: fresh joins.
	carol := ts.resumeRaw(t, ts.token(t, "carol", "r1", "viewer"), res3.ResumeToken)
	if r := decodeJoin(t, joinFirst(t, carol, `{"version":"1.1","lastSeq":6}`)); r.Resumed || r.SessionID == first.SessionID {
		t.Fatalf("carol with bob's token: %+v", r)
	}
	used := ts.resumeRaw(t, tok, res.ResumeToken)
	if r := decodeJoin(t, joinFirst(t, used, `{"version":"1.1","lastSeq":6}`)); r.Resumed || r.Seq != 0 {
		t.Fatalf("a used token: %+v", r)
	}
}

// A held host not back within the grace ends as today: its viewers get
// track.unpublished, participant.left and the room ended host_timeout;
// a resume after that gets 4009 (resume= never starts a broadcast).
func TestHoldGraceExpires(t *testing.T) {
	ts := newTestServer(t, withGrace(1500*time.Millisecond))
	host, _ := ts.join11(t, "alice", "r1", "host")
	publish(t, host)
	video := ownTrack(t, host, "alice", "video")
	viewer, _ := ts.join11(t, "bob", "r1", "viewer")
	receiving(t, viewer, "video", 10)
	host.DropSocket()
	heldSeen(t, viewer, video.ID)
	noNote(t, viewer, "participant.left", nil, time.Second) // still held
	waitNote(t, viewer, "track.unpublished", nil)
	waitNote(t, viewer, "participant.left", nil)
	n := waitNote(t, viewer, "room.updated", roomStatusIs("ended"))
	if !strings.Contains(string(n.Params), `"endReason":"host_timeout"`) {
		t.Errorf("ended: %s", n.Params)
	}
	_, err := host.Resume(testCtx(t), client.ResumeOptions{})
	if client.ErrorCode(err) != CodeConflict {
		t.Fatalf("resume after the grace: %v, want 4009", err)
	}
	if n := testutil.ToFloat64(ts.Metrics.Resume.Outcomes.WithLabelValues("expired")); n != 1 {
		t.Errorf("resumes_total{expired} = %v", n)
	}
}

// 1.0 sessions are not held: a 1.0 viewer's dropped socket is a leave at
// once, and its resume= join is a fresh one.
func TestNoHoldFor10(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join11(t, "alice", "r1", "host")
	viewer, _ := ts.join(t, "bob", "r1", "viewer")
	waitNote(t, host, "participant.joined", nil)
	viewer.DropSocket()
	waitNote(t, host, "participant.left", nil)
	if n := testutil.ToFloat64(ts.Metrics.Resume.Holds); n != 0 {
		t.Errorf("holds_total = %v", n)
	}
}

// A relay source's hold: the relay and its destination stay running with
// no relay.state; the source gets src_reconnecting (100, in the replay)
// and src_resumed (101) after the result; the destination's 1.1 viewer
// sees the copy paused publisher_reconnecting then active, and video
// again; no one there sees the relay participant leave.
func TestResumeRelaySource(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"alice": {"B"}}))
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "A", "host")
	publish(t, host)
	ts.join(t, "host-B", "B", "host")
	destB, _ := ts.join11(t, "viewer-B", "B", "viewer")
	if err := host.Call(ctx, "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B")}, nil); err != nil {
		t.Fatal(err)
	}
	waitNote(t, host, "relay.state", relayState("connecting"))
	waitNote(t, host, "relay.state", relayState("running"))
	copyEv, err := client.WaitEvent(ctx, destB, client.NotifyTrackPublished, func(ev client.TrackEvent) bool { return ev.Track.Kind == "video" })
	if err != nil {
		t.Fatal(err)
	}
	tr := receiving(t, destB, "video", 20)

	host.DropSocket()
	waitNote(t, destB, "track.stream", streamNote(copyEv.Track.ID, "paused", "publisher_reconnecting"))
	if _, err := host.Resume(ctx, client.ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNote(t, host, "relay.event", relayEvent(100, ""))
	n := waitNote(t, host, "relay.event", relayEvent(101, ""))
	if n.Seq == 0 {
		t.Error("src_resumed without a seq")
	}
	activeAgain(t, destB, copyEv.Track.ID)
	flowsAgain(t, tr, tr.Keyframes(), tr.Packets(), 5*time.Second)
	noNote(t, host, "relay.state", nil, 10*time.Millisecond)
	noNote(t, destB, "participant.left", nil, 10*time.Millisecond)
	info, err := ts.admin(t).Relays(ctx)
	if err != nil || len(info) != 1 || info[0].State != "running" || info[0].Destinations[0].State != "running" {
		t.Fatalf("relays after the resume: %+v %v", info, err)
	}
}

// readN reads n frames (each within 5 s) and returns them decoded; it
// never times out a read it does not fail on, so the socket stays usable.
func (c *rawConn) readN(n int) []map[string]json.RawMessage {
	c.t.Helper()
	var out []map[string]json.RawMessage
	for len(out) < n {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			c.t.Fatalf("read %d of %d: %v", len(out)+1, n, err)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			c.t.Fatalf("server sent non-JSON %q", b)
		}
		out = append(out, m)
	}
	return out
}

// A held session that is kicked ends at once (1.1 §7): the others see it
// leave, and its resume joins fresh.
func TestHeldSessionKicked(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "r1", "host")
	viewer, _ := ts.join11(t, "bob", "r1", "viewer")
	waitNote(t, host, "participant.joined", nil)
	viewer.DropSocket()
	noNote(t, host, "participant.left", nil, 300*time.Millisecond) // held
	if err := ts.admin(t).KickParticipant(ctx, "r1", "bob", false); err != nil {
		t.Fatal(err)
	}
	waitNote(t, host, "participant.left", nil)
	if res, err := viewer.Resume(ctx, client.ResumeOptions{}); err != nil || res.Resumed {
		t.Fatalf("the kicked session's resume: %+v %v, want a fresh join", res, err)
	}
	if n := testutil.ToFloat64(ts.Metrics.Resume.Outcomes.WithLabelValues("ended")); n != 1 {
		t.Errorf("resumes_total{ended} = %v", n)
	}
}

// A co-host held keeps its stage seat and tracks: its viewer sees its
// video paused then active, the room stays live (only a host's hold makes
// it waiting_reconnect), and the co-host publishes after the resume
// without an invitation again.
func TestResumeCohostKeepsStage(t *testing.T) {
	ts := newTestServer(t, withCohosts(map[string][]string{"carol": {"r1"}}))
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "r1", "host")
	publish(t, host)
	waitNote(t, host, "room.updated", roomStatusIs("live"))
	inv, err := host.CreateInvitation(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	co, _ := ts.join11(t, "carol", "r1", "viewer")
	if _, err := co.AcceptInvitation(ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	waitNote(t, co, "participant.updated", func(p json.RawMessage) bool { return strings.Contains(string(p), `"cohost"`) })
	publish(t, co)
	video := ownTrack(t, co, "carol", "video")
	viewer, vres := ts.join11(t, "bob", "r1", "viewer")
	if !strings.Contains(fmt.Sprint(vres.Tracks), video.ID) {
		t.Fatalf("the viewer's join result has no %s: %+v", video.ID, vres.Tracks)
	}

	co.DropSocket()
	waitNote(t, viewer, "track.stream", streamNote(video.ID, "paused", "publisher_reconnecting"))
	res, err := co.Resume(ctx, client.ResumeOptions{})
	if err != nil || !res.Resumed || res.Participant.Role != "cohost" {
		t.Fatalf("the co-host's resume: %+v %v", res, err)
	}
	activeAgain(t, viewer, video.ID)
	noNote(t, viewer, "room.updated", roomStatusIs("waiting_reconnect"), 10*time.Millisecond)
	noNote(t, viewer, "participant.updated", nil, 10*time.Millisecond)
	noNote(t, viewer, "track.unpublished", nil, 10*time.Millisecond)
}

// nextOffer reads frames until a server "offer" request and returns its
// id and SDP.
func (c *rawConn) nextOffer() (json.RawMessage, string) {
	c.t.Helper()
	for {
		f := c.readN(1)[0]
		var m string
		_ = json.Unmarshal(f["method"], &m)
		if m != "offer" {
			continue
		}
		var p struct {
			SDP string `json:"sdp"`
		}
		if err := json.Unmarshal(f["params"], &p); err != nil || f["id"] == nil {
			c.t.Fatalf("offer %v", f)
		}
		return f["id"], p.SDP
	}
}

// A session whose subscriber offer was still unanswered when its socket
// went: pion cannot restart ICE over it, so the resume sends that offer
// again right after the replay, and the restart's offer (new ufrag)
// follows its answer.
func TestResumeWithAnOfferOut(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join11(t, "alice", "r1", "host")
	publish(t, host)
	waitNote(t, host, "room.updated", roomStatusIs("live"))
	tok := ts.token(t, "bob", "r1", "viewer")
	bob := ts.dialRaw(t, tok)
	first := decodeJoin(t, joinFirst(t, bob, `{"version":"1.1"}`))
	_, sdp1 := bob.nextOffer() // never answered
	_ = bob.Close()
	time.Sleep(200 * time.Millisecond)

	again := ts.resumeRaw(t, tok, first.ResumeToken)
	if r := decodeJoin(t, joinFirst(t, again, `{"version":"1.1","lastSeq":0}`)); !r.Resumed {
		t.Fatalf("resume %+v", r)
	}
	id, sdp2 := again.nextOffer()
	if ufragOf(sdp2) != ufragOf(sdp1) {
		t.Fatalf("the offer after the resume is not the one out (ufrag %q, was %q)", ufragOf(sdp2), ufragOf(sdp1))
	}
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp2}); err != nil {
		t.Fatal(err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]string{"sdp": answer.SDP}})
	if err := again.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	_, sdp3 := again.nextOffer()
	if u := ufragOf(sdp3); u == "" || u == ufragOf(sdp1) {
		t.Fatalf("the offer after the answer kept the ufrag %q: no ICE restart", u)
	}
}

// More notifications while held than the replay keeps: the resume says
// gap, and replays the last 1024 (at least 1000) in order.
func TestResumeGap(t *testing.T) {
	ts := newTestServer(t)
	ts.join11(t, "alice", "r1", "host")
	tok := ts.token(t, "bob", "r1", "viewer")
	bob := ts.dialRaw(t, tok)
	first := decodeJoin(t, joinFirst(t, bob, `{"version":"1.1"}`))
	_ = bob.Close()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(ts.Metrics.Resume.Holds) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not held")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 1100 {
		ts.Srv.Broadcast("server.draining", map[string]any{"deadline": time.Now().Add(time.Duration(i) * time.Second).UTC()})
	}
	again := ts.resumeRaw(t, tok, first.ResumeToken)
	res := decodeJoin(t, joinFirst(t, again, `{"version":"1.1","lastSeq":0}`))
	if !res.Resumed || !res.Gap || res.Seq != 1100 {
		t.Fatalf("resume after 1100 notifications: %+v", res)
	}
	frames := again.readN(replayKeep)
	if s := seqOf(frames[0]); s != res.Seq-replayKeep+1 {
		t.Fatalf("the replay starts at seq %d, want %d", s, res.Seq-replayKeep+1)
	}
	for i, f := range frames {
		if s := seqOf(f); s != res.Seq-replayKeep+1+uint64(i) {
			t.Fatalf("replay frame %d has seq %d", i, s)
		}
	}
}

// viewerTracks returns identity's tracks in room, from the HTTP API.
func viewerTracks(t *testing.T, ts *testServer, room, identity string) []client.Track {
	t.Helper()
	r, err := ts.admin(t).Room(testCtx(t), room)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Participants {
		if p.Identity == identity {
			return p.Tracks
		}
	}
	t.Fatalf("%s is not in %s", identity, room)
	return nil
}
