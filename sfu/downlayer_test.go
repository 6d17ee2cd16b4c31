package sfu

import (
	"log/slog"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/metrics"
)

// A subscriber's PLI asks the publisher for a keyframe of its own layer
// only.
func TestPLIAsksForOneLayer(t *testing.T) {
	m := metrics.New()
	up := NewUpTrack(UpTrackParams{
		ID: "TR_sim", Participant: "alice", Kind: webrtc.RTPCodecTypeVideo, Codec: vp8,
		RIDs: []RIDInfo{{RID: "q"}, {RID: "h"}, {RID: "f"}}, Logger: slog.New(slog.DiscardHandler), Metrics: m,
	})
	srcs := make([]*fakeSource, 3)
	for i, rid := range []string{"q", "h", "f"} {
		srcs[i] = &fakeSource{}
		if _, ok := up.AttachLayer(rid, srcs[i]); !ok {
			t.Fatalf("AttachLayer %s", rid)
		}
	}
	d := NewDownTrack(DownTrackParams{Up: up, StreamID: "alice", Logger: slog.New(slog.DiscardHandler), Metrics: m})
	d.SetTarget(LayerTarget{Slot: 1})
	b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: 1}})
	if err != nil {
		t.Fatal(err)
	}
	d.handleRTCP(b)
	if got := []int32{srcs[0].keyframes.Load(), srcs[1].keyframes.Load(), srcs[2].keyframes.Load()}; got[0] != 0 || got[1] != 1 || got[2] != 0 {
		t.Fatalf("keyframe requests per layer %v, want [0 1 0]", got)
	}
	up.Close()
}
