package relay

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaysfu/relayd/sfu"
)

// swapRoom rewrites the room of the per-destination notes, so that two
// sequences of different destinations compare.
func swapRoom(seq []string, from, to string) []string {
	out := make([]string, len(seq))
	for i, s := range seq {
		out[i] = strings.TrimSuffix(s, " "+from)
		if out[i] != s {
			out[i] += " " + to
		}
	}
	return out
}

func sameSeq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func destInfo(r *Relay, room string) DestInfo {
	for _, d := range r.Info().Destinations {
		if d.Room == room {
			return d
		}
	}
	return DestInfo{}
}

// A relay a -> b, b on the other node: b's viewer gets the media, the
// source gets the notifications of a local destination, in that order; a
// PLI of b's viewer reaches the publisher; stop takes the relay out of b.
func TestRemoteRelayLikeLocal(t *testing.T) {
	c := newTestCluster()
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	lc := n1.room(t, c, "c", "alice")
	b := n2.room(t, c, "b", "alice")
	pub := publish(t, a, "alice")
	vc := watch(t, lc, "viewer-c")
	vb := watch(t, b, "viewer-b")

	want := []string{"state connecting/1 error none/0", "event 2 ", "event 3 c", "state running/2 error none/0", "event 4 c"}
	var ln notes
	r := startRelay(t, n1.mgr, pub.p, &ln, "c")
	sameSeq(t, "local relay", ln.wait(t, "event 4 c"), want)
	vc.receiving("video", "alice", 20)
	r.Stop()
	ln.wait(t, "state idle/0 error none/0")

	var rn notes
	r = startRelay(t, n1.mgr, pub.p, &rn, "b")
	sameSeq(t, "remote relay", rn.wait(t, "event 4 b"), swapRoom(want, "c", "b"))
	vt := vb.receiving("video", "alice", 20)
	vb.receiving("audio", "alice", 10)
	j := vb.sawEvent("the relay participant", relayJoined).(sfu.ParticipantJoined)
	if j.Participant.Identity != "alice" || j.Participant.RelayFrom == nil || j.Participant.RelayFrom.Room != "a" {
		t.Errorf("relay participant in b: %+v", j.Participant)
	}
	if d := destInfo(r, "b"); d.State != "running" || d.Identity != "alice" {
		t.Errorf("destination b: %+v", d)
	}

	// b's viewer asks for a keyframe: the publisher in a gets the PLI.
	time.Sleep(600 * time.Millisecond) // past the keyframe throttle
	plis, keyframes := pub.pub.PLIsReceived(), pub.pub.KeyframesSent()
	if err := vb.sendPLI(vt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the PLI of b's viewer at the publisher", func() bool {
		return pub.pub.PLIsReceived() > plis && pub.pub.KeyframesSent() > keyframes
	})

	// Pause stops the packets to b; resume restarts them at a keyframe.
	if _, err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // what was in flight arrives
	before := vt.count()
	time.Sleep(500 * time.Millisecond)
	if got := vt.count(); got != before {
		t.Errorf("%d packets in b while paused", got-before)
	}
	keyframes = pub.pub.KeyframesSent()
	if _, err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	vb.receiving("video", "alice", before+20)
	if pub.pub.KeyframesSent() <= keyframes {
		t.Error("resume did not ask the source for a keyframe")
	}

	// Stop: track.unpublished, then participant.left in b.
	r.Stop()
	rn.wait(t, "state idle/0 error none/0")
	vb.sawEvent("the relayed track going", trackGone)
	vb.sawEvent("the relay participant leaving", relayLeft)
	waitFor(t, "b without the relay", func() bool { return len(b.Participants()) == 1 })
	select {
	case <-vt.ended:
	case <-time.After(5 * time.Second):
		t.Error("b's viewer still has the relayed video track")
	}
}

