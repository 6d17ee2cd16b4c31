package client

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// loopPair is two PeerConnections connected directly (no signaling server):
// send carries a SyntheticPublisher's tracks, recv counts what arrives.
type loopPair struct {
	send, recv *webrtc.PeerConnection
	tracks     *trackSet
	done       chan struct{}
	wg         sync.WaitGroup
}

func newLoopPair(t *testing.T, sendAPI, recvAPI *webrtc.API, pub *SyntheticPublisher) *loopPair {
	t.Helper()
	lp := &loopPair{tracks: newTrackSet(), done: make(chan struct{})}
	var err error
	if lp.send, err = sendAPI.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if lp.recv, err = recvAPI.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pub.Stop()
		close(lp.done)
		_ = lp.send.GracefulClose()
		_ = lp.recv.GracefulClose()
		lp.wg.Wait()
	})

	for _, tr := range pub.Tracks() {
		x, err := lp.send.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		h := tr.(RTCPHandler)
		lp.wg.Add(1)
		go func() {
			defer lp.wg.Done()
			for {
				pkts, _, err := x.Sender().ReadRTCP()
				if err != nil {
					return
				}
				h.HandleRTCP(pkts)
			}
		}()
	}
	lp.recv.OnTrack(func(track *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		rt := newRemoteTrack(lp.recv, track, r)
		lp.tracks.add(rt)
		lp.wg.Add(1)
		go func() {
			defer lp.wg.Done()
			rt.readLoop()
		}()
	})

	// Non-trickle exchange: full SDPs once gathering is complete.
	offer, err := lp.send.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(lp.send)
	if err := lp.send.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	checkLoopbackOnly(t, lp.send.LocalDescription().SDP)
	if err := lp.recv.SetRemoteDescription(*lp.send.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := lp.recv.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(lp.recv)
	if err := lp.recv.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	checkLoopbackOnly(t, lp.recv.LocalDescription().SDP)
	if err := lp.send.SetRemoteDescription(*lp.recv.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "connected", func() bool {
		return lp.send.ConnectionState() == webrtc.PeerConnectionStateConnected &&
			lp.recv.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
	return lp
}

var candidateLine = regexp.MustCompile(`(?m)^a=candidate:\S+ \d+ (\S+) \d+ (\S+) \d+ typ (\S+)`)

// checkLoopbackOnly fails unless every candidate is a UDP host candidate on
// 127.0.0.1, and there is at least one.
func checkLoopbackOnly(t *testing.T, sdp string) {
	t.Helper()
	m := candidateLine.FindAllStringSubmatch(sdp, -1)
	if len(m) == 0 {
		t.Fatalf("no candidates in SDP:\n%s", sdp)
	}
	for _, c := range m {
		if !strings.EqualFold(c[1], "udp") || c[2] != "127.0.0.1" || c[3] != "host" {
			t.Errorf("non-loopback candidate: %s", c[0])
		}
	}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustAPI(t *testing.T) *webrtc.API {
	t.Helper()
	api, err := NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func waitTrack(t *testing.T, s *trackSet, kind string) *RemoteTrack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := s.wait(ctx, kind, nil, nil)
	if err != nil {
		t.Fatalf("no %s track: %v", kind, err)
	}
	return rt
}

func TestSyntheticPublisherLoopback(t *testing.T) {
	pub, err := NewSyntheticPublisher(PublisherOptions{StreamID: "s1", KeyframeInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lp := newLoopPair(t, mustAPI(t), mustAPI(t), pub)
	pub.Start()
	video := waitTrack(t, lp.tracks, "video")
	audio := waitTrack(t, lp.tracks, "audio")
	time.Sleep(1600 * time.Millisecond)
	pub.Stop() // stable counters from here
	time.Sleep(200 * time.Millisecond)

	if video.Codec != webrtc.MimeTypeVP8 || audio.Codec != webrtc.MimeTypeOpus {
		t.Errorf("codecs %s %s", video.Codec, audio.Codec)
	}
	if video.StreamID != "s1" || video.TrackID != "video" || audio.TrackID != "audio" || video.Mid == "" || video.SSRC == 0 {
		t.Errorf("ids: %+v", video)
	}
	if !video.FirstFrameKeyframe() {
		t.Error("first video packet does not start a keyframe")
	}
	if audio.FirstFrameKeyframe() {
		t.Error("audio reported a keyframe")
	}
	if k := video.Keyframes(); k < 3 || k > 5 {
		t.Errorf("keyframes received = %d, sent %d", k, pub.KeyframesSent())
	}
	// About 1.6 s of 500 kbit/s.
	if b := video.Bytes(); b < 60_000 || b > 150_000 {
		t.Errorf("video bytes = %d", b)
	}
	// 80 in 1.6 s of 20 ms Opus; a loaded machine's timers send fewer,
	// never more.
	if n := audio.Packets(); n < 40 || n > 100 {
		t.Errorf("audio packets = %d", n)
	}
	for _, rt := range []*RemoteTrack{video, audio} {
		h := rt.Latency()
		if h.Count() != rt.Packets() {
			t.Errorf("%s: %d latency samples for %d packets", rt.Kind, h.Count(), rt.Packets())
		}
		if p := h.Percentile(50); p <= 0 || p > 50*time.Millisecond {
			t.Errorf("%s: p50 latency %v", rt.Kind, p)
		}
		if len(rt.Latencies()) != min(h.Count(), recentWindow) {
			t.Errorf("%s: recent samples %d", rt.Kind, len(rt.Latencies()))
		}
		if rt.FirstPacketAt().IsZero() || !rt.LastPacketAt().After(rt.FirstPacketAt()) {
			t.Errorf("%s: packet times", rt.Kind)
		}
		if rt.IsEnded() {
			t.Errorf("%s ended early", rt.Kind)
		}
	}
	t.Logf("video %d pkts %d B, audio %d pkts; latency p50 %v p99 %v",
		video.Packets(), video.Bytes(), audio.Packets(), video.Latency().Percentile(50), video.Latency().Percentile(99))

	// Closing the sender ends the tracks.
	_ = lp.send.Close()
	for _, rt := range []*RemoteTrack{video, audio} {
		select {
		case <-rt.Ended():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s track did not end", rt.Kind)
		}
	}
}

func TestPLIGivesKeyframe(t *testing.T) {
	pub, err := NewSyntheticPublisher(PublisherOptions{KeyframeInterval: -1, NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	lp := newLoopPair(t, mustAPI(t), mustAPI(t), pub)
	pub.Start()
	video := waitTrack(t, lp.tracks, "video")
	eventually(t, 5*time.Second, "first keyframe", func() bool { return video.Keyframes() == 1 })
	time.Sleep(300 * time.Millisecond)
	if video.Keyframes() != 1 || pub.KeyframesSent() != 1 {
		t.Fatalf("periodic keyframes with interval -1: %d/%d", video.Keyframes(), pub.KeyframesSent())
	}
	if err := video.SendPLI(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "keyframe after PLI", func() bool {
		return pub.PLIsReceived() >= 1 && video.Keyframes() >= 2
	})
	if pub.KeyframesSent() < 2 {
		t.Errorf("keyframes sent = %d", pub.KeyframesSent())
	}
}

func TestReceiveDropNACKRecovered(t *testing.T) {
	recvAPI, stats, err := newDropAPI(LoopbackSettingEngine(), func(seq uint16) bool { return seq%20 == 0 })
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewSyntheticPublisher(PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lp := newLoopPair(t, mustAPI(t), recvAPI, pub)
	pub.Start()
	video := waitTrack(t, lp.tracks, "video")
	audio := waitTrack(t, lp.tracks, "audio")
	// Run until a few packets were dropped (2 s on an idle machine; a
	// loaded one sends fewer in that time), then let the retransmissions land.
	time.Sleep(2 * time.Second)
	eventually(t, 10*time.Second, "5 dropped packets", func() bool { return stats.dropped.Load() >= 5 })
	pub.Stop()
	time.Sleep(300 * time.Millisecond) // let the last retransmissions land

	dropped, recovered := int(stats.dropped.Load()), int(stats.recovered.Load())
	t.Logf("dropped %d recovered %d duplicates %d; NACK packets at publisher %d; video pkts %d (%d via RTX)",
		dropped, recovered, stats.duplicates.Load(), pub.NACKsReceived(), video.Packets(), video.RTXPackets())
	if dropped < 5 {
		t.Fatalf("dropped only %d", dropped)
	}
	if recovered < dropped-1 || recovered > dropped {
		t.Errorf("recovered %d of %d", recovered, dropped)
	}
	if pub.NACKsReceived() == 0 {
		t.Error("publisher saw no NACK")
	}
	if n := video.RTXPackets(); n == 0 || n > dropped {
		t.Errorf("%d RTX packets delivered for %d drops", n, dropped)
	}
	// Audio has no NACK: nothing of it may be dropped.
	if n := audio.Packets(); n < 80 {
		t.Errorf("audio packets = %d", n)
	}
}

// Without RTX (a server that does not negotiate it) the retransmission comes
// on the media SSRC with the original sequence number.
func TestReceiveDropNACKRecoveredWithoutRTX(t *testing.T) {
	stats := &dropStats{}
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb},
		PayloadType:        96,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	reg.Add(&dropFactory{drop: func(seq uint16) bool { return seq%20 == 0 }, stats: stats})
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	se := LoopbackSettingEngine()
	se.DisableSRTPReplayProtection(true) // as Dial does with ReceiveDrop
	recvAPI := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se))

	pub, err := NewSyntheticPublisher(PublisherOptions{NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	lp := newLoopPair(t, mustAPI(t), recvAPI, pub)
	if strings.Contains(lp.recv.LocalDescription().SDP, "rtx") {
		t.Fatal("answer negotiated RTX")
	}
	pub.Start()
	video := waitTrack(t, lp.tracks, "video")
	eventually(t, 10*time.Second, "recoveries", func() bool { return stats.recovered.Load() >= 4 })
	if video.RTXPackets() != 0 {
		t.Errorf("RTX packets without RTX: %d", video.RTXPackets())
	}
	if d, r := stats.dropped.Load(), stats.recovered.Load(); r > d {
		t.Errorf("recovered %d > dropped %d", r, d)
	}
}
