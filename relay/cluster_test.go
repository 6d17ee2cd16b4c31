package relay

// A two-node cluster in one process for the cross-node relay tests: each
// node is an sfu.SFU on its own loopback UDP port with a Manager and
// Links, whose handler is on an httptest server. Real pion peers publish
// and watch through the sfu's participant path.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/sfu"
)

var testSecret = []byte("cluster-secret-0123456789")

func testLogger() *slog.Logger {
	if os.Getenv("RELAY_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testCluster places rooms on nodes.
type testCluster struct {
	mu    sync.Mutex
	nodes map[string]*testNode
	rooms map[string]string // room -> node id
	// onHeld, when set before the nodes are made, is every node's
	// LinkConfig.OnHeld (with the node's id).
	onHeld func(node string, p *sfu.Participant, held bool)
	// onPaused and onMuted: the same for LinkConfig.OnPaused and OnMuted.
	onPaused func(node string, p *sfu.Participant, paused bool)
	onMuted  func(node string, p *sfu.Participant, up *sfu.UpTrack, muted bool, by string)
}

func newTestCluster() *testCluster {
	return &testCluster{nodes: map[string]*testNode{}, rooms: map[string]string{}}
}

func (c *testCluster) locate(room string) (string, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.rooms[room]
	if !ok {
		return "", "", false
	}
	return id, c.nodes[id].url, true
}

// place says room lives on n (whether or not n has created it).
func (c *testCluster) place(room string, n *testNode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rooms[room] = n.id
}

type testNode struct {
	id    string
	sfu   *sfu.SFU
	mgr   *Manager
	links *Links
	url   string

	stop sync.Once
	down func()
	udp  net.PacketConn // the node's media socket (ICE)
	pipe net.PacketConn // its relay links' socket
}

// newTestNode starts a node; cohosts stands in for accepted invitations
// (identity -> rooms).
func (c *testCluster) newTestNode(t *testing.T, id string, cohosts map[string][]string) *testNode {
	t.Helper()
	return c.newNode(t, id, cohosts, nil)
}

// newTestNodeConn starts a node whose links' socket is wrap's.
func (c *testCluster) newTestNodeConn(t *testing.T, id string, wrap func(net.PacketConn) net.PacketConn) *testNode {
	t.Helper()
	return c.newNode(t, id, nil, wrap)
}

func (c *testCluster) newNode(t *testing.T, id string, cohosts map[string][]string, wrap func(net.PacketConn) net.PacketConn) *testNode {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api, mux, err := sfu.NewAPI(sfu.MediaConfig{UDPConn: udp, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	log := testLogger().With("node", id)
	var mgr *Manager // set below; the observer runs only once rooms exist
	s := sfu.New(sfu.Config{API: api, Metrics: m, Logger: log, Observer: sfu.ObserverFunc(func(c sfu.RoomChange) {
		if tc, ok := c.(sfu.TrackChanged); ok {
			mgr.TrackChanged(tc.Participant, tc.Track, tc.Published)
		}
	}), IsCohost: func(room, identity string) bool {
		for _, r := range cohosts[identity] {
			if r == room {
				return true
			}
		}
		return false
	}})
	pipe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn := pipe
	if wrap != nil {
		conn = wrap(pipe)
	}
	links, err := NewLinks(LinkConfig{
		NodeID: id, Secret: testSecret, Conn: conn, Locate: c.locate, SFU: s, Logger: testLogger(), Metrics: m,
		OnHeld: func(p *sfu.Participant, held bool) {
			if c.onHeld != nil {
				c.onHeld(id, p, held)
			}
		},
		OnPaused: func(p *sfu.Participant, paused bool) {
			if c.onPaused != nil {
				c.onPaused(id, p, paused)
			}
		},
		OnMuted: func(p *sfu.Participant, up *sfu.UpTrack, muted bool, by string) {
			if c.onMuted != nil {
				c.onMuted(id, p, up, muted, by)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mgr = NewManager(Config{
		SFU: s, Metrics: m, Logger: log, Remote: links, MaxDestinations: 8,
		Authorize: func(t Target) (string, Error) { return t.Identity, ErrNone },
	})
	hmux := http.NewServeMux()
	hmux.Handle("POST "+LinkPath, links.Handler())
	hs := httptest.NewServer(hmux)
	n := &testNode{id: id, sfu: s, mgr: mgr, links: links, url: hs.URL, udp: udp, pipe: pipe}
	n.down = func() {
		mgr.Close()
		links.Close()
		s.Close()
		hs.Close()
		_ = mux.Close()
		_ = udp.Close()
		_ = pipe.Close()
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	t.Cleanup(n.shutdown)
	return n
}

// shutdown stops the node (idempotent).
func (n *testNode) shutdown() { n.stop.Do(n.down) }

func (n *testNode) room(t *testing.T, c *testCluster, name, host string) *sfu.Room {
	t.Helper()
	r, err := n.sfu.CreateRoom(name, host, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c.place(name, n)
	return r
}

// nopSink drops a participant's events.
type nopSink struct{}

func (nopSink) Notify(sfu.Event) {}

// testPublisher is a real pion publisher (VP8 + Opus, a keyframe on PLI
// only) in a room.
type testPublisher struct {
	p   *sfu.Participant
	pc  *webrtc.PeerConnection
	pub *client.SyntheticPublisher
	wg  sync.WaitGroup
}

func publish(t *testing.T, r *sfu.Room, identity string) *testPublisher {
	t.Helper()
	p, _, err := r.Join(sfu.ParticipantParams{Identity: identity, Name: "N-" + identity, Role: sfu.RoleHost, Events: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := client.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := client.NewSyntheticPublisher(client.PublisherOptions{StreamID: identity, KeyframeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPublisher{p: p, pc: pc, pub: sp}
	t.Cleanup(func() {
		sp.Stop()
		_ = pc.Close()
		tp.wg.Wait()
	})
	for _, tr := range []*client.SyntheticTrack{sp.Video(), sp.Audio()} {
		x, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		tp.wg.Add(1)
		go func(s *webrtc.RTPSender, tr *client.SyntheticTrack) {
			defer tp.wg.Done()
			buf := make([]byte, 1500)
			for {
				n, _, err := s.Read(buf)
				if err != nil {
					return
				}
				if pkts, err := rtcp.Unmarshal(buf[:n]); err == nil {
					tr.HandleRTCP(pkts)
				}
			}
		}(x.Sender(), tr)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-webrtc.GatheringCompletePromise(pc)
	var answer string
	if err := p.HandleOffer(pc.LocalDescription().SDP, func(a string) { answer = a }); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	sp.Start()
	waitFor(t, "the publisher's tracks in the room", func() bool { return len(p.PublishedTracks()) == 2 })
	return tp
}

// testViewer is a real pion viewer in a room: it answers the sfu's
// subscriber offers, counts packets per track and records room events.
type testViewer struct {
	t     *testing.T
	p     *sfu.Participant
	pc    *webrtc.PeerConnection
	offer chan string
	done  chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	events []sfu.Event
	tracks []*viewerTrack
}

type viewerTrack struct {
	tr      *webrtc.TrackRemote
	packets atomic.Int64
	last    atomic.Int32 // the last byte of the newest media packet's payload
	ended   chan struct{}
}

func (vt *viewerTrack) count() int { return int(vt.packets.Load()) }

func watch(t *testing.T, r *sfu.Room, identity string) *testViewer {
	t.Helper()
	api, err := client.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &testViewer{t: t, pc: pc, offer: make(chan string, 64), done: make(chan struct{})}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		vt := &viewerTrack{tr: tr, ended: make(chan struct{})}
		v.mu.Lock()
		v.tracks = append(v.tracks, vt)
		v.mu.Unlock()
		defer close(vt.ended)
		buf := make([]byte, 1500)
		var pkt rtp.Packet
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if pkt.Unmarshal(buf[:n]) == nil && len(pkt.Payload) > 0 {
				vt.last.Store(int32(pkt.Payload[len(pkt.Payload)-1]))
			}
			vt.packets.Add(1)
		}
	})
	p, _, err := r.Join(sfu.ParticipantParams{Identity: identity, Name: identity, Role: sfu.RoleViewer, Events: v})
	if err != nil {
		t.Fatal(err)
	}
	v.p = p
	v.wg.Add(1)
	go v.answerLoop()
	t.Cleanup(func() {
		close(v.done)
		v.wg.Wait()
		p.Leave()
		_ = pc.Close()
	})
	return v
}

// Notify implements sfu.EventSink: record, and queue offers for the loop.
func (v *testViewer) Notify(ev sfu.Event) {
	v.mu.Lock()
	v.events = append(v.events, ev)
	v.mu.Unlock()
	if o, ok := ev.(sfu.SubscriberOffer); ok {
		select {
		case v.offer <- o.SDP:
		default:
			v.t.Error("viewer: too many offers queued")
		}
	}
}

func (v *testViewer) answerLoop() {
	defer v.wg.Done()
	for {
		select {
		case <-v.done:
			return
		case sdp := <-v.offer:
			if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
				v.p.SubscriberOfferFailed()
				continue
			}
			a, err := v.pc.CreateAnswer(nil)
			if err == nil {
				err = v.pc.SetLocalDescription(a)
			}
			if err != nil {
				v.p.SubscriberOfferFailed()
				continue
			}
			<-webrtc.GatheringCompletePromise(v.pc)
			_ = v.p.SetSubscriberAnswer(v.pc.LocalDescription().SDP)
		}
	}
}

// receiving waits until a track of kind from stream has at least n packets.
func (v *testViewer) receiving(kind, stream string, n int) *viewerTrack {
	v.t.Helper()
	var got *viewerTrack
	waitFor(v.t, fmt.Sprintf("%d %s packets of %s", n, kind, stream), func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, vt := range v.tracks {
			if vt.tr.Kind().String() == kind && vt.tr.StreamID() == stream && vt.count() >= n {
				got = vt
				return true
			}
		}
		return false
	})
	return got
}

// sendPLI asks for a keyframe on vt, as a browser does.
func (v *testViewer) sendPLI(vt *viewerTrack) error {
	return v.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(vt.tr.SSRC())}})
}

// sawEvent waits for a room event that pred accepts.
func (v *testViewer) sawEvent(what string, pred func(sfu.Event) bool) sfu.Event {
	v.t.Helper()
	var got sfu.Event
	waitFor(v.t, what, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, ev := range v.events {
			if pred(ev) {
				got = ev
				return true
			}
		}
		return false
	})
	return got
}

func relayJoined(ev sfu.Event) bool {
	j, ok := ev.(sfu.ParticipantJoined)
	return ok && j.Participant.Role == sfu.RoleRelay
}

func relayLeft(ev sfu.Event) bool {
	l, ok := ev.(sfu.ParticipantLeft)
	return ok && l.Participant.Role == sfu.RoleRelay
}

func trackGone(ev sfu.Event) bool {
	_, ok := ev.(sfu.TrackUnpublished)
	return ok
}

// notes collects what a relay notifies, as the words a client sees.
type notes struct {
	mu   sync.Mutex
	list []string
}

func (n *notes) notify(method string, params any) {
	b, _ := json.Marshal(params)
	var s string
	switch method {
	case "relay.state":
		var p StateParams
		_ = json.Unmarshal(b, &p)
		s = fmt.Sprintf("state %s/%d error %s/%d", p.State, p.Code, p.Error, p.ErrorCode)
	case "relay.event":
		var p EventParams
		_ = json.Unmarshal(b, &p)
		s = fmt.Sprintf("event %d %s", p.Code, p.Room)
	default:
		s = method
	}
	n.mu.Lock()
	n.list = append(n.list, s)
	n.mu.Unlock()
}

func (n *notes) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.list...)
}

// wait waits for note s and returns the notes up to and including it.
func (n *notes) wait(t *testing.T, s string) []string {
	t.Helper()
	var got []string
	waitFor(t, fmt.Sprintf("notification %q", s), func() bool {
		all := n.all()
		for i, x := range all {
			if x == s {
				got = all[:i+1]
				return true
			}
		}
		return false
	})
	return got
}

func (n *notes) reset() {
	n.mu.Lock()
	n.list = nil
	n.mu.Unlock()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startRelay relays src's tracks into rooms (identity: src's).
func startRelay(t *testing.T, m *Manager, src *sfu.Participant, n *notes, rooms ...string) *Relay {
	t.Helper()
	var ts []Target
	for _, r := range rooms {
		ts = append(ts, Target{Room: r, Identity: src.Identity()})
	}
	r, err := m.Start(src, ts, n.notify)
	if err != nil {
		t.Fatal(err)
	}
	r.Begin()
	return r
}