// Relays between two nodes, both ways, share one link; they
// stop and start again over it.
func TestRemoteRelaysShareOneLink(t *testing.T) {
	c := newTestCluster()
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a1, a2, y := n1.room(t, c, "a1", "alice"), n1.room(t, c, "a2", "bob"), n1.room(t, c, "y", "carol")
	b1, b2, x := n2.room(t, c, "b1", "alice"), n2.room(t, c, "b2", "bob"), n2.room(t, c, "x", "carol")
	alice, bob, carol := publish(t, a1, "alice"), publish(t, a2, "bob"), publish(t, x, "carol")
	vb1, vb2, vy := watch(t, b1, "v-b1"), watch(t, b2, "v-b2"), watch(t, y, "v-y")

	var na, nb, nc notes
	startRelay(t, n1.mgr, alice.p, &na, "b1")
	rb := startRelay(t, n1.mgr, bob.p, &nb, "b2")
	rc := startRelay(t, n2.mgr, carol.p, &nc, "y") // n2 -> n1: the answering side sends
	for _, w := range []struct {
		v      *testViewer
		stream string
	}{{vb1, "alice"}, {vb2, "bob"}, {vy, "carol"}} {
		w.v.receiving("video", w.stream, 20)
		w.v.receiving("audio", w.stream, 10)
	}
	if p1, p2 := n1.links.Up(), n2.links.Up(); p1 != 1 || p2 != 1 {
		t.Fatalf("links: n1 %d, n2 %d; want 1 each", p1, p2)
	}

	// Stop bob's and carol's relays: their viewers lose the tracks,
	// alice's goes on; start them again over the same link.
	rb.Stop()
	rc.Stop()
	vb2.sawEvent("bob's relay leaving b2", relayLeft)
	vy.sawEvent("carol's relay leaving y", relayLeft)
	v := vb1.receiving("video", "alice", 1)
	vb1.receiving("video", "alice", v.count()+20)

	var nb2, nc2 notes
	startRelay(t, n1.mgr, bob.p, &nb2, "b2")
	startRelay(t, n2.mgr, carol.p, &nc2, "y")
	nb2.wait(t, "event 4 b2")
	nc2.wait(t, "event 4 y")
	waitFor(t, "the relays again in b2 and y", func() bool {
		return len(b2.Participants()) == 2 && len(y.Participants()) == 2
	})
	for _, w := range []struct {
		v      *testViewer
		stream string
	}{{vb2, "bob"}, {vy, "carol"}} {
		var n int
		w.v.mu.Lock()
		for _, vt := range w.v.tracks {
			n = max(n, vt.count())
		}
		w.v.mu.Unlock()
		waitFor(t, "media again for "+w.stream, func() bool {
			w.v.mu.Lock()
			defer w.v.mu.Unlock()
			live := 0
			for _, vt := range w.v.tracks {
				select {
				case <-vt.ended:
				default:
					if vt.tr.StreamID() == w.stream && vt.count() >= 20 {
						live++
					}
				}
			}
			return live == 2 // audio and video
		})
	}
	if p1, p2 := n1.links.Up(), n2.links.Up(); p1 != 1 || p2 != 1 {
		t.Errorf("links after restarts: n1 %d, n2 %d; want 1 each", p1, p2)
	}
}

// Both nodes need the link at once: their hellos cross, one link.
func TestRemoteSimultaneousDials(t *testing.T) {
	for i := 0; i < 3; i++ {
		c := newTestCluster()
		n1 := c.newTestNode(t, "n1", nil)
		n2 := c.newTestNode(t, "n2", nil)
		a, y := n1.room(t, c, "a", "alice"), n1.room(t, c, "y", "carol")
		b, x := n2.room(t, c, "b", "alice"), n2.room(t, c, "x", "carol")
		alice, carol := publish(t, a, "alice"), publish(t, x, "carol")
		vb, vy := watch(t, b, "v-b"), watch(t, y, "v-y")
		var na, nc notes
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); startRelayAsync(n1.mgr, alice.p, &na, "b") }()
		go func() { defer wg.Done(); startRelayAsync(n2.mgr, carol.p, &nc, "y") }()
		wg.Wait()
		na.wait(t, "event 4 b")
		nc.wait(t, "event 4 y")
		vb.receiving("video", "alice", 20)
		vy.receiving("video", "carol", 20)
		if p1, p2 := n1.links.Up(), n2.links.Up(); p1 != 1 || p2 != 1 {
			t.Fatalf("round %d: links n1 %d, n2 %d; want 1 each", i, p1, p2)
		}
		n1.shutdown()
		n2.shutdown()
	}
}

