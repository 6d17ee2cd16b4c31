package relay

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/sfu"
)

// A real simulcast publisher (pion, 3 VP8 layers q/h/f with 320x180,
// 640x360 and 1280x720 keyframes; each payload's last byte names its
// layer) in room r.
func publishSimulcast(t *testing.T, r *sfu.Room, identity string) *sfu.Participant {
	t.Helper()
	p, _, err := r.Join(sfu.ParticipantParams{Identity: identity, Role: sfu.RoleHost, Events: nopSink{}})
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
	rids := []string{"q", "h", "f"}
	var tracks []*webrtc.TrackLocalStaticRTP
	for _, rid := range rids {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", identity, webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	tc, err := pc.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range tracks[1:] {
		if err := tc.Sender().AddEncoding(tr); err != nil {
			t.Fatal(err)
		}
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
	var midID, ridID uint8
	for _, e := range tc.Sender().GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		}
	}
	sizes := [][2]int{{320, 180}, {640, 360}, {1280, 720}}
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
			for l, tr := range tracks {
				b := make([]byte, []int{100, 300, 900}[l])
				b[0] = 0x10
				if i%25 == 0 {
					w, h := sizes[l][0], sizes[l][1]
					copy(b[1:], []byte{0, 0, 0, 0x9d, 0x01, 0x2a, byte(w), byte(w >> 8), byte(h), byte(h >> 8)})
				} else {
					b[1] = 0x01
				}
				b[len(b)-1] = byte(l)
				h := rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i + 1000*l), Timestamp: uint32(i) * 1800}
				_ = h.SetExtension(midID, []byte(tc.Mid()))
				_ = h.SetExtension(ridID, []byte(rids[l]))
				_ = tr.WriteRTP(&rtp.Packet{Header: h, Payload: b})
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
		_ = pc.Close()
	})
	// Every layer's size, not only the top one's: the layers' keyframes
	// are read by three goroutines, in any order, and a caller compares
	// the whole list.
	waitFor(t, "the simulcast track with its sizes", func() bool {
		ts := p.PublishedTracks()
		if len(ts) != 1 || len(ts[0].Layers()) != 3 {
			return false
		}
		for i, l := range ts[0].Layers() {
			if l.Width != sizes[i][0] {
				return false
			}
		}
		return true
	})
	return p
}

// videoTrack returns the video track object the viewer was told of.
func (v *testViewer) videoTrack() *sfu.TrackInfo {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, ev := range v.events {
		if e, ok := ev.(sfu.TrackPublished); ok && e.Track.Kind == "video" {
			return &e.Track
		}
	}
	return nil
}

// Relays carry every layer of a simulcast track, into a room of the same
// node and across nodes: the relayed track objects there have the same
// layers, a viewer there gets the top layer, and one that asks for
// maxWidth 640 gets the middle one.
func TestRelayCarriesEveryLayer(t *testing.T) {
	c := newTestCluster()
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	lc := n1.room(t, c, "c", "alice")
	b := n2.room(t, c, "b", "alice")
	pub := publishSimulcast(t, a, "alice")
	want := pub.PublishedTracks()[0].Layers()
	vc := watch(t, lc, "viewer-c")
	vb := watch(t, b, "viewer-b")
	var n notes
	startRelay(t, n1.mgr, pub, &n, "c", "b")

	for name, v := range map[string]*testViewer{"c (same node)": vc, "b (other node)": vb} {
		vt := v.receiving("video", "alice", 20)
		waitFor(t, "the top layer in "+name, func() bool { return vt.last.Load() == 2 })
		var tr *sfu.TrackInfo
		waitFor(t, "the relayed track's layers in "+name, func() bool {
			tr = v.videoTrack()
			if tr == nil {
				return false
			}
			for _, p := range v.p.Room().Members() {
				for _, up := range p.PublishedTracks() {
					if up.ID() == tr.ID && slices.Equal(up.Layers(), want) {
						return true
					}
				}
			}
			return false
		})
		// Told at publish: the rids and qualities (the sizes come with
		// the keyframes, and track.updated, there).
		if len(tr.Layers) != len(want) {
			t.Fatalf("%s: track.published layers %+v, want %+v", name, tr.Layers, want)
		}
		for i := range want {
			if tr.Layers[i].RID != want[i].RID || tr.Layers[i].Quality != want[i].Quality || tr.Layers[i].MaxBitrate != want[i].MaxBitrate {
				t.Errorf("%s: track.published layer %d %+v, want %+v", name, i, tr.Layers[i], want[i])
			}
		}
		v.p.SetTrackSettings(tr.ID, sfu.LayerSettings{MaxWidth: 640})
		waitFor(t, "the middle layer in "+name, func() bool { return vt.last.Load() == 1 })
	}
}
