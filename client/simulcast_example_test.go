package client_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
)

// A host publishes one video track as three simulcast layers; a 1.1
// viewer is told the layer it gets (track.layer), asks for the low one
// with TrackSettings, and gets it.
func ExampleNewSimulcastTrack() {
	ctx, admin, stop := start()
	defer stop()
	host := dialJoin11(ctx, admin, "alice", "show", "host")
	defer host.Close()

	st, err := client.NewSimulcastTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "camera", "alice",
		client.SimulcastLayer{RID: "q", MaxBitrate: 150_000},
		client.SimulcastLayer{RID: "h", MaxBitrate: 500_000},
		client.SimulcastLayer{RID: "f", MaxBitrate: 1_500_000})
	if err != nil {
		log.Fatal(err)
	}
	if err := host.Publish(ctx, st.Tracks()...); err != nil {
		log.Fatal(err)
	}
	// Each layer is fed its own encoded stream: here a VP8 header of the
	// layer's size, as an encoder's frames start.
	enc := startLayerFrames(st, [][2]int{{320, 180}, {640, 360}, {1280, 720}})
	defer enc.stop()
	// A 1.1 publisher is told its own tracks once the server has them.
	own, err := client.WaitEvent(ctx, host, client.NotifyTrackPublished, func(e client.TrackEvent) bool { return e.Track.Kind == "video" })
	if err != nil {
		log.Fatal(err)
	}
	video := own.Track
	for _, l := range video.Layers {
		fmt.Printf("layer %s: %s\n", l.RID, l.Quality)
	}
	viewer := dialJoin11(ctx, admin, "bob", "show", "viewer")
	defer viewer.Close()
	layer, err := client.WaitEvent[client.TrackLayerEvent](ctx, viewer, client.NotifyTrackLayer, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob gets %s (%s), %s\n", layer.Quality, layer.RID, layer.Reason)

	settings, err := viewer.TrackSettings(ctx, client.TrackSettingsParams{TrackID: video.ID, Quality: client.QualityLow})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("settings: quality %s\n", settings.Quality)
	layer, err = client.WaitEvent(ctx, viewer, client.NotifyTrackLayer, func(e client.TrackLayerEvent) bool { return e.Quality == client.QualityLow })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob gets %s (%s), %s\n", layer.Quality, layer.RID, layer.Reason)
	// Output:
	// layer q: low
	// layer h: medium
	// layer f: high
	// bob gets high (f), requested
	// settings: quality low
	// bob gets low (q), requested
}

// layerFrames sends a 30 fps stream of one-packet VP8 frames on each layer
// of a simulcast track, a keyframe (with the layer's size) every second
// and whenever one is asked for.
type layerFrames struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func startLayerFrames(st *client.SimulcastTrack, sizes [][2]int) *layerFrames {
	f := &layerFrames{done: make(chan struct{})}
	for i, l := range st.Layers() {
		w, h := sizes[i][0], sizes[i][1]
		f.wg.Go(func() {
			tick := time.NewTicker(time.Second / 30)
			defer tick.Stop()
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true}}
			for n := 0; ; n++ {
				// VP8 payload descriptor: S=1, partition 0.
				payload := []byte{0x10}
				if n%30 == 0 || l.KeyframeWanted() {
					// Frame tag (keyframe, shown), start code, 14-bit
					// width and height (RFC 6386 9.1).
					payload = append(payload, 0x10, 0, 0, 0x9d, 0x01, 0x2a)
					payload = binary.LittleEndian.AppendUint16(payload, uint16(w))
					payload = binary.LittleEndian.AppendUint16(payload, uint16(h))
				} else {
					payload = append(payload, 0x11, 0, 0) // an interframe's tag
				}
				pkt.Payload = append(payload, make([]byte, 100)...)
				pkt.SequenceNumber = uint16(n)
				pkt.Timestamp = uint32(n * 3000)
				_ = l.WriteRTP(pkt)
				select {
				case <-f.done:
					return
				case <-tick.C:
				}
			}
		})
	}
	return f
}

func (f *layerFrames) stop() {
	close(f.done)
	f.wg.Wait()
}

// dialJoin11 is connect with a 1.1 join.
func dialJoin11(ctx context.Context, admin *client.Admin, identity, room, role string) *client.Client {
	token, err := admin.CreateToken(ctx, client.TokenRequest{Identity: identity, Room: room, Role: role})
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.Dial(ctx, admin.BaseURL, token, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.JoinWith(ctx, client.JoinParams{Version: "1.1"}); err != nil {
		log.Fatal(err)
	}
	return c
}
