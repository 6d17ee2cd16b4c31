package relay

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/sfu"
)

// Each direction of each pipe has its own keys: what n1 sends on one pipe
// decrypts with n2's receiving keys of that pipe only, and only with the
// cluster secret.
func TestPipeKeys(t *testing.T) {
	secret := []byte("cluster-secret-0123456789")
	l := &Links{cfg: LinkConfig{NodeID: "a"}, log: testLogger()}
	pa, pb, pc := newPipe(l, "b"), newPipe(l, "a"), newPipe(l, "x")
	sab, err := pa.shared(pb.local)
	if err != nil {
		t.Fatal(err)
	}
	if sba, _ := pb.shared(pa.local); !bytes.Equal(sab, sba) {
		t.Fatal("the two sides disagree on the shared secret")
	}
	scb, _ := pc.shared(pb.local)
	ctx := func(secret, shared []byte, key, from, to string) *srtp.Context {
		t.Helper()
		k, s, err := keys(secret, shared, key, from, to)
		if err != nil {
			t.Fatal(err)
		}
		c, err := srtp.CreateContext(k, s, profile)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 7, SequenceNumber: 1}, Payload: []byte("media")}).Marshal()
	enc, err := ctx(secret, sab, pa.local, "a", "b").EncryptRTP(nil, pkt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, []byte("media")) {
		t.Fatal("the payload is not encrypted")
	}
	if out, err := ctx(secret, sab, pa.local, "a", "b").DecryptRTP(nil, enc, nil); err != nil || !bytes.Equal(out, pkt) {
		t.Fatalf("the receiving side of the pipe: %v", err)
	}
	for name, c := range map[string]*srtp.Context{
		"the other direction":    ctx(secret, sab, pb.local, "b", "a"),
		"another pipe":           ctx(secret, scb, pc.local, "a", "b"),
		"another cluster secret": ctx([]byte("another-secret-0123456789"), sab, pa.local, "a", "b"),
	} {
		if _, err := c.DecryptRTP(nil, enc, nil); err == nil {
			t.Errorf("%s decrypts it", name)
		}
	}
	for _, bad := range []string{"", "zz", hex.EncodeToString([]byte("short"))} {
		if _, _, err := keys(secret, sab, bad, "a", "b"); err == nil {
			t.Errorf("key %q accepted", bad)
		}
		if _, err := pa.shared(bad); err == nil {
			t.Errorf("peer key %q accepted", bad)
		}
	}
}

// An outTrack's sequence numbers run on without a gap across a pause (the
// first packet after it is a resync), and a NACK of a sequence number on
// the wire finds its packet in the source's cache.
func TestOutTrackSequence(t *testing.T) {
	m := metrics.New()
	up := sfu.NewUpTrack(sfu.UpTrackParams{
		ID: "TR_x", Participant: "alice", Kind: webrtc.RTPCodecTypeVideo,
		Codec:  webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		Logger: testLogger(), Metrics: m,
	})
	store := func(seq uint16) uint64 {
		b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 99, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: []byte{byte(seq)}}).Marshal()
		ext := uint64(seq) + 1<<16
		up.Cache().Store(ext, b)
		return ext
	}
	l := &Links{cfg: LinkConfig{Metrics: m}}
	ot := newOutTrack(&pipe{l: l}, up, 0)
	ot.ssrc, ot.seq = 1234, 65534 // the wire wraps on the way

	steps := []struct {
		src    uint16
		resync bool
		want   uint16
	}{
		{100, false, 65534}, {101, false, 65535}, {102, false, 0},
		{104, false, 2}, // lost at the source: the gap stays (the peer NACKs it)
		{103, false, 1}, // late: its own place
		{500, true, 3},  // after a pause: no gap on the wire
		{501, false, 4},
	}
	buf := make([]byte, sfu.MaxPacketSize)
	var hdr rtp.Header
	for _, s := range steps {
		b := ot.next(outItem{ext: store(s.src), resync: s.resync}, buf, &hdr)
		if b == nil {
			t.Fatalf("source %d: nothing to send", s.src)
		}
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if p.SequenceNumber != s.want || p.SSRC != 1234 || p.Timestamp != uint32(s.src)*3000 || p.Payload[0] != byte(s.src) {
			t.Errorf("source %d: wire seq %d ssrc %d ts %d, want seq %d", s.src, p.SequenceNumber, p.SSRC, p.Timestamp, s.want)
		}
	}
	for _, s := range steps {
		b := ot.retransmit(s.want, buf, &hdr)
		var p rtp.Packet
		if b == nil || p.Unmarshal(b) != nil || p.SequenceNumber != s.want || p.Payload[0] != byte(s.src) {
			t.Errorf("NACK of %d: %v, want the packet of source %d", s.want, b, s.src)
		}
	}
	if b := ot.retransmit(3000, buf, &hdr); b != nil {
		t.Error("a NACK of a sequence number never sent found a packet")
	}
	if hit, miss := testutil.ToFloat64(m.Retransmits.WithLabelValues("hit")), testutil.ToFloat64(m.Retransmits.WithLabelValues("miss")); hit != float64(len(steps)) || miss != 1 {
		t.Errorf("retransmits: hit %v miss %v", hit, miss)
	}
}

