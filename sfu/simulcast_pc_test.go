package sfu

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// A real simulcast publisher: a pion PeerConnection sending three VP8
// layers (rids q, h, f; 320x180, 640x360, 1280x720 keyframes), each
// packet's last payload byte naming its layer (0, 1, 2) so a viewer can
// tell which it gets.

var simRIDs = []string{"q", "h", "f"}

var simSizes = [][2]int{{320, 180}, {640, 360}, {1280, 720}}

// vp8Frame is a one-packet VP8 frame of layer: a keyframe (with its size)
// or an inter frame, n bytes.
func vp8Frame(layer int, key bool, n int) []byte {
	b := make([]byte, n)
	b[0] = 0x10 // S=1, PID=0
	if key {
		w, h := simSizes[layer][0], simSizes[layer][1]
		copy(b[1:], []byte{0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, byte(w), byte(w >> 8), byte(h), byte(h >> 8)})
	} else {
		b[1] = 0x01 // P=1
	}
	b[n-1] = byte(layer)
	return b
}

// publishSimulcast opens a publisher PC for p sending 3 layers until the
// test ends (a keyframe every 25 frames of 20 ms per layer; sizes 100,
// 300, 900 bytes). skip, when set, stops layers it returns true for.
func (c *peer) publishSimulcast(p *Participant, skip func(layer int) bool) {
	c.publishSimulcastAudio(p, skip, false)
}

// publishSimulcastAudio is publishSimulcast, with an Opus track too when
// audio is set (its payloads end in 9).
func (c *peer) publishSimulcastAudio(p *Participant, skip func(layer int) bool, audio bool) {
	c.publishSimulcastCodec(p, skip, audio, false)
}

// h264Frame is a one-packet H.264 frame of layer (an IDR slice or a
// non-IDR one), n bytes, its last byte the layer.
func h264Frame(layer int, key bool, n int) []byte {
	b := make([]byte, n)
	b[0] = 0x41 // NRI 2, type 1: a non-IDR slice
	if key {
		b[0] = 0x65 // type 5: an IDR slice
	}
	b[1] = 0x88
	b[n-1] = byte(layer)
	return b
}

// publishSimulcastCodec is publishSimulcastAudio, in H.264 when h264.
func (c *peer) publishSimulcastCodec(p *Participant, skip func(layer int) bool, audio, h264 bool) {
	c.t.Helper()
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	frame := vp8Frame
	if h264 {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
		frame = h264Frame
	}
	pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		c.t.Fatal(err)
	}
	var opus *webrtc.TrackLocalStaticRTP
	if audio {
		opus, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "alice")
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := pc.AddTransceiverFromTrack(opus, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			c.t.Fatal(err)
		}
	}
	var tracks []*webrtc.TrackLocalStaticRTP
	for _, rid := range simRIDs {
		tr, err := webrtc.NewTrackLocalStaticRTP(codec, "video", "alice", webrtc.WithRTPStreamID(rid))
		if err != nil {
			c.t.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	tc, err := pc.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		c.t.Fatal(err)
	}
	for _, tr := range tracks[1:] {
		if err := tc.Sender().AddEncoding(tr); err != nil {
			c.t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	<-webrtc.GatheringCompletePromise(pc)
	var answer string
	if err := p.HandleOffer(pc.LocalDescription().SDP, func(a string) { answer = a }); err != nil {
		c.t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		c.t.Fatal(err)
	}
	// pion sends the mid and rid header extensions only when told to.
	var midID, ridID uint8
	for _, e := range tc.Sender().GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		}
	}
	if midID == 0 || ridID == 0 {
		c.t.Fatal("no mid or rid header extension negotiated")
	}
	mid := tc.Mid()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if opus != nil {
				_ = opus.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 960}, Payload: []byte{0xfc, 1, 2, 9}})
			}
			for l, tr := range tracks {
				if skip != nil && skip(l) {
					continue
				}
				n := []int{100, 300, 900}[l]
				h := rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i + 1000*l), Timestamp: uint32(i)*1800 + uint32(l)*77777}
				_ = h.SetExtension(midID, []byte(mid))
				_ = h.SetExtension(ridID, []byte(simRIDs[l]))
				_ = tr.WriteRTP(&rtp.Packet{Header: h, Payload: frame(l, i%25 == 0, n)})
			}
		}
	}()
	c.t.Cleanup(func() {
		close(stop)
		wg.Wait()
		_ = pc.Close()
	})
}

// got is one packet a viewer received.
type got struct {
	seq   uint16
	ts    uint32
	ssrc  uint32
	layer byte
	kind  webrtc.RTPCodecType
}

