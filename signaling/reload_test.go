package signaling

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/client"
)

// A 1.1 host's page reloads mid-broadcast: its socket and both its
// PeerConnections close. The new page resumes with the resume token,
// makes new PCs and offers its tracks again (a new DTLS certificate):
// the server gives that offer a new publisher PC whose tracks become the
// sources of the same tracks, and offers the new page a new subscriber
// PC. The viewer sees no participant.left nor track.unpublished, is told
// paused then active, and gets video again on the same track (the same
// SSRC) with its sequence numbers and timestamps continuing.
func TestResumeReloadedHost(t *testing.T) {
	ts := newTestServer(t, withGrace(20*time.Second))
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "r1", "host")
	publish(t, host)
	video := ownTrack(t, host, "alice", "video")
	ownTrack(t, host, "alice", "audio") // both in the viewer's join result
	waitNote(t, host, "room.updated", roomStatusIs("live"))
	viewer, _ := ts.join11(t, "v11", "r1", "viewer")
	tr := receiving(t, viewer, "video", 20)
	audio := receiving(t, viewer, "audio", 20)
	waitNote(t, host, "participant.joined", nil)
	if tr.TrackID != video.ID {
		t.Fatalf("the viewer's video is %s, published %s", tr.TrackID, video.ID)
	}
	ssrc := tr.Remote().SSRC()

	// The reload: the page's socket and PCs close at once.
	host.DropSocket()
	_ = host.PublisherPC().Close()
	if sub := host.SubscriberPC(); sub != nil {
		_ = sub.Close()
	}
	heldSeen(t, viewer, video.ID)
	time.Sleep(300 * time.Millisecond) // the old PCs' close reaches the server
	k, p := tr.Keyframes(), tr.Packets()
	heldAt := time.Now()

	got, err := host.Resume(ctx, client.ResumeOptions{Reloaded: true})
	if err != nil || !got.Resumed {
		t.Fatalf("resume: %+v %v", got, err)
	}
	pub, err := client.NewSyntheticPublisher(client.PublisherOptions{KeyframeInterval: -1, BitrateBps: 300_000})
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Publish(ctx, pub.Tracks()...); err != nil {
		t.Fatalf("the reloaded page's publish: %v", err)
	}
	pub.Start()
	t.Cleanup(pub.Stop)

	activeAgain(t, viewer, video.ID)
	flowsAgain(t, tr, k, p, 5*time.Second)
	ap := audio.Packets()
	for deadline := time.Now().Add(5 * time.Second); audio.Packets() < ap+20; {
		if time.Now().After(deadline) {
			t.Fatalf("audio did not come back: %d packets", audio.Packets()-ap)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if tr.IsEnded() || tr.Remote().SSRC() != ssrc {
		t.Errorf("the viewer's video track ended or changed SSRC (%d, was %d)", tr.Remote().SSRC(), ssrc)
	}
	// The outgoing numbers continue: no sequence step but of lost
	// packets (none on loopback: a handful at most), no timestamp step
	// beyond the time the host was away (90 kHz) and a second.
	seqStep, tsStep := tr.Steps()
	away := time.Since(heldAt) + time.Second
	if seqStep > 50 || tsStep > int64(away.Seconds()*90000) {
		t.Errorf("the viewer's video numbers jumped: sequence by %d, timestamp by %d (away %v)", seqStep, tsStep, away)
	}
	if s, ts := audio.Steps(); s > 50 || ts > int64(away.Seconds()*48000) {
		t.Errorf("the viewer's audio numbers jumped: sequence by %d, timestamp by %d", s, ts)
	}
	noNote(t, viewer, "participant.left", nil, 10*time.Millisecond)
	noNote(t, viewer, "track.unpublished", nil, 10*time.Millisecond)
	noNote(t, viewer, "track.published", func(p json.RawMessage) bool { return strings.Contains(string(p), `"alice"`) }, 10*time.Millisecond)

	// The same two tracks, and the host's new subscriber PC connected.
	room, err := ts.admin(t).Room(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range room.Participants {
		if q.Identity != "alice" {
			continue
		}
		if len(q.Tracks) != 2 || (q.Tracks[0].ID != video.ID && q.Tracks[1].ID != video.ID) {
			t.Errorf("alice's tracks after the reload: %+v (video was %s)", q.Tracks, video.ID)
		}
	}
	if n := testutil.ToFloat64(ts.Metrics.Resume.PCReplaced.WithLabelValues("publisher")); n != 1 {
		t.Errorf("relayd_pc_replaced_total{publisher} = %v", n)
	}
	// The new subscriber PC: the viewer publishes nothing, so it is
	// offered with no tracks; it is a new PC, answered.
	if sub := host.SubscriberPC(); sub != nil && sub.RemoteDescription() == nil {
		t.Errorf("the reloaded page's subscriber PC has no offer")
	}
}

// A 1.1 viewer's page reloads: its socket and PCs close; the new page
// resumes and has no PCs. relayd's resume offer reaches a new subscriber
// PC (with the same tracks: the same track ids), which receives video
// again; the host sees no participant.left.
func TestResumeReloadedViewer(t *testing.T) {
	ts := newTestServer(t, withGrace(20*time.Second))
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "r1", "host")
	publish(t, host)
	video := ownTrack(t, host, "alice", "video")
	viewer, _ := ts.join11(t, "v11", "r1", "viewer")
	old := receiving(t, viewer, "video", 20)
	oldPC := viewer.SubscriberPC()
	waitNote(t, host, "participant.joined", nil)

	viewer.DropSocket()
	_ = oldPC.Close()
	time.Sleep(300 * time.Millisecond)
	got, err := viewer.Resume(ctx, client.ResumeOptions{Reloaded: true})
	if err != nil || !got.Resumed {
		t.Fatalf("resume: %+v %v", got, err)
	}
	tr, err := viewer.WaitTrack(ctx, "video", func(r *client.RemoteTrack) bool { return r != old && r.TrackID == video.ID })
	if err != nil {
		t.Fatalf("no video on the reloaded page's new PC: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); tr.Packets() < 20 || tr.Keyframes() == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the new PC's video: %d packets, %d keyframes", tr.Packets(), tr.Keyframes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pc := viewer.SubscriberPC(); pc == nil || pc == oldPC || pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		t.Errorf("the reloaded page's subscriber PC: %v", pc)
	}
	noNote(t, host, "participant.left", nil, 10*time.Millisecond)
	if n := testutil.ToFloat64(ts.Metrics.Resume.PCReplaced.WithLabelValues("subscriber")); n != 1 {
		t.Errorf("relayd_pc_replaced_total{subscriber} = %v", n)
	}
}

// A simulcast host's page reloads: the new page's simulcast track (the
// same rids) takes over the track's layers by rid; the viewer gets video
// again on the same track, its numbers continuing.
func TestResumeReloadedSimulcastHost(t *testing.T) {
	ts := newTestServer(t, withGrace(20*time.Second))
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "r1", "host")
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	layers := []client.SimulcastLayer{{RID: "q", MaxBitrate: 150_000}, {RID: "h"}, {RID: "f"}}
	st, err := client.NewSimulcastTrack(vp8, "video", "alice", layers...)
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Publish(ctx, st.Tracks()...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	sendLayers(t, st)
	video := ownTrack(t, host, "alice", "video")
	viewer, _ := ts.join11(t, "v11", "r1", "viewer")
	tr := receiving(t, viewer, "video", 20)

	host.DropSocket()
	_ = host.PublisherPC().Close()
	heldSeen(t, viewer, video.ID)
	time.Sleep(300 * time.Millisecond)
	k, p := tr.Keyframes(), tr.Packets()
	heldAt := time.Now()
	if got, err := host.Resume(ctx, client.ResumeOptions{Reloaded: true}); err != nil || !got.Resumed {
		t.Fatalf("resume: %+v %v", got, err)
	}
	st2, err := client.NewSimulcastTrack(vp8, "video", "alice", layers...)
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Publish(ctx, st2.Tracks()...); err != nil {
		t.Fatalf("the reloaded page's publish: %v", err)
	}
	sendLayers(t, st2)
	activeAgain(t, viewer, video.ID)
	flowsAgain(t, tr, k, p, 5*time.Second)
	if seq, step := tr.Steps(); seq > 50 || step > int64((time.Since(heldAt)+time.Second).Seconds()*90000) {
		t.Errorf("the viewer's video numbers jumped: sequence by %d, timestamp by %d", seq, step)
	}
	noNote(t, viewer, "track.unpublished", nil, 10*time.Millisecond)
	room, err := ts.admin(t).Room(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range room.Participants {
		if q.Identity == "alice" && (len(q.Tracks) != 1 || q.Tracks[0].ID != video.ID || len(q.Tracks[0].Layers) != 3) {
			t.Errorf("alice's tracks after the reload: %+v (video was %s)", q.Tracks, video.ID)
		}
	}
}

// activeAgain waits for the viewer's track.stream "active" for track id
// after its publisher's hold: named publisher_reconnecting, or bandwidth
// when the viewer's own downlink cause began meanwhile and ended last
// (a loaded machine's estimator may do that; the rule names the last
// cause to end). On a timeout it says every track.stream the viewer had.
func activeAgain(t *testing.T, viewer *client.Client, id string) {
	t.Helper()
	seen := map[string]bool{}
	_, err := viewer.WaitNotification(testCtx(t), "track.stream", func(p json.RawMessage) bool {
		seen[string(p)] = true
		return streamNote(id, "active", "publisher_reconnecting")(p) || streamNote(id, "active", "bandwidth")(p)
	})
	if err != nil {
		t.Fatalf("waiting for track.stream active for %s: %v; track.stream notes not taken: %v", id, err, seen)
	}
}