func startRelayAsync(m *Manager, src *sfu.Participant, n *notes, room string) {
	r, err := m.Start(src, []Target{{Room: room, Identity: src.Identity()}}, n.notify)
	if err == nil {
		r.Begin()
	}
}

// A destination room missing on the other node, and one whose gate
// refuses the relay there, fail alone; an accepted co-host passes.
func TestRemoteDestinationFailsAlone(t *testing.T) {
	c := newTestCluster()
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", map[string][]string{"alice": {"h"}})
	a := n1.room(t, c, "a", "alice")
	b := n2.room(t, c, "b", "alice")
	g := n2.room(t, c, "g", "carol") // alice is not carol, no invitation
	h := n2.room(t, c, "h", "dave")  // alice holds an accepted invitation
	c.place("nowhere", n2)           // placed there, never created
	c.mu.Lock()                      // a node nobody answers for
	c.nodes["n3"] = &testNode{id: "n3", url: "http://127.0.0.1:1"}
	c.rooms["far"] = "n3"
	c.mu.Unlock()
	pub := publish(t, a, "alice")
	vb, vh := watch(t, b, "v-b"), watch(t, h, "v-h")

	var n notes
	r := startRelay(t, n1.mgr, pub.p, &n, "b", "g", "nowhere", "h", "far")
	n.wait(t, "state running/2 error none/0")
	vb.receiving("video", "alice", 10)
	vh.receiving("video", "alice", 10)
	info := r.Info()
	want := map[string]string{
		"b": "running/none", "g": "failure/failed_join_dest", "nowhere": "failure/failed_join_dest",
		"h": "running/none", "far": "failure/server_connection_lost",
	}
	for _, d := range info.Destinations {
		if got := d.State + "/" + d.Error; got != want[d.Room] {
			t.Errorf("destination %s: %s, want %s", d.Room, got, want[d.Room])
		}
		if d.State == "failure" && d.Room != "far" && (d.Code != 3 || d.ErrorCode != 5) {
			t.Errorf("destination %s: %+v", d.Room, d)
		}
	}
	if info.State != "running" {
		t.Errorf("relay %s, want running", info.State)
	}
	for _, p := range g.Participants() {
		if p.Role == sfu.RoleRelay {
			t.Error("the relay got into g")
		}
	}
}

// Room b ending on the other node drops the destination exactly as a
// local room ending does: event 0 with the room, then (no destination
// left) idle.
func TestRemoteRoomEndsLikeLocal(t *testing.T) {
	c := newTestCluster()
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	lc := n1.room(t, c, "c", "alice")
	b := n2.room(t, c, "b", "alice")
	pub := publish(t, a, "alice")

	run := func(m *Manager, room *sfu.Room) []string {
		var n notes
		startRelay(t, m, pub.p, &n, room.Name())
		n.wait(t, "event 4 "+room.Name())
		n.reset()
		room.End("test")
		return n.wait(t, "state idle/0 error none/0")
	}
	local := run(n1.mgr, lc)
	remote := run(n1.mgr, b)
	sameSeq(t, "room ending", remote, swapRoom(local, "c", "b"))
	sameSeq(t, "local room ending", local, []string{"event 0 c", "state idle/0 error none/0"})
	if n := len(n1.mgr.List()); n != 0 {
		t.Errorf("%d relays left", n)
	}
}