// simulcastPair makes room "sim" on a loopback SFU with a 1.1 host, alice,
// and a 1.1 viewer, bob, whose subscriber PC's packets rec records.
func simulcastPair(t *testing.T) (alice *peer, ap *Participant, bob *peer, bp *Participant, rec *recorder) {
	t.Helper()
	s := newLoopbackSFU(t, Config{})
	room, err := s.CreateRoom("sim", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	alice = newPeer(t, 0)
	ap = alice.join(room, ParticipantParams{Identity: "alice", Role: RoleHost, V11: true})
	bob = newPeer(t, 0)
	rec = &recorder{}
	rec.attach(bob.sub)
	bp = bob.join(room, ParticipantParams{Identity: "bob", Role: RoleViewer, V11: true})
	return alice, ap, bob, bp, rec
}

// recorder records the packets of a peer's subscriber PC.
type recorder struct {
	mu   sync.Mutex
	pkts []got
	n    atomic.Int64
}

func (r *recorder) attach(pc *webrtc.PeerConnection) {
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if len(p.Payload) == 0 {
				continue // padding
			}
			r.mu.Lock()
			r.pkts = append(r.pkts, got{p.SequenceNumber, p.Timestamp, p.SSRC, p.Payload[len(p.Payload)-1], tr.Kind()})
			r.mu.Unlock()
			r.n.Add(1)
		}
	})
}

func (r *recorder) video() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []got
	for _, g := range r.pkts {
		if g.kind == webrtc.RTPCodecTypeVideo {
			out = append(out, g)
		}
	}
	return out
}

func (c *peer) layerEvents() []TrackLayer {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []TrackLayer
	for _, ev := range c.events {
		if e, ok := ev.(TrackLayer); ok {
			out = append(out, e)
		}
	}
	return out
}

func lastLayer(r *recorder) int {
	v := r.video()
	if len(v) == 0 {
		return -1
	}
	return int(v[len(v)-1].layer)
}

// TestSimulcastLayersAndSwitch: a 3-layer publisher's track has its
// layers (sizes from the keyframes); a viewer gets the top layer, then
// with maxWidth 640 the middle one, told by track.layer; across the
// switch the SSRC stays, sequence numbers have no gap and timestamps go
// forward.
func TestSimulcastLayersAndSwitch(t *testing.T) {
	alice, ap, bob, bp, rec := simulcastPair(t)
	alice.publishSimulcast(ap, nil)

	var up *UpTrack
	waitLong(t, "the simulcast track", func() bool {
		ts := ap.PublishedTracks()
		if len(ts) == 1 {
			up = ts[0]
		}
		return up != nil
	})
	waitLong(t, "the layers' sizes", func() bool {
		ls := up.Layers()
		return len(ls) == 3 && ls[0].Width == 320 && ls[1].Width == 640 && ls[2].Width == 1280
	})
	ls := up.Layers()
	for i, q := range []string{QualityLow, QualityMedium, QualityHigh} {
		if ls[i].Quality != q || ls[i].RID != simRIDs[i] || ls[i].Height != simSizes[i][1] {
			t.Errorf("layer %d = %+v, want rid %s %s", i, ls[i], simRIDs[i], q)
		}
	}
	// The viewer got the track before its keyframes' sizes were known:
	// track.updated tells them (the publisher is not told).
	waitLong(t, "track.updated with the sizes", func() bool {
		bob.mu.Lock()
		defer bob.mu.Unlock()
		for _, ev := range bob.events {
			if e, ok := ev.(TrackUpdated); ok && e.Track.ID == up.ID() && len(e.Track.Layers) == 3 && e.Track.Layers[2].Width == 1280 {
				return true
			}
		}
		return false
	})
	alice.mu.Lock()
	for _, ev := range alice.events {
		if _, ok := ev.(TrackUpdated); ok {
			t.Errorf("the publisher was told track.updated")
		}
	}
	alice.mu.Unlock()
	waitLong(t, "the top layer at the viewer", func() bool { return lastLayer(rec) == 2 })
	waitLong(t, "track.layer high", func() bool {
		ev := bob.layerEvents()
		return len(ev) >= 1 && ev[len(ev)-1].RID == "f" && ev[len(ev)-1].Quality == QualityHigh && ev[len(ev)-1].Reason == ReasonRequested
	})

	bp.SetTrackSettings(up.ID(), LayerSettings{MaxWidth: 640})
	waitLong(t, "the middle layer", func() bool { return lastLayer(rec) == 1 })
	waitLong(t, "track.layer medium", func() bool {
		ev := bob.layerEvents()
		return len(ev) >= 2 && ev[len(ev)-1].RID == "h" && ev[len(ev)-1].Quality == QualityMedium
	})
	time.Sleep(200 * time.Millisecond)
	checkContinuous(t, rec.video())
	// The viewer negotiated transport-cc: its feedback feeds its estimate.
	waitLong(t, "an estimate from the viewer's TWCC feedback", func() bool {
		_, st, ok := bp.bwe.estimate()
		return ok && st.Delivered > 0
	})
}

