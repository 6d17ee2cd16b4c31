package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"
)

// TestLightCountsDrops feeds a light stream sequence numbers with gaps,
// wraparound, reordering and duplicates, and checks its counts and the
// NACKs it would send.
func TestLightCountsDrops(t *testing.T) {
	cases := []struct {
		name               string
		seqs               []uint16
		unique, dups, lost uint64
		missing            []uint16
		missingLen         int // when missing is too long to list
	}{
		{name: "in order", seqs: []uint16{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, unique: 10},
		{name: "gap", seqs: []uint16{1, 2, 3, 6, 7}, unique: 5, lost: 2, missing: []uint16{4, 5}},
		{name: "wraparound", seqs: []uint16{65533, 65534, 65535, 0, 1, 2}, unique: 6},
		{name: "gap at the wrap", seqs: []uint16{65534, 65535, 1, 2}, unique: 4, lost: 1, missing: []uint16{0}},
		{name: "reordered", seqs: []uint16{1, 2, 4, 3, 5}, unique: 5},
		{name: "reordered across the wrap", seqs: []uint16{65535, 1, 0, 2}, unique: 4},
		{name: "duplicates", seqs: []uint16{1, 2, 2, 3, 1}, unique: 3, dups: 2},
		{name: "late retransmissions fill the gap", seqs: []uint16{1, 2, 5, 6, 3, 4}, unique: 6},
		{name: "one of two retransmitted", seqs: []uint16{10, 11, 14, 15, 12}, unique: 5, lost: 1, missing: []uint16{13}},
		{name: "a jump past the NACK log", seqs: []uint16{1, 2001}, unique: 2, lost: 1999, missingLen: nackLogSize - 1},
		{name: "a jump past the duplicate log, then the old one again", seqs: []uint16{1, 2, 1500, 2}, unique: 4, lost: 1497 - 1, missingLen: nackLogSize - 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s lightStream
			for i, q := range c.seqs {
				s.onRTP(q, false, int64(i+1), 0, math.MaxInt64)
			}
			expected := uint64(s.highest - s.first + 1)
			if s.unique != c.unique || s.dups != c.dups || s.packets != uint64(len(c.seqs)) {
				t.Errorf("unique %d dups %d packets %d, want %d %d %d", s.unique, s.dups, s.packets, c.unique, c.dups, len(c.seqs))
			}
			if lost := expected - min(expected, s.unique); lost != c.lost {
				t.Errorf("lost %d (expected %d), want %d", lost, expected, c.lost)
			}
			got := s.nacks(maxNacksPerPacket, nil)
			if c.missingLen > 0 {
				if len(got) != c.missingLen {
					t.Errorf("%d NACKed, want %d", len(got), c.missingLen)
				}
			} else if !slices.Equal(got, c.missing) {
				t.Errorf("NACKed %v, want %v", got, c.missing)
			}
		})
	}
}

// TestLightNackSchedule: a lost packet is NACKed at every tick until
// maxNacksPerPacket, and forgotten once it came.
func TestLightNackSchedule(t *testing.T) {
	var s lightStream
	for _, q := range []uint16{1, 2, 5, 6} {
		s.onRTP(q, false, 1, 0, math.MaxInt64)
	}
	for i := 0; i < maxNacksPerPacket; i++ {
		if got := s.nacks(maxNacksPerPacket, nil); !slices.Equal(got, []uint16{3, 4}) {
			t.Fatalf("tick %d: NACKed %v, want [3 4]", i, got)
		}
	}
	if got := s.nacks(maxNacksPerPacket, nil); len(got) != 0 {
		t.Fatalf("after %d NACKs: NACKed %v again", maxNacksPerPacket, got)
	}
	s.onRTP(3, false, 2, 0, math.MaxInt64)
	s.onRTP(7, false, 2, 0, math.MaxInt64)
	if got := s.nacks(maxNacksPerPacket, nil); len(got) != 0 {
		t.Fatalf("NACKed %v, want nothing (4 was given up on)", got)
	}
	if _, ok := s.nackCount[3]; ok {
		t.Error("3 came but is still in the NACK counts")
	}
	if s.lastConsecutive != s.first+2 {
		// 4 never came: pion's receive log stays behind it too
		t.Errorf("lastConsecutive is seq %d, want 3", uint16(s.lastConsecutive))
	}
}

