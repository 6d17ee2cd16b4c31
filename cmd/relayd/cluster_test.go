package main

// The end-to-end test of cluster mode (--redis): three relayd processes on
// one Redis, loopback only, driven by the Go protocol client.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/internal/redistest"
	"github.com/relaysfu/relayd/signaling"
)

// clusterNode is one relayd process of the test cluster.
type clusterNode struct {
	id   string
	base string // http://127.0.0.1:port
	proc *relaydProc
}

// testCluster is three nodes on one Redis.
type testCluster struct {
	t      *testing.T
	ctx    context.Context // bounds the whole test
	rdb    *redis.Client
	nodes  []*clusterNode
	tokens *signaling.Tokens
}

func buildRelayd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "relayd")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race") // spawnRelayd fails the test on a race report
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startCluster(t *testing.T, ctx context.Context, n int) *testCluster {
	t.Helper()
	rs := redistest.Start(t)
	bin := buildRelayd(t)
	ro, err := redis.ParseURL(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, ctx: ctx, rdb: redis.NewClient(ro), tokens: signaling.NewTokens([]byte(restartSecret))}
	t.Cleanup(func() { _ = c.rdb.Close() })
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("node-%d", i)
		p := spawnRelayd(t, bin, "--secret", restartSecret, "--listen", "127.0.0.1:0", "--udp-port", "0",
			"--data-dir", t.TempDir(), "--redis", rs.URL, "--node-id", id, "--log-level", "debug")
		c.nodes = append(c.nodes, &clusterNode{id: id, base: "http://" + p.addr, proc: p})
	}
	// Every node registered and idle: placement compares CPU in 0.25-core
	// steps before room counts, and a node's first sample includes its
	// start-up.
	c.eventually("every node registered with an idle CPU", 30*time.Second, func() error {
		for _, nd := range c.nodes {
			h, err := c.rdb.HGetAll(ctx, "relayd:node:"+nd.id).Result()
			if err != nil {
				return err
			}
			if h["url"] != nd.base {
				return fmt.Errorf("%s: registered url %q, want %q", nd.id, h["url"], nd.base)
			}
			if cpu, err := strconv.ParseFloat(h["cpu"], 64); err != nil || cpu >= 0.2 {
				return fmt.Errorf("%s: cpu %q", nd.id, h["cpu"])
			}
		}
		return nil
	})
	return c
}