// PeerGone: the destination through that node fails with
// server_connection_lost (8), so does the relay; the other node drops the
// relay participant. An update then joins it again over a new link.
func TestRemotePeerGone(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after the nodes are down
	c := newTestCluster()
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	b := n2.room(t, c, "b", "alice")
	n2.room(t, c, "b2", "alice")
	pub := publish(t, a, "alice")
	vb := watch(t, b, "v-b")

	var n notes
	r := startRelay(t, n1.mgr, pub.p, &n, "b")
	n.wait(t, "event 4 b")
	vb.receiving("video", "alice", 10)

	n1.links.PeerGone("n2")
	got := n.wait(t, "state failure/3 error server_connection_lost/8")
	if len(got) < 2 || got[len(got)-2] != "event 0 b" {
		t.Errorf("before the failure state: %q, want event 0 (disconnect) for b", got)
	}
	if d := destInfo(r, "b"); d.State != "failure" || d.Code != 3 || d.Error != "server_connection_lost" || d.ErrorCode != 8 {
		t.Errorf("destination b after PeerGone: %+v", d)
	}
	vb.sawEvent("the relay leaving b", relayLeft)
	if p := n1.links.Up(); p != 0 {
		t.Errorf("%d links after PeerGone", p)
	}

	n.reset()
	if _, err := r.Update([]Target{{Room: "b", Identity: "alice"}, {Room: "b2", Identity: "alice"}}); err != nil {
		t.Fatal(err)
	}
	n.wait(t, "event 3 b")
	n.wait(t, "event 4 b")
	if d := destInfo(r, "b"); d.State != "running" {
		t.Errorf("destination b after the update: %+v", d)
	}
	v := vb.receiving("video", "alice", 1)
	waitFor(t, "media in b again", func() bool {
		vb.mu.Lock()
		defer vb.mu.Unlock()
		last := vb.tracks[len(vb.tracks)-1]
		return last != v && last.count() >= 10
	})
}

// The other node dies (its Links close): the relay reports the
// destination and itself in failure, server_connection_lost.
func TestRemoteNodeDies(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after the nodes are down
	c := newTestCluster()
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	b := n2.room(t, c, "b", "alice")
	pub := publish(t, a, "alice")
	vb := watch(t, b, "v-b")

	var n notes
	r := startRelay(t, n1.mgr, pub.p, &n, "b")
	n.wait(t, "event 4 b")
	vb.receiving("video", "alice", 10)

	n2.links.Close()
	n.wait(t, "state failure/3 error server_connection_lost/8")
	if d := destInfo(r, "b"); d.State != "failure" || d.ErrorCode != 8 {
		t.Errorf("destination b: %+v", d)
	}
	waitFor(t, "n1's link gone", func() bool { return n1.links.Up() == 0 })
	r.Stop()
	n1.shutdown()
}

// The other node goes silent (its links' socket dies, nothing says
// goodbye): the keepalives stop and the relay reports the loss.
func TestRemoteNodeSilent(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	c := newTestCluster()
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	n2.room(t, c, "b", "alice")
	pub := publish(t, a, "alice")

	var n notes
	r := startRelay(t, n1.mgr, pub.p, &n, "b")
	n.wait(t, "event 4 b")
	start := time.Now()
	_ = n2.pipe.Close()
	n.wait(t, "state failure/3 error server_connection_lost/8")
	if d := time.Since(start); d < silenceTimeout/2 || d > 3*silenceTimeout {
		t.Errorf("loss reported after %v (silence timeout %v)", d, silenceTimeout)
	}
	if d := destInfo(r, "b"); d.ErrorCode != 8 {
		t.Errorf("destination b: %+v", d)
	}
}

// A dial without the cluster's token is refused.
func TestLinkDialNeedsToken(t *testing.T) {
	c := newTestCluster()
	n1 := c.newTestNode(t, "n1", nil)
	other, err := NewLinks(LinkConfig{NodeID: "n9", Secret: []byte("another-secret-0123456789"), UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tok, err := other.token()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"", "Bearer nonsense", "Bearer " + tok} {
		req, _ := http.NewRequest(http.MethodPost, n1.url+LinkPath, strings.NewReader(`{"node":"n9","sdp":"v=0"}`))
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("authorization %q: HTTP %d, want 401", h, resp.StatusCode)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}