// TestLightWindow: the window's packets are those above the highest one
// when it opened, up to the highest one when it closed, late ones included.
func TestLightWindow(t *testing.T) {
	const ws, we = 100, 200
	type pkt struct {
		seq uint16
		at  int64
	}
	cases := []struct {
		name       string
		pkts       []pkt
		span, recv uint64
	}{
		{"all came", []pkt{{1, 50}, {2, 60}, {3, 110}, {5, 150}, {6, 210}, {4, 220}, {7, 230}}, 3, 3},
		{"one lost", []pkt{{1, 50}, {2, 60}, {3, 110}, {5, 150}, {6, 210}, {7, 230}}, 3, 2},
		{"nothing after the end", []pkt{{1, 50}, {2, 110}, {3, 150}}, 2, 2},
		{"a duplicate in the window", []pkt{{1, 50}, {2, 110}, {2, 120}, {3, 150}}, 2, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s lightStream
			for _, p := range c.pkts {
				end := int64(math.MaxInt64)
				if p.at >= we {
					end = we
				}
				s.onRTP(p.seq, false, p.at, ws, end)
			}
			span, recv, ok := s.winFigures(ws)
			if !ok || span != c.span || recv != c.recv {
				t.Errorf("span %d recv %d ok %v, want %d %d", span, recv, ok, c.span, c.recv)
			}
			if _, _, ok := s.winFigures(ws + 1); ok {
				t.Error("figures for another window")
			}
		})
	}
}

