package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"

	"github.com/relaysfu/relayd/internal/codec"
)

// codecCase builds RTP payloads of one codec: a keyframe start every 10th
// packet, inter frames otherwise.
type codecCase struct {
	mime, fmtp, name string
	payload          func(i int) []byte
}

var codecCases = []codecCase{
	{webrtc.MimeTypeVP9, "profile-id=0", "VP9", func(i int) []byte {
		if i%10 == 0 {
			return []byte{0x08, 0xAA, 0xBB, byte(i)} // B=1, P=0: keyframe start
		}
		return []byte{0x48, 0xCC, 0xDD, byte(i)} // P=1, B=1: inter frame
	}},
	{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", "H264", func(i int) []byte {
		if i%10 == 0 {
			// STAP-A: SPS, PPS, then an IDR slice.
			return []byte{0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE, 0x00, 0x03, 0x65, 0x88, byte(i)}
		}
		return []byte{0x41, 0x9A, byte(i)} // a non-IDR slice
	}},
}

// VP9 and H.264 pass through the SFU untouched: the viewer gets the
// publisher's payloads byte for byte, starting at a keyframe.
func TestCodecsPassThrough(t *testing.T) {
	for _, cc := range codecCases {
		t.Run(cc.name, func(t *testing.T) {
			ts := newTestServer(t)
			host, _ := ts.join(t, "alice", "r1", "host")
			viewer, _ := ts.join(t, "bob", "r1", "viewer")
			track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{
				MimeType: cc.mime, ClockRate: 90000, SDPFmtpLine: cc.fmtp,
			}, "video", "alice")
			if err != nil {
				t.Fatal(err)
			}
			if err := host.Publish(testCtx(t), track); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { // the "encoder": 100 packets a second
				defer close(done)
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					_ = track.WriteRTP(&rtp.Packet{
						Header:  rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i/2) * 3000, Marker: true},
						Payload: cc.payload(i),
					})
				}
			}()
			defer func() {
				cancel()
				<-done
			}()
			n := waitNote(t, viewer, "track.published", nil)
			var ev client.TrackEvent
			_ = json.Unmarshal(n.Params, &ev)
			if ev.Track.Codec != cc.name || ev.Track.Kind != "video" {
				t.Fatalf("track.published %+v, want codec %s", ev.Track, cc.name)
			}
			// Read the viewer's track directly to compare payloads.
			rt := receiving(t, viewer, "video", 5)
			if rt.Codec != cc.mime {
				t.Errorf("viewer codec %s, want %s", rt.Codec, cc.mime)
			}
			// The first payload is a keyframe start, byte for byte one the
			// publisher sent (its last byte is the packet number mod 256).
			got := rt.FirstPayload()
			if !rt.FirstFrameKeyframe() || !codec.KeyframeStart(cc.mime, got) {
				t.Errorf("first payload %x is not a keyframe start", got)
			}
			sent := false
			for i := int(got[len(got)-1]); i < 5000; i += 256 {
				if fmt.Sprintf("%x", cc.payload(i)) == fmt.Sprintf("%x", got) {
					sent = true
				}
			}
			if !sent {
				t.Errorf("first payload %x is not one the publisher sent", got)
			}
		})
	}
}