// eventually polls f until it returns nil, failing the test after d.
func (c *testCluster) eventually(what string, d time.Duration, f func() error) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || c.ctx.Err() != nil {
			c.t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *testCluster) node(id string) *clusterNode {
	for _, nd := range c.nodes {
		if nd.id == id {
			return nd
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

func (c *testCluster) token(identity, room, role string) string {
	c.t.Helper()
	tok, err := c.tokens.Issue(signaling.TokenSpec{Identity: identity, Room: room, Role: role, Name: identity, TTL: time.Hour})
	if err != nil {
		c.t.Fatal(err)
	}
	return tok
}

// dial connects identity through nd (a room token, or a user session when
// room is "") and joins.
func (c *testCluster) dial(nd *clusterNode, identity, room, role string) (*client.Client, *client.JoinResult) {
	c.t.Helper()
	return c.dialWith(nd, identity, room, role, client.JoinParams{})
}

// dialWith is dial joining with p (a version, say).
func (c *testCluster) dialWith(nd *clusterNode, identity, room, role string, p client.JoinParams) (*client.Client, *client.JoinResult) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, nd.base, c.token(identity, room, role), client.Options{})
	if err != nil {
		c.t.Fatalf("%s dials %s: %v", identity, nd.id, err)
	}
	c.t.Cleanup(func() { _ = cl.Close() })
	jr, err := cl.JoinWith(ctx, p)
	if err != nil {
		c.t.Fatalf("%s joins %q through %s: %v", identity, room, nd.id, err)
	}
	return cl, jr
}

func (c *testCluster) waitNote(cl *client.Client, who, method string, match func(json.RawMessage) bool) client.Notification {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	defer cancel()
	n, err := cl.WaitNotification(ctx, method, match)
	if err != nil {
		c.t.Fatalf("%s: no %s: %v", who, method, err)
	}
	return n
}

// receiving waits until cl gets at least n packets of a track of kind from
// publisher.
func (c *testCluster) receiving(cl *client.Client, who, kind, publisher string, n int) *client.RemoteTrack {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	defer cancel()
	tr, err := cl.WaitTrack(ctx, kind, func(r *client.RemoteTrack) bool { return r.StreamID == publisher })
	if err != nil {
		c.t.Fatalf("%s: no %s track of %s: %v", who, kind, publisher, err)
	}
	for tr.Packets() < n {
		if ctx.Err() != nil {
			c.t.Fatalf("%s: %d packets of %s's %s, want %d", who, tr.Packets(), publisher, kind, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return tr
}

// api calls the HTTP API as admin and decodes into out (nil: discard).
func (c *testCluster) api(method, u, body string, out any) int {
	c.t.Helper()
	code, m := api(c.t, method, u, body)
	if out != nil {
		b, _ := json.Marshal(m)
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v", method, u, err)
		}
	}
	return code
}

func publishSynthetic(t *testing.T, ctx context.Context, cl *client.Client) *client.SyntheticPublisher {
	t.Helper()
	pub, err := client.NewSyntheticPublisher(client.PublisherOptions{BitrateBps: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Stop)
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := cl.Publish(pctx, pub.Tracks()...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	pub.Start()
	return pub
}

// relayNotes records a client's relay.state and relay.event notifications
// in arrival order, as "state <word>/<code> error <word>/<code>" and
// "event <code> <room>".
type relayNotes struct {
	mu   sync.Mutex
	seq  []string
	errs []string // relay.state error words other than none
}

func collectRelayNotes(t *testing.T, cl *client.Client) *relayNotes {
	rn := &relayNotes{}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case n := <-cl.Notifications():
				rn.add(n)
			case <-cl.Closed():
				return
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return rn
}

func (rn *relayNotes) add(n client.Notification) {
	var s string
	switch n.Method {
	case client.NotifyRelayState:
		var ev client.RelayStateEvent
		_ = n.Decode(&ev)
		s = fmt.Sprintf("state %s/%d error %s/%d", ev.State, ev.Code, ev.Error, ev.ErrorCode)
	case client.NotifyRelayEvent:
		var ev client.RelayEvent
		_ = n.Decode(&ev)
		s = fmt.Sprintf("event %d %s", ev.Code, ev.Room)
	default:
		return
	}
	rn.mu.Lock()
	rn.seq = append(rn.seq, s)
	rn.mu.Unlock()
}

func (rn *relayNotes) snapshot() []string {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	return slices.Clone(rn.seq)
}

func roomStatus(status string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev client.RoomEvent
		return json.Unmarshal(p, &ev) == nil && ev.Room.Status == status
	}
}

func participantIs(identity, role string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev client.ParticipantEvent
		return json.Unmarshal(p, &ev) == nil && ev.Participant.Identity == identity && ev.Participant.Role == role
	}
}

func invitationStatus(user, status string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev client.InvitationEvent
		return json.Unmarshal(p, &ev) == nil && ev.Invitation.User == user && ev.Invitation.Status == status
	}
}

// Three nodes on one Redis: rooms spread over the nodes; a viewer through
// any node gets the host; a relay from node 1 reaches rooms on nodes 2 and
// 3 with the notifications of a local relay; an invitation accepted on
// node 2 opens the stage on node 3; SIGKILL of node 3 fails the relay's
// destination there with server_connection_lost, ends its room for the
// viewers bridged through other nodes and in the API, and leaves no key of
// node 3 in Redis but its tombstone; stopping the room on node 2 drops
// that destination as a local one and releases its placement.
func TestClusterThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three relayd processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	c := startCluster(t, ctx, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	// 1. Three hosts join through node 1: three rooms, one per node.
	rooms := []string{"alpha", "bravo", "charlie"}
	hosts := map[string]*client.Client{}
	for _, r := range rooms {
		hosts[r], _ = c.dial(n1, "host-"+r, r, "host")
	}
	roomOn := map[string]string{} // node id -> room
	for _, r := range rooms {
		id, err := c.rdb.Get(ctx, "relayd:room:"+r).Result()
		if err != nil {
			t.Fatalf("placement of %s: %v", r, err)
		}
		if prev, dup := roomOn[id]; dup {
			t.Fatalf("rooms %s and %s both placed on %s", prev, r, id)
		}
		roomOn[id] = r
		isMember, err := c.rdb.SIsMember(ctx, "relayd:node:"+id+":rooms", r).Result()
		if err != nil || !isMember {
			t.Fatalf("%s is not in %s's room set: %v", r, id, err)
		}
	}
	ra, rb, rc := roomOn[n1.id], roomOn[n2.id], roomOn[n3.id]
	if ra == "" || rb == "" || rc == "" {
		t.Fatalf("rooms not spread over the three nodes: %v", roomOn)
	}
	t.Logf("placement: %s on %s, %s on %s, %s on %s", ra, n1.id, rb, n2.id, rc, n3.id)
	// Each node answers for every room (served by the room's node), and
	// the merged list holds all three.
	for _, nd := range c.nodes {
		for _, r := range rooms {
			var info client.Room
			if code := c.api("GET", nd.base+"/v1/rooms/"+r, "", &info); code != 200 || info.Name != r || info.Host != "host-"+r || info.Status != "idle" {
				t.Fatalf("GET /v1/rooms/%s through %s: %d %+v", r, nd.id, code, info)
			}
		}
		var list struct{ Rooms []client.Room }
		if code := c.api("GET", nd.base+"/v1/rooms", "", &list); code != 200 || len(list.Rooms) != 3 {
			t.Fatalf("GET /v1/rooms through %s: %d %+v", nd.id, code, list)
		}
	}

	// The hosts publish (their sockets are bridged by node 1 for the rooms
	// of nodes 2 and 3; the media goes to the room's node directly).
	srcNotes := collectRelayNotes(t, hosts[ra])
	for _, r := range rooms {
		publishSynthetic(t, ctx, hosts[r])
		c.waitNote(hosts[r], "host-"+r, client.NotifyRoomUpdated, roomStatus("live"))
	}

	// 2. A viewer of the room on node 1 through each node gets its host.
	for _, nd := range c.nodes {
		who := "viewer-" + nd.id
		v, jr := c.dial(nd, who, ra, "viewer")
		if jr.Room == nil || jr.Room.Name != ra || jr.Room.Status != "live" {
			t.Fatalf("%s joined %+v", who, jr.Room)
		}
		c.receiving(v, who, "video", "host-"+ra, 30)
		c.receiving(v, who, "audio", "host-"+ra, 20)
	}
	// Viewers of the rooms on nodes 2 and 3, bridged through another node
	// (not node 3: it dies, and with it the sockets it bridges).
	vb, _ := c.dial(n1, "viewer-b", rb, "viewer")
	vc, _ := c.dial(n2, "viewer-c", rc, "viewer")
	c.receiving(vb, "viewer-b", "video", "host-"+rb, 10)
	c.receiving(vc, "viewer-c", "video", "host-"+rc, 10)
	c.eventually("node 1 to count the socket it bridges", 5*time.Second, func() error {
		if v := c.metric(n1, "relayd_bridged_connections"); v < 1 {
			return fmt.Errorf("relayd_bridged_connections %v", v)
		}
		return nil
	})

	// 3. The host of the room on node 1 relays into the rooms on nodes 2
	// and 3. It needs to be a co-host there: invited and accepted through
	// the HTTP API of a node that does not hold the room.
	src := "host-" + ra
	for _, x := range []struct {
		room string
		via  *clusterNode
	}{{rb, n3}, {rc, n1}} {
		var inv client.Invitation
		if code := c.api("POST", x.via.base+"/v1/rooms/"+x.room+"/invitations", `{"user":"`+src+`"}`, &inv); code != 201 || inv.Status != "pending" {
			t.Fatalf("invite %s into %s through %s: %d %+v", src, x.room, x.via.id, code, inv)
		}
		if code := c.api("POST", x.via.base+"/v1/invitations/"+inv.ID+"/accept", "", &inv); code != 200 || inv.Status != "accepted" {
			t.Fatalf("accept %s's invitation into %s through %s: %d %+v", src, x.room, x.via.id, code, inv)
		}
	}
	dests := []client.RelayTarget{{Room: rb, Token: c.token(src, rb, "viewer")}, {Room: rc, Token: c.token(src, rc, "viewer")}}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	rl, err := hosts[ra].StartRelay(rctx, dests)
	rcancel()
	if err != nil {
		t.Fatalf("relay.start: %v", err)
	}
	if rl.ID == "" || rl.Source.Room != ra || rl.Source.Identity != src || len(rl.Destinations) != 2 {
		t.Fatalf("relay object %+v", rl)
	}
	for _, x := range []struct {
		v   *client.Client
		who string
	}{{vb, "viewer-b"}, {vc, "viewer-c"}} {
		n := c.waitNote(x.v, x.who, client.NotifyParticipantJoined, participantIs(src, "relay"))
		var ev client.ParticipantEvent
		_ = n.Decode(&ev)
		if ev.Participant.RelayFrom == nil || ev.Participant.RelayFrom.Room != ra {
			t.Errorf("%s: relay participant %+v", x.who, ev.Participant)
		}
		vt := c.receiving(x.v, x.who, "video", src, 30)
		c.receiving(x.v, x.who, "audio", src, 20)
		if !vt.FirstFrameKeyframe() {
			t.Errorf("%s: the relayed video does not start with a keyframe", x.who)
		}
	}
	// Node 1 has one link to each of the two other nodes (the gauge is
	// sampled every heartbeat).
	c.eventually("node 1's two relay links in its metrics", 5*time.Second, func() error {
		if v := c.metric(n1, "relayd_relay_links"); v != 2 {
			return fmt.Errorf("relayd_relay_links %v", v)
		}
		return nil
	})
	// The notifications of a relay into two local rooms (as in
	// signaling/relay_test.go and relay/remote_test.go): connecting, event
	// 2, event 3 for each destination in order, running, then event 4 for
	// each (in the order their first packets were written), and nothing
	// else.
	wantHead := []string{"state connecting/1 error none/0", "event 2 ", "event 3 " + rb, "event 3 " + rc, "state running/2 error none/0"}
	wantTail := []string{"event 4 " + rb, "event 4 " + rc}
	var seq []string
	c.eventually("the relay's notifications", 10*time.Second, func() error {
		if seq = srcNotes.snapshot(); len(seq) < len(wantHead)+len(wantTail) {
			return fmt.Errorf("%q", seq)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // anything more would show
	seq = srcNotes.snapshot()
	tail := slices.Clone(seq[min(len(seq), len(wantHead)):])
	slices.Sort(tail)
	if len(seq) != len(wantHead)+len(wantTail) || !slices.Equal(seq[:len(wantHead)], wantHead) || !slices.Equal(tail, wantTail) {
		t.Fatalf("relay notifications:\n got %q\nwant %q then %q in any order", seq, wantHead, wantTail)
	}

	// 3b. A 1.1 viewer of the room on node 2 is told, over the relay's
	// link, what its subscribers on node 1 would be: the source's audio
	// muted by an operator (track.muted with the copy's id; the track
	// object says muted), the relay paused (track.stream paused
	// relay_paused for both copies) and resumed (active, with the video's
	// next packet: the muted audio sends none).
	v11, jr11 := c.dialWith(n2, "viewer11-b", rb, "viewer", client.JoinParams{Version: "1.1"})
	copies := map[string]string{} // kind -> the copy's id in rb
	for _, tr := range jr11.Tracks {
		if tr.Participant == src {
			copies[tr.Kind] = tr.ID
		}
	}
	if len(copies) != 2 {
		t.Fatalf("relayed tracks in %s's join result: %+v", rb, jr11.Tracks)
	}
	c.receiving(v11, "viewer11-b", "video", src, 10)
	var muted struct{ Tracks []client.Track }
	if code := c.api("POST", n3.base+"/v1/rooms/"+ra+"/participants/"+src+"/mute", `{"kind":"audio"}`, &muted); code != 200 || len(muted.Tracks) != 1 {
		t.Fatalf("mute %s's audio through %s: %d %+v", src, n3.id, code, muted)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	ev, err := client.WaitEvent(wctx, v11, client.NotifyTrackMuted, func(e client.TrackMutedEvent) bool { return e.TrackID == copies["audio"] })
	wcancel()
	if err != nil || !ev.Muted || ev.By != "admin" {
		t.Fatalf("viewer11-b: track.muted of the relayed audio %s: %+v %v", copies["audio"], ev, err)
	}
	v11late, jrLate := c.dialWith(n1, "viewer11-late", rb, "viewer", client.JoinParams{Version: "1.1"})
	_ = v11late
	for _, tr := range jrLate.Tracks {
		if tr.ID == copies["audio"] && !tr.Muted || tr.ID == copies["video"] && tr.Muted {
			t.Fatalf("a later join's relayed track %+v (audio %s muted, video not)", tr, copies["audio"])
		}
	}
	pctx0, pcancel0 := context.WithTimeout(ctx, 10*time.Second)
	if _, err := hosts[ra].PauseRelay(pctx0); err != nil {
		t.Fatalf("relay.pause: %v", err)
	}
	for _, kind := range []string{"audio", "video"} {
		ev, err := client.WaitEvent(pctx0, v11, client.NotifyTrackStream, func(e client.TrackStreamEvent) bool { return e.TrackID == copies[kind] })
		if err != nil || ev.State != "paused" || ev.Reason != "relay_paused" {
			t.Fatalf("viewer11-b: track.stream of the relayed %s after relay.pause: %+v %v", kind, ev, err)
		}
	}
	if _, err := hosts[ra].ResumeRelay(pctx0); err != nil {
		t.Fatalf("relay.resume: %v", err)
	}
	ev2, err := client.WaitEvent(pctx0, v11, client.NotifyTrackStream, func(e client.TrackStreamEvent) bool { return e.TrackID == copies["video"] && e.State == "active" })
	pcancel0()
	if err != nil || ev2.Reason != "relay_paused" {
		t.Fatalf("viewer11-b: track.stream active of the relayed video after relay.resume: %+v %v", ev2, err)
	}

	// 4. bob, a viewer of the room on node 3 (through node 1), may not
	// publish; invited by its host, he accepts in a user session on node
	// 2; then he may, and the room's viewer gets him.
	bob, jr := c.dial(n1, "bob", rc, "viewer")
	if jr.Participant.Role != "viewer" {
		t.Fatalf("bob joined as %s", jr.Participant.Role)
	}
	bpub, err := client.NewSyntheticPublisher(client.PublisherOptions{BitrateBps: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bpub.Stop)
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	if err := bob.Publish(pctx, bpub.Tracks()...); client.ErrorCode(err) != client.CodeForbidden {
		t.Fatalf("bob publishes before an invitation: %v, want 4003", err)
	}
	bobUser, ujr := c.dial(n2, "bob", "", "")
	if ujr.Room != nil {
		t.Fatalf("user session joined a room: %+v", ujr.Room)
	}
	var inv client.Invitation
	if err := hosts[rc].Call(pctx, "invitation.create", map[string]string{"user": "bob"}, &inv); err != nil || inv.Status != "pending" || inv.Room != rc {
		t.Fatalf("invitation.create: %v %+v", err, inv)
	}
	c.waitNote(bobUser, "bob's user session", client.NotifyInvitationUpdated, invitationStatus("bob", "pending"))
	if err := bob.Publish(pctx, bpub.Tracks()...); client.ErrorCode(err) != client.CodeForbidden {
		t.Fatalf("bob publishes with a pending invitation: %v, want 4003", err)
	}
	acc, err := bobUser.AcceptInvitation(pctx, inv.ID)
	if err != nil || acc.Status != "accepted" {
		t.Fatalf("accept through %s: %v %+v", n2.id, err, acc)
	}
	// At once: the accept has been committed, whether or not node 3 has
	// heard of it yet.
	if err := bob.Publish(pctx, bpub.Tracks()...); err != nil {
		t.Fatalf("bob publishes after accepting: %v", err)
	}
	c.waitNote(hosts[rc], "host-"+rc, client.NotifyInvitationUpdated, invitationStatus("bob", "accepted"))
	c.waitNote(bob, "bob", client.NotifyParticipantUpdated, participantIs("bob", "cohost"))
	bpub.Start()
	c.receiving(vc, "viewer-c", "video", "bob", 20)

	// 5. SIGKILL node 3. (What must go away is there now.)
	if err := c.nodeKeys(n3.id); err == nil {
		t.Fatalf("no key of %s before it died", n3.id)
	}
	if got := c.liveRooms(n1); !slices.Equal(got, sorted(ra, rb, rc)) {
		t.Fatalf("live rooms before the kill: %v", got)
	}
	if err := n3.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n3.proc.cmd.Wait()
	killed := time.Now()
	afterKill := len(srcNotes.snapshot())

	// The viewers of its room bridged through nodes 1 and 2 hear that it
	// ended, and are closed with 1000.
	for _, x := range []struct {
		cl  *client.Client
		who string
	}{{vc, "viewer-c"}, {bob, "bob"}, {hosts[rc], "host-" + rc}} {
		n := c.waitNote(x.cl, x.who, client.NotifyRoomUpdated, roomStatus("ended"))
		var ev client.RoomEvent
		if _ = n.Decode(&ev); ev.Room.Name != rc || ev.Room.EndedAt == nil {
			t.Errorf("%s: room.updated %+v", x.who, ev.Room)
		}
		var reason struct{ Room struct{ EndReason string } }
		if _ = n.Decode(&reason); reason.Room.EndReason != "node_lost" {
			t.Errorf("%s: room.updated %s, want endReason node_lost", x.who, n.Params)
		}
		select {
		case <-x.cl.Closed():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not closed after its room's node died", x.who)
		}
		if code := x.cl.CloseCode(); code != 1000 {
			t.Errorf("%s: close code %d, want 1000", x.who, code)
		}
	}

	// The relay's destination there fails with server_connection_lost;
	// the one on node 2 runs on.
	destOf := func(r client.Relay, room string) client.RelayDestination {
		for _, d := range r.Destinations {
			if d.Room == room {
				return d
			}
		}
		return client.RelayDestination{}
	}
	c.eventually("the destination on the dead node fails", 20*time.Second, func() error {
		var list struct{ Relays []client.Relay }
		if code := c.api("GET", n2.base+"/v1/relays", "", &list); code != 200 {
			return fmt.Errorf("GET /v1/relays: %d", code)
		}
		for _, r := range list.Relays {
			if r.ID == rl.ID {
				if d := destOf(r, rc); d.State != "failure" || d.ErrorCode != 8 {
					return fmt.Errorf("destination %+v", d)
				}
				return nil
			}
		}
		return fmt.Errorf("relay %s not listed: %+v", rl.ID, list.Relays)
	})
	t.Logf("destination failed %v after the kill", time.Since(killed).Round(time.Millisecond))
	uctx, ucancel := context.WithTimeout(ctx, 20*time.Second)
	defer ucancel()
	got, err := hosts[ra].UpdateRelay(uctx, dests) // the same set: the relay as it is
	if err != nil {
		t.Fatalf("relay.update: %v", err)
	}
	if d := destOf(*got, rc); d.State != "failure" || d.Code != 3 || d.Error != "server_connection_lost" || d.ErrorCode != 8 {
		t.Errorf("the source sees the destination on the dead node as %+v", d)
	}
	if d := destOf(*got, rb); d.State != "running" || d.ErrorCode != 0 {
		t.Errorf("the source sees the destination on node 2 as %+v", d)
	}
	if got.State != "running" {
		t.Errorf("relay state %s, want running (node 2's destination runs)", got.State)
	}
	relayed := c.receiving(vb, "viewer-b", "video", src, 1)
	c.receiving(vb, "viewer-b", "video", src, relayed.Packets()+30)

	// The API through node 1 no longer lists the room as live: it ended.
	c.eventually("the dead node's room ends", 20*time.Second, func() error {
		if got := c.liveRooms(n1); !slices.Equal(got, sorted(ra, rb)) {
			return fmt.Errorf("live rooms %v, want %v", got, sorted(ra, rb))
		}
		return nil
	})
	for _, nd := range []*clusterNode{n1, n2} {
		var info client.Room
		if code := c.api("GET", nd.base+"/v1/rooms/"+rc, "", &info); code != 200 || info.Status != "ended" || info.EndedAt == nil || info.Host != "host-"+rc {
			t.Errorf("GET /v1/rooms/%s through %s after its node died: %d %+v", rc, nd.id, code, info)
		}
		if _, m := api(t, "GET", nd.base+"/v1/rooms/"+rc, ""); m["endReason"] != "node_lost" {
			t.Errorf("GET /v1/rooms/%s through %s after its node died: %v, want endReason node_lost", rc, nd.id, m)
		}
	}
	if got, want := c.roomStatuses(n2), map[string]string{ra: "live", rb: "live", rc: "ended"}; !maps.Equal(got, want) {
		t.Errorf("rooms after the kill: %v, want %v", got, want)
	}

	// Nothing of node 3 is left in Redis but its tombstone.
	c.eventually("node 3's keys gone", 20*time.Second, func() error {
		return c.nodeKeys(n3.id)
	})

	// 6. The room on node 2 is stopped through node 1: the relay drops
	// that destination as it drops a local one (event 0), and with no
	// destination running it fails with the other's error; the room's
	// placement is released.
	if code := c.api("POST", n1.base+"/v1/rooms/"+rb+"/stop", "", nil); code != 200 {
		t.Fatalf("stop %s: %d", rb, code)
	}
	c.waitNote(vb, "viewer-b", client.NotifyRoomUpdated, roomStatus("ended"))
	c.eventually("the relay fails", 10*time.Second, func() error {
		if seq := srcNotes.snapshot(); !slices.Contains(seq[afterKill:], "state failure/3 error server_connection_lost/8") {
			return fmt.Errorf("%q", seq[afterKill:])
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // anything more would show
	var states, events []string
	for _, n := range srcNotes.snapshot()[afterKill:] {
		if strings.HasPrefix(n, "state ") {
			states = append(states, n)
		} else {
			events = append(events, n)
		}
	}
	if want := []string{"state failure/3 error server_connection_lost/8"}; !slices.Equal(states, want) {
		t.Errorf("relay states after the kill %q, want %q", states, want)
	}
	if i := slices.Index(events, "event 9 "); i < 0 || !slices.Contains(events[i:], "event 0 "+rb) {
		t.Errorf("relay events after the kill %q, want event 9 (same set) then event 0 %s", events, rb)
	}
	if got, want := c.roomStatuses(n1), map[string]string{ra: "live", rb: "ended", rc: "ended"}; !maps.Equal(got, want) {
		t.Errorf("rooms after the stop: %v, want %v", got, want)
	}
	c.eventually("the ended room's placement released", 10*time.Second, func() error {
		k, err := c.rdb.Exists(ctx, "relayd:room:"+rb).Result()
		if err != nil || k != 0 {
			return fmt.Errorf("relayd:room:%s still there (%v)", rb, err)
		}
		if n, err := c.rdb.SCard(ctx, "relayd:node:"+n2.id+":rooms").Result(); err != nil || n != 0 {
			return fmt.Errorf("%s still has %d rooms placed (%v)", n2.id, n, err)
		}
		return nil
	})
	var info2 client.Room
	if code := c.api("GET", n2.base+"/v1/rooms/"+rb, "", &info2); code != 200 || info2.Status != "ended" {
		t.Errorf("GET /v1/rooms/%s after the stop: %d %+v", rb, code, info2)
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// liveRooms is GET /v1/rooms?status=live through nd: the names, sorted.
func (c *testCluster) liveRooms(nd *clusterNode) []string {
	c.t.Helper()
	var list struct{ Rooms []client.Room }
	if code := c.api("GET", nd.base+"/v1/rooms?status=live", "", &list); code != 200 {
		c.t.Fatalf("GET /v1/rooms?status=live through %s: %d", nd.id, code)
	}
	var names []string
	for _, r := range list.Rooms {
		names = append(names, r.Name)
	}
	return sorted(names...)
}

// roomStatuses is GET /v1/rooms through nd: name -> status; a room listed
// twice fails the test.
func (c *testCluster) roomStatuses(nd *clusterNode) map[string]string {
	c.t.Helper()
	var list struct{ Rooms []client.Room }
	if code := c.api("GET", nd.base+"/v1/rooms", "", &list); code != 200 {
		c.t.Fatalf("GET /v1/rooms through %s: %d", nd.id, code)
	}
	status := map[string]string{}
	for _, r := range list.Rooms {
		if _, dup := status[r.Name]; dup {
			c.t.Errorf("GET /v1/rooms through %s lists %s twice: %+v", nd.id, r.Name, list.Rooms)
		}
		status[r.Name] = r.Status
	}
	return status
}

// nodeKeys reports the keys that still belong to node id: any key naming it
// (but its relayd:gone:<id> tombstone), a room placement on it, its field
// in the registry.
func (c *testCluster) nodeKeys(id string) error {
	ctx := c.ctx
	var left []string
	iter := c.rdb.Scan(ctx, 0, "relayd:*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		switch {
		case k == "relayd:gone:"+id:
		case strings.Contains(k, id):
			left = append(left, k)
		case strings.HasPrefix(k, "relayd:room:"):
			if v, err := c.rdb.Get(ctx, k).Result(); err == nil && v == id {
				left = append(left, k+" = "+v)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if ok, err := c.rdb.HExists(ctx, "relayd:nodes", id).Result(); err != nil || ok {
		left = append(left, "relayd:nodes["+id+"]")
	}
	if len(left) > 0 {
		return fmt.Errorf("left: %v", left)
	}
	return nil
}

// metric reads one unlabelled gauge or counter from a node's /metrics.
func (c *testCluster) metric(nd *clusterNode, name string) float64 {
	c.t.Helper()
	res, err := http.Get(nd.base + "/metrics")
	if err != nil {
		c.t.Fatalf("%s /metrics: %v", nd.id, err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				c.t.Fatalf("%s: %s %q", nd.id, name, f[1])
			}
			return v
		}
	}
	c.t.Fatalf("%s: no %s in /metrics", nd.id, name)
	return 0
}