func TestIsMedia(t *testing.T) {
	rtp := make([]byte, 12)
	rtp[0], rtp[1] = 0x80, 96
	rtcpSR := []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0}
	stun := make([]byte, 20)
	dtls := append([]byte{22, 0xfe, 0xfd}, make([]byte, 10)...)
	marked := slices.Clone(rtp)
	marked[1] = 0x80 | 111
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{{"rtp", rtp, true}, {"rtp with the marker bit", marked, true}, {"rtcp", rtcpSR, false}, {"stun", stun, false}, {"dtls", dtls, false}, {"short", rtp[:8], false}} {
		if got := isMedia(c.b); got != c.want {
			t.Errorf("%s: isMedia %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseSSRCs(t *testing.T) {
	const offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n" +
		"a=ssrc:11 cname:x\r\na=ssrc:11 msid:alice a1\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n" +
		"a=ssrc:22 cname:x\r\na=ssrc:22 msid:alice v1\r\n"
	got := parseSSRCs(offer)
	want := map[uint32]ssrcInfo{11: {kind: 'a', streamID: "alice"}, 22: {kind: 'v', nack: true, streamID: "alice"}}
	if len(got) != len(want) || got[11] != want[11] || got[22] != want[22] {
		t.Errorf("parseSSRCs = %+v, want %+v", got, want)
	}
}

// BenchmarkLightOnRTP is the light viewer's per-packet cost past the
// system call: a batch of 16 packets of one video stream counted under
// one lock, as lightConn hands them over.
func BenchmarkLightOnRTP(b *testing.B) {
	var w window
	w.end.Store(math.MaxInt64)
	w.start.Store(1)
	c := newLightCounter(nil, &w)
	pkts := make([][]byte, lightBatch)
	for i := range pkts {
		p := make([]byte, 1200)
		p[0], p[1] = 0x80, 96
		binary.BigEndian.PutUint32(p[8:12], 0x1234)
		pkts[i] = p
	}
	b.ReportAllocs()
	b.ResetTimer()
	var seq uint16
	for n := 0; n < b.N; n += lightBatch {
		for _, p := range pkts {
			binary.BigEndian.PutUint16(p[2:4], seq)
			seq++
		}
		c.onBatch(pkts, int64(n)+2)
	}
}

// TestLightAndFull runs the bench over loopback (relayd spawned, as
// TestSmoke) with two full viewers and four light ones, and checks that
// the light viewers' counts agree with the full viewers' of the same
// run, and that the report says which viewers the latency came from.
func TestLightAndFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs relayd")
	}
	bin := buildRelayd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	rep, err := Run(ctx, Config{
		Spawn: bin, Viewers: 6, Light: true, FullViewers: 2,
		Duration: 3 * time.Second, Warmup: 500 * time.Millisecond, Audio: true,
		floorPackets: 2000,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, stderr.String())
	}
	l := rep.Light
	if l == nil {
		t.Fatal("no light object in the report")
	}
	if l.Full.Viewers != 2 || l.Light.Viewers != 4 || len(l.FullViewerIDs) != 2 {
		t.Fatalf("full %d light %d ids %v, want 2, 4 and two ids", l.Full.Viewers, l.Light.Viewers, l.FullViewerIDs)
	}
	if l.Full.PacketsReceived == 0 || l.Light.PacketsReceived == 0 {
		t.Fatalf("received: full %d light %d", l.Full.PacketsReceived, l.Light.PacketsReceived)
	}
	// Per viewer, a light one received what a full one did: the windows
	// differ only at their edges (send time against sequence numbers),
	// a packet or two of ~600 per track.
	full := float64(l.Full.PacketsReceived) / 2
	light := float64(l.Light.PacketsReceived) / 4
	if math.Abs(light-full) > 0.02*full {
		t.Errorf("per viewer: light received %.0f, full %.0f (more than 2%% apart)", light, full)
	}
	fl, ll := nan0(l.Full.LossRatio), nan0(l.Light.LossRatio)
	if !(math.Abs(fl-ll) < 0.005) {
		t.Errorf("loss: full %.4f light %.4f", fl, ll)
	}
	if rep.Viewers != 6 || rep.PacketsReceived != l.Full.PacketsReceived+l.Light.PacketsReceived {
		t.Errorf("viewers %d, received %d: not the two kinds together", rep.Viewers, rep.PacketsReceived)
	}
	if rep.LatencyMS.Count == 0 {
		t.Error("no latency samples from the full viewers")
	}
	if rep.JoinToFirstFrameMS.Count != 6 || rep.ViewersWithoutFrame != 0 {
		t.Errorf("first frames: %d, %d without: the light viewers' first frames were not signalled", rep.JoinToFirstFrameMS.Count, rep.ViewersWithoutFrame)
	}
	t.Logf("%s", stdout.String())
}

// TestLightNacks: light viewers that lose a video packet in 40 (dropped
// on arrival, once) NACK them through their PeerConnection (SRTCP), the
// server retransmits them, and their loss ends as the full viewer's.
func TestLightNacks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs relayd")
	}
	bin := buildRelayd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	rep, err := Run(ctx, Config{
		Spawn: bin, Viewers: 3, Light: true, FullViewers: 1,
		Duration: 3 * time.Second, Warmup: 500 * time.Millisecond, Audio: true,
		floorPackets: 2000,
		lightDrop:    func(seq uint16) bool { return seq%40 == 7 },
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, stderr.String())
	}
	l := rep.Light
	if l == nil || l.Light.Viewers != 2 {
		t.Fatalf("light object %+v, want 2 light viewers", l)
	}
	// ~3 s of ~150 video packets a second, one in 40 dropped, at two
	// light viewers: ~20 NACKed packets.
	if n := nan0(rep.Server.NACKs); !(n >= 10) {
		t.Errorf("the server got %v NACKs, want the light viewers' (>= 10)", n)
	}
	if n := nan0(rep.Server.RetransmitsHit); !(n >= 10) {
		t.Errorf("the server retransmitted %v packets, want >= 10", n)
	}
	if ll := nan0(l.Light.LossRatio); !(ll < 0.002) {
		t.Errorf("light loss %.4f after retransmissions, want < 0.2%% (full: %v)", ll, nan0(l.Full.LossRatio))
	}
	t.Logf("%s", stdout.String())
}