// lossyConn drops every nth RTP packet it sends while lossy is set.
type lossyConn struct {
	net.PacketConn
	n     int64
	count atomic.Int64
	lossy atomic.Bool
}

func (c *lossyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.lossy.Load() && !isRTCP(b) && c.count.Add(1)%c.n == 0 {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// Packets lost between the nodes are NACKed by the receiving node and
// resent from the source's cache: the destination's up track gets them.
func TestRemoteLossRepaired(t *testing.T) {
	c := newTestCluster()
	var lossy *lossyConn
	n1 := c.newTestNodeConn(t, "n1", func(pc net.PacketConn) net.PacketConn {
		lossy = &lossyConn{PacketConn: pc, n: 10}
		return lossy
	})
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	b := n2.room(t, c, "b", "alice")
	pub := publish(t, a, "alice")
	vb := watch(t, b, "v-b")
	var n notes
	startRelay(t, n1.mgr, pub.p, &n, "b")
	n.wait(t, "event 4 b")
	vt := vb.receiving("video", "alice", 10)

	hits := func() float64 { return testutil.ToFloat64(n1.sfu.Metrics().Retransmits.WithLabelValues("hit")) }
	nacks := func() float64 { return testutil.ToFloat64(n1.sfu.Metrics().NACKs.WithLabelValues("from_subscriber")) }
	before, nacked := hits(), nacks()
	lossy.lossy.Store(true)
	waitFor(t, "retransmissions through the pipe", func() bool { return hits() >= before+5 })
	lossy.lossy.Store(false)
	if nacks() <= nacked {
		t.Error("no NACK reached the sending node")
	}
	vb.receiving("video", "alice", vt.count()+20)
}

// Strangers get nothing: datagrams that are not a peer's are dropped
// unread, control calls without the cluster's token are 401, and calls
// naming a pipe the node does not have are 409; the relay runs on.
func TestPipeIgnoresStrangers(t *testing.T) {
	c := newTestCluster()
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	b := n2.room(t, c, "b", "alice")
	pub := publish(t, a, "alice")
	vb := watch(t, b, "v-b")
	var n notes
	startRelay(t, n1.mgr, pub.p, &n, "b")
	n.wait(t, "event 4 b")
	vt := vb.receiving("video", "alice", 10)

	stranger, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 2, SequenceNumber: 1}, Payload: make([]byte, 100)}).Marshal()
	for _, d := range [][]byte{pkt, {0x80, 200, 0, 1}, []byte("garbage"), {}} {
		for range 20 {
			_, _ = stranger.WriteTo(d, n2.pipe.LocalAddr())
		}
	}

	tok, err := n1.links.token()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		auth, body string
		want       int
	}{
		{"", `{"t":"join","node":"n1","pipe":"00"}`, http.StatusUnauthorized},
		{"Bearer " + tok, `{"t":"join","node":"n1","pipe":"` + strings.Repeat("00", 32) + `"}`, http.StatusConflict},
		{"Bearer " + tok, `{"t":"join","node":"n3","pipe":"00"}`, http.StatusBadRequest}, // not the token's node
		{"Bearer " + tok, `not json`, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(http.MethodPost, n2.url+LinkPath, strings.NewReader(x.body))
		if x.auth != "" {
			req.Header.Set("Authorization", x.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != x.want {
			t.Errorf("%q: HTTP %d, want %d", x.body, resp.StatusCode, x.want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	vb.receiving("video", "alice", vt.count()+20)
	if up := n2.links.Up(); up != 1 {
		t.Errorf("%d links on n2", up)
	}
	if all := n.all(); all[len(all)-1] != "event 4 b" {
		t.Errorf("notifications after the strangers: %q", all)
	}
}

// natConn sends what its node sends to the peer through a NAT: a UDP
// relay whose outside address is not the one the node said hello with.
type natConn struct {
	net.PacketConn
	inside net.Addr // where the NAT takes the node's packets
}

func (c *natConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	return c.PacketConn.WriteTo(b, c.inside)
}

// A node behind a NAT: the peer hears it from an address it did not say
// hello with; its packets authenticate, so the peer answers there.
func TestRemoteThroughNAT(t *testing.T) {
	c := newTestCluster()
	inside, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	outside, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n1conn net.Addr
	n1 := c.newTestNodeConn(t, "n1", func(pc net.PacketConn) net.PacketConn {
		n1conn = pc.LocalAddr()
		return &natConn{PacketConn: pc, inside: inside.LocalAddr()}
	})
	n2 := c.newTestNode(t, "n2", nil)
	done := make(chan struct{})
	var peer atomic.Pointer[net.Addr] // n2's address, once n1 sent to it
	forward := func(from, to net.PacketConn, dst func() net.Addr) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 1600)
		for {
			n, _, err := from.ReadFrom(buf)
			if err != nil {
				return
			}
			if d := dst(); d != nil {
				_, _ = to.WriteTo(buf[:n], d)
			}
		}
	}
	go forward(inside, outside, func() net.Addr { a := n2.pipe.LocalAddr(); peer.Store(&a); return a })
	go forward(outside, inside, func() net.Addr { return n1conn })
	t.Cleanup(func() {
		_ = inside.Close()
		_ = outside.Close()
		<-done
		<-done
	})

	a := n1.room(t, c, "a", "alice")
	b := n2.room(t, c, "b", "alice")
	pub := publish(t, a, "alice")
	vb := watch(t, b, "v-b")
	var n notes
	startRelay(t, n1.mgr, pub.p, &n, "b")
	n.wait(t, "event 4 b")
	vb.receiving("video", "alice", 30)
	// n2's keepalives reach n1 through the NAT too: from the NAT's
	// inside address, which n1 now sends to.
	want := inside.LocalAddr().(*net.UDPAddr).AddrPort()
	waitFor(t, "n1 hearing n2 through the NAT", func() bool {
		n1.links.mu.Lock()
		defer n1.links.mu.Unlock()
		p := n1.links.pipes["n2"]
		return p != nil && p.addr == want
	})
}

// Pipes on the ICE UDP mux (one UDP port for every client and every
// peer): each side writes to the other at once, so each mux sends the
// pipes their peer's packets.
func TestRemoteOverICEMux(t *testing.T) {
	c := newTestCluster()
	n1 := c.newTestNodeConn(t, "n1", onMux(t))
	n2 := c.newTestNodeConn(t, "n2", onMux(t))
	a := n1.room(t, c, "a", "alice")
	b := n2.room(t, c, "b", "alice")
	pub := publish(t, a, "alice")
	vb := watch(t, b, "v-b")
	var n notes
	startRelay(t, n1.mgr, pub.p, &n, "b")
	n.wait(t, "event 4 b")
	vt := vb.receiving("video", "alice", 30)
	vb.receiving("audio", "alice", 20)
	time.Sleep(silenceTimeout + keepalive) // the keepalives get through both ways
	vb.receiving("video", "alice", vt.count()+20)
	if up1, up2 := n1.links.Up(), n2.links.Up(); up1 != 1 || up2 != 1 {
		t.Errorf("links: n1 %d, n2 %d", up1, up2)
	}
}

// onMux puts a node's pipes on an ICE UDP mux of their socket.
func onMux(t *testing.T) func(net.PacketConn) net.PacketConn {
	return func(pc net.PacketConn) net.PacketConn {
		mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: pc})
		t.Cleanup(func() { _ = mux.Close() })
		conn, err := mux.GetConn(LinkUfrag, pc.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
}
