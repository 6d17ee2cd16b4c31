package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/sfu"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects and joins a client of the contract.
func (ts *testServer) join(t *testing.T, identity, room, role string, opts ...client.Options) (*client.Client, *client.JoinResult) {
	t.Helper()
	var o client.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c, err := client.Dial(testCtx(t), ts.URL, ts.token(t, identity, room, role), o)
	if err != nil {
		t.Fatalf("dial %s: %v", identity, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	res, err := c.Join(testCtx(t))
	if err != nil {
		t.Fatalf("join %s: %v", identity, err)
	}
	return c, res
}

// publish starts a synthetic VP8 + Opus publisher on c. With only the
// first keyframe and those asked for (KeyframeInterval -1), a subscriber
// that starts at a keyframe proves the SFU asked for one.
func publish(t *testing.T, c *client.Client) *client.SyntheticPublisher {
	t.Helper()
	pub, err := client.NewSyntheticPublisher(client.PublisherOptions{KeyframeInterval: -1, BitrateBps: 300_000})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(testCtx(t), pub.Tracks()...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	pub.Start()
	t.Cleanup(pub.Stop)
	return pub
}

// receiving waits until c gets at least n packets of a track of kind.
func receiving(t *testing.T, c *client.Client, kind string, n int) *client.RemoteTrack {
	t.Helper()
	ctx := testCtx(t)
	tr, err := c.WaitTrack(ctx, kind, nil)
	if err != nil {
		t.Fatalf("no %s track: %v", kind, err)
	}
	for tr.Packets() < n {
		if ctx.Err() != nil {
			t.Fatalf("%s: %d packets, want %d", kind, tr.Packets(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return tr
}

func waitNote(t *testing.T, c *client.Client, method string, match func(json.RawMessage) bool) client.Notification {
	t.Helper()
	n, err := c.WaitNotification(testCtx(t), method, match)
	if err != nil {
		t.Fatalf("waiting for %s: %v", method, err)
	}
	return n
}

func roomStatusIs(status string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev struct {
			Room struct {
				Status string `json:"status"`
			} `json:"room"`
		}
		return json.Unmarshal(p, &ev) == nil && ev.Room.Status == status
	}
}

// A host publishes VP8 + Opus; two viewers present from the start and one
// joining late receive both; the late viewer's first video frame is a
// keyframe.
func TestPublishSubscribe(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	v1, _ := ts.join(t, "v1", "r1", "viewer")
	v2, _ := ts.join(t, "v2", "r1", "viewer")
	pub := publish(t, host)

	waitNote(t, host, "room.updated", roomStatusIs("live"))
	for _, v := range []*client.Client{v1, v2} {
		waitNote(t, v, "track.published", nil)
		receiving(t, v, "video", 50)
		receiving(t, v, "audio", 20)
	}
	plisBefore := pub.PLIsReceived()
	keyframesBefore := pub.KeyframesSent()
	replaysBefore := testutil.ToFloat64(ts.Metrics.KeyframeReplays)

	late, res := ts.join(t, "v3", "r1", "viewer")
	if len(res.Tracks) != 2 || res.Room == nil || res.Room.Status != "live" {
		t.Fatalf("late join: tracks %v room %+v", res.Tracks, res.Room)
	}
	vt := receiving(t, late, "video", 30)
	at := receiving(t, late, "audio", 10)
	if !vt.FirstFrameKeyframe() {
		t.Error("the late viewer's first video frame is not a keyframe")
	}
	// It started from the newest cached keyframe (sfu.DownTrack.replay) or
	// from one the SFU asked the publisher for.
	replayed := testutil.ToFloat64(ts.Metrics.KeyframeReplays) > replaysBefore
	asked := pub.PLIsReceived() > plisBefore && pub.KeyframesSent() > keyframesBefore
	if !replayed && !asked {
		t.Errorf("late viewer: no keyframe replayed and none asked for: PLIs %d -> %d", plisBefore, pub.PLIsReceived())
	}
	ids := map[string]string{}
	for _, tr := range res.Tracks {
		if tr.Participant != "alice" {
			t.Errorf("track %s of %q, want alice", tr.ID, tr.Participant)
		}
		ids[tr.Kind] = tr.ID
	}
	for _, tr := range []*client.RemoteTrack{vt, at} {
		if tr.StreamID != "alice" || tr.TrackID != ids[tr.Kind] {
			t.Errorf("%s msid %s %s, want alice %s", tr.Kind, tr.StreamID, tr.TrackID, ids[tr.Kind])
		}
	}
	if lat := vt.Latency().Percentile(0.99); lat <= 0 || lat > time.Second {
		t.Errorf("p99 latency %v", lat)
	}
}

// A viewer's offer is refused with 4003 and nothing changes: no track, the
// viewer still connected, the host's stream untouched.
func TestViewerCannotPublish(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	publish(t, host)
	viewer, _ := ts.join(t, "bob", "r1", "viewer")
	receiving(t, viewer, "video", 10)

	vpub, err := client.NewSyntheticPublisher(client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = viewer.Publish(testCtx(t), vpub.Tracks()...)
	if client.ErrorCode(err) != CodeForbidden {
		t.Fatalf("viewer publish: %v, want 4003", err)
	}
	info := ts.SFU.Room("r1").Info(true)
	if len(info.Participants) != 2 {
		t.Fatalf("participants %d, want 2", len(info.Participants))
	}
	for _, p := range info.Participants {
		if p.Identity == "bob" && (len(p.Tracks) != 0 || p.Role != sfu.RoleViewer) {
			t.Fatalf("viewer changed: %+v", p)
		}
	}
	before := receiving(t, viewer, "video", 1).Packets()
	receiving(t, viewer, "video", before+20) // still receiving the host
	if err := viewer.Call(testCtx(t), "trickle", map[string]any{"target": "subscriber", "candidate": nil}, nil); err != nil {
		t.Fatalf("viewer's session unusable after 4003: %v", err)
	}
}

// The host leaves: every viewer gets track.unpublished for both tracks, then
// participant.left; the room waits for the host, then ends after the grace,
// and the viewers' sockets close with 1000.
func TestHostLeaveThenGraceEnds(t *testing.T) {
	ts := newTestServer(t, withGrace(400*time.Millisecond))
	host, _ := ts.join(t, "alice", "r1", "host")
	publish(t, host)
	viewer, _ := ts.join(t, "bob", "r1", "viewer")
	receiving(t, viewer, "video", 10)

	if err := host.Leave(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for len(kinds) < 2 {
		n := waitNote(t, viewer, "track.unpublished", nil)
		var ev struct{ Track client.Track }
		_ = json.Unmarshal(n.Params, &ev)
		kinds[ev.Track.Kind] = true
	}
	waitNote(t, viewer, "participant.left", nil)
	waitNote(t, viewer, "room.updated", roomStatusIs("waiting_reconnect"))
	waitNote(t, viewer, "room.updated", roomStatusIs("ended"))
	select {
	case <-viewer.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("viewer socket not closed after the room ended")
	}
	if code := viewer.CloseCode(); code != 1000 {
		t.Errorf("close code %d, want 1000", code)
	}
	if st := ts.SFU.Room("r1").Status(); st != sfu.StatusEnded {
		t.Errorf("status %s", st)
	}
}

// The host's socket goes away without leave: waiting_reconnect; the host
// comes back within the grace and publishes: live again, nothing ended.
func TestHostVanishesAndComesBack(t *testing.T) {
	ts := newTestServer(t, withGrace(3*time.Second))
	host, _ := ts.join(t, "alice", "r1", "host")
	publish(t, host)
	viewer, _ := ts.join(t, "bob", "r1", "viewer")
	receiving(t, viewer, "video", 10)

	_ = host.Close() // no leave
	waitNote(t, viewer, "room.updated", roomStatusIs("waiting_reconnect"))
	host2, res := ts.join(t, "alice", "r1", "host")
	if res.Room.Status != "waiting_reconnect" {
		t.Errorf("rejoin status %s", res.Room.Status)
	}
	publish(t, host2)
	waitNote(t, viewer, "room.updated", roomStatusIs("live"))
	time.Sleep(3500 * time.Millisecond) // past the grace: must not end
	if st := ts.SFU.Room("r1").Status(); st != sfu.StatusLive {
		t.Fatalf("status %s after the grace, want live", st)
	}
}

func TestHostVanishesRoomEnds(t *testing.T) {
	ts := newTestServer(t, withGrace(300*time.Millisecond))
	host, _ := ts.join(t, "alice", "r1", "host")
	publish(t, host)
	viewer, _ := ts.join(t, "bob", "r1", "viewer")
	receiving(t, viewer, "video", 5)
	_ = host.Close()
	waitNote(t, viewer, "room.updated", roomStatusIs("waiting_reconnect"))
	waitNote(t, viewer, "room.updated", roomStatusIs("ended"))
	code, body := httpDo(t, "GET", ts.URL+"/v1/rooms/r1", ts.adminToken(t), "")
	if code != 200 || body["status"] != "ended" || body["endedAt"] == nil {
		t.Fatalf("room after grace: %d %v", code, body)
	}
}

// Packets dropped on purpose between the SFU and a subscriber are NACKed
// and answered from the up track's cache: the publisher sees no NACK.
func TestNACKAnsweredFromCache(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	pub := publish(t, host)
	viewer, _ := ts.join(t, "bob", "r1", "viewer", client.Options{
		ReceiveDrop: func(seq uint16) bool { return seq%17 == 5 },
	})
	receiving(t, viewer, "video", 300)
	ctx := testCtx(t)
	for viewer.Recovered() < 5 {
		if ctx.Err() != nil {
			t.Fatalf("recovered %d of %d dropped", viewer.Recovered(), viewer.DroppedOnPurpose())
		}
		time.Sleep(20 * time.Millisecond)
	}
	hits := testutil.ToFloat64(ts.Metrics.Retransmits.WithLabelValues("hit"))
	if hits < 5 {
		t.Errorf("retransmissions served from the cache: %v", hits)
	}
	if n := pub.NACKsReceived(); n != 0 {
		t.Errorf("the publisher got %d NACKs: subscriber losses must be served by the SFU", n)
	}
}

func TestRoomStop(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	viewer, _ := ts.join(t, "bob", "r1", "viewer")
	if err := viewer.Call(testCtx(t), "room.stop", map[string]any{}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Fatalf("viewer room.stop: %v", err)
	}
	if err := host.Call(testCtx(t), "room.stop", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	waitNote(t, viewer, "room.updated", roomStatusIs("ended"))
	for _, c := range []*client.Client{host, viewer} {
		select {
		case <-c.Closed():
		case <-time.After(5 * time.Second):
			t.Fatal("socket not closed after room.stop")
		}
	}
	c, err := client.Dial(testCtx(t), ts.URL, ts.token(t, "carol", "r1", "viewer"), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var rpcErr *client.RPCError
	if _, err := c.Join(testCtx(t)); !errors.As(err, &rpcErr) || rpcErr.Code != CodeConflict {
		t.Fatalf("join ended room: %v", err)
	}
}
