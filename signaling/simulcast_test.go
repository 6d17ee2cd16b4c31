package signaling

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
)

// sendLayers writes VP8 frames to a simulcast track's three layers every
// 20 ms (a keyframe of 320x180, 640x360 or 1280x720 every 25 frames, or
// when asked) until the test ends.
func sendLayers(t *testing.T, st *client.SimulcastTrack) {
	t.Helper()
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
			for l, lt := range st.Layers() {
				b := make([]byte, []int{100, 300, 900}[l])
				b[0] = 0x10
				if i%25 == 0 || lt.KeyframeWanted() {
					w, h := sizes[l][0], sizes[l][1]
					copy(b[1:], []byte{0, 0, 0, 0x9d, 0x01, 0x2a, byte(w), byte(w >> 8), byte(h), byte(h >> 8)})
				} else {
					b[1] = 0x01
				}
				_ = lt.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i) * 3000}, Payload: b})
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

// The simulcast notifications on the wire (1.1 §3): the publisher is told
// publisher.layers, the viewer's track objects have layers (sizes told by
// track.updated), track.layer names the layer and rid, and maxWidth 640
// brings the middle layer ("requested"); a 1.0 viewer gets none of the
// notifications but the same track objects.
func TestSimulcastOnTheWire(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "A", "host")
	v11, _ := ts.join11(t, "v11", "A", "viewer")
	v10, _ := ts.join(t, "v10", "A", "viewer")
	st, err := client.NewSimulcastTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "alice",
		client.SimulcastLayer{RID: "q", MaxBitrate: 150_000}, client.SimulcastLayer{RID: "h"}, client.SimulcastLayer{RID: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Publish(ctx, st.Tracks()...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	sendLayers(t, st)
	video := ownTrack(t, host, "alice", "video")
	if len(video.Layers) != 3 || video.Layers[0].RID != "q" || video.Layers[0].Quality != "low" || video.Layers[0].MaxBitrate != 150_000 ||
		video.Layers[2].RID != "f" || video.Layers[2].Quality != "high" {
		t.Fatalf("the track object's layers: %+v", video.Layers)
	}
	waitNote(t, host, "publisher.layers", func(p json.RawMessage) bool {
		var ev client.PublisherLayersEvent
		return json.Unmarshal(p, &ev) == nil && ev.TrackID == video.ID && slices.Equal(ev.Active, []string{"q", "h", "f"})
	})
	waitNote(t, v11, "track.updated", func(p json.RawMessage) bool {
		var ev client.TrackUpdatedEvent
		return json.Unmarshal(p, &ev) == nil && ev.Track.ID == video.ID && len(ev.Track.Layers) == 3 &&
			ev.Track.Layers[0].Width == 320 && ev.Track.Layers[1].Height == 360 && ev.Track.Layers[2].Width == 1280
	})
	waitNote(t, v11, "track.layer", func(p json.RawMessage) bool {
		var ev client.TrackLayerEvent
		return json.Unmarshal(p, &ev) == nil && ev.TrackID == video.ID && ev.Quality == "high" && ev.RID == "f" && ev.Reason == "requested"
	})
	if err := v11.Call(ctx, "track.settings", map[string]any{"trackId": video.ID, "maxWidth": 640}, nil); err != nil {
		t.Fatal(err)
	}
	waitNote(t, v11, "track.layer", func(p json.RawMessage) bool {
		var ev client.TrackLayerEvent
		return json.Unmarshal(p, &ev) == nil && ev.TrackID == video.ID && ev.Quality == "medium" && ev.RID == "h" && ev.Reason == "requested"
	})
	receiving(t, v10, "video", 20)
	for _, m := range []string{"track.layer", "track.updated", "publisher.layers"} {
		noNote(t, v10, m, nil, 10*time.Millisecond)
	}
	room, err := ts.admin(t).Room(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range room.Participants {
		for _, tr := range p.Tracks {
			if tr.ID == video.ID && (len(tr.Layers) != 3 || tr.Layers[1].Width != 640) {
				t.Errorf("GET /v1/rooms/A: the track's layers %+v", tr.Layers)
			}
		}
	}
}

// A pion simulcast publisher renegotiates as often as it likes: pion
// copies the last answer's rids into its next offer as recv rids, which
// the server declines (sfu/recvrids.go); before, the third negotiation
// (a second Publish, then an ICE restart) had 9 rids and got -32602.
// And the layers keep flowing after each restart: a restart loses a few
// packets, and pion's retransmissions of them on RTX (rid, no rrid) took
// the layers' tracks over until the answer for simulcast dropped RTX
// (noRTXForSimulcast).
func TestSimulcastRenegotiates(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "A", "host")
	v, _ := ts.join11(t, "v", "A", "viewer")
	st, err := client.NewSimulcastTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "alice",
		client.SimulcastLayer{RID: "q"}, client.SimulcastLayer{RID: "h"}, client.SimulcastLayer{RID: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Publish(ctx, st.Tracks()...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	sendLayers(t, st)
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Publish(ctx, audio); err != nil {
		t.Fatalf("the second publish: %v", err)
	}
	tr := receiving(t, v, "video", 20)
	for i := range 2 {
		p := tr.Packets()
		if err := host.RestartICE(ctx); err != nil {
			t.Fatalf("ICE restart %d (negotiation %d): %v", i+1, i+3, err)
		}
		for deadline := time.Now().Add(10 * time.Second); tr.Packets() < p+20; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("ICE restart %d: %d video packets since, want 20", i+1, tr.Packets()-p)
			}
		}
	}
}