// checkContinuous checks a viewer's video: one SSRC, no sequence gap,
// timestamps never going back, and each layer change at a keyframe.
func checkContinuous(t *testing.T, v []got) {
	t.Helper()
	switches := 0
	for i := 1; i < len(v); i++ {
		a, b := v[i-1], v[i]
		if a.ssrc != b.ssrc {
			t.Fatalf("packet %d: ssrc %d after %d", i, b.ssrc, a.ssrc)
		}
		if b.seq != a.seq+1 {
			t.Fatalf("packet %d: seq %d after %d", i, b.seq, a.seq)
		}
		if int32(b.ts-a.ts) <= 0 {
			t.Fatalf("packet %d: timestamp %d after %d", i, b.ts, a.ts)
		}
		if a.layer != b.layer {
			switches++
		}
	}
	if switches == 0 {
		t.Fatalf("no layer switch in %d packets", len(v))
	}
}

func (r *recorder) count(kind webrtc.RTPCodecType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, g := range r.pkts {
		if g.kind == kind {
			n++
		}
	}
	return n
}

// TestPausedGetsNoVideoButAudio: a viewer that pauses the video track
// gets no video within 1 s (no renegotiation), while audio flows; unpaused
// it gets video again, with no sequence gap.
func TestPausedGetsNoVideoButAudio(t *testing.T) {
	alice, ap, bob, bp, rec := simulcastPair(t)
	alice.publishSimulcastAudio(ap, nil, true)
	var video *UpTrack
	waitLong(t, "both tracks", func() bool {
		ts := ap.PublishedTracks()
		for _, t := range ts {
			if t.Kind() == webrtc.RTPCodecTypeVideo {
				video = t
			}
		}
		return len(ts) == 2 && video != nil
	})
	waitLong(t, "video and audio at the viewer", func() bool {
		return rec.count(webrtc.RTPCodecTypeVideo) > 10 && rec.count(webrtc.RTPCodecTypeAudio) > 10
	})
	offered, _ := bob.counts()
	bp.SetTrackSettings(video.ID(), LayerSettings{Paused: true})
	time.Sleep(time.Second)
	v0, a0 := rec.count(webrtc.RTPCodecTypeVideo), rec.count(webrtc.RTPCodecTypeAudio)
	time.Sleep(time.Second)
	v1, a1 := rec.count(webrtc.RTPCodecTypeVideo), rec.count(webrtc.RTPCodecTypeAudio)
	if v1 != v0 {
		t.Errorf("paused: %d video packets in a second, want none", v1-v0)
	}
	if a1-a0 < 20 {
		t.Errorf("paused video: %d audio packets in a second, want ~50", a1-a0)
	}
	bp.SetTrackSettings(video.ID(), LayerSettings{})
	waitLong(t, "video again", func() bool { return rec.count(webrtc.RTPCodecTypeVideo) > v1+10 })
	if n, _ := bob.counts(); n != offered {
		t.Errorf("%d subscriber offers during pause and resume, want none", n-offered)
	}
	v := rec.video()
	for i := 1; i < len(v); i++ {
		if v[i].seq != v[i-1].seq+1 {
			t.Fatalf("video packet %d: seq %d after %d", i, v[i].seq, v[i-1].seq)
		}
	}
}

// TestSimulcastH264: an H.264 simulcast track (its keyframes without an
// SPS: sizes unknown, so the layers rank in a=simulcast order) is one
// track of three layers; a viewer asking for medium gets the middle one,
// continuous across the switch.
func TestSimulcastH264(t *testing.T) {
	alice, ap, _, bp, rec := simulcastPair(t)
	alice.publishSimulcastCodec(ap, nil, false, true)
	var up *UpTrack
	waitLong(t, "the H.264 simulcast track", func() bool {
		ts := ap.PublishedTracks()
		if len(ts) == 1 {
			up = ts[0]
		}
		return up != nil
	})
	if CodecName(up.Codec().MimeType) != "H264" {
		t.Fatalf("codec %s", up.Codec().MimeType)
	}
	ls := up.Layers()
	if len(ls) != 3 || ls[0].RID != "q" || ls[1].Quality != QualityMedium || ls[2].RID != "f" {
		t.Fatalf("layers %+v", ls)
	}
	waitLong(t, "the top layer", func() bool { return lastLayer(rec) == 2 })
	bp.SetTrackSettings(up.ID(), LayerSettings{Quality: QualityMedium})
	waitLong(t, "the middle layer", func() bool { return lastLayer(rec) == 1 })
	time.Sleep(200 * time.Millisecond)
	checkContinuous(t, rec.video())
}
