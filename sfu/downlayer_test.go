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
	d, srcs := simulcastDown(t)
	d.SetTarget(LayerTarget{Slot: 1})
	b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: 1}})
	if err != nil {
		t.Fatal(err)
	}
	d.handleRTCP(b)
	if got := []int32{srcs[0].keyframes.Load(), srcs[1].keyframes.Load(), srcs[2].keyframes.Load()}; got[0] != 0 || got[1] != 1 || got[2] != 0 {
		t.Fatalf("keyframe requests per layer %v, want [0 1 0]", got)
	}
}

// A down switch follows the target at its keyframe; with Drain (an
// overrun downlink) the current layer stops at once, and a target moved
// back to the current layer before the switch resumes it from a keyframe.
func TestDrainOnDownSwitch(t *testing.T) {
	d, _ := simulcastDown(t)
	p := &cachedPacket{ok: true}
	ext := uint64(100)
	gate := func(layer int, key bool) bool {
		ext++
		it := queueItem{ext: ext, layer: uint8(layer)}
		if key {
			it.flags = flagKeyframe
		}
		ok := d.layerGate(it, p)
		if ok {
			d.m.translate(it.ext, 0, key, false)
		}
		return ok
	}
	step := func(what string, layer int, key, want bool) {
		t.Helper()
		if got := gate(layer, key); got != want {
			t.Fatalf("%s: layer %d keyframe %v forwarded %v, want %v (current %d)", what, layer, key, got, want, d.sel.cur)
		}
	}
	d.SetTarget(LayerTarget{Slot: 2})
	step("top before its keyframe", 2, false, false)
	step("top's keyframe", 2, true, true)
	step("top", 2, false, true)

	d.SetTarget(LayerTarget{Slot: 1, Reason: ReasonBandwidth})
	step("down without drain: top goes on", 2, false, true)
	step("middle before its keyframe", 1, false, false)

	d.SetTarget(LayerTarget{Slot: 1, Reason: ReasonBandwidth, Drain: true})
	step("drained: top stops", 2, false, false)
	step("drained: top's keyframe too", 2, true, false)
	step("middle before its keyframe", 1, false, false)
	step("middle's keyframe: the switch", 1, true, true)
	if d.sel.cur != 1 || d.sel.draining {
		t.Fatalf("after the switch: current %d draining %v", d.sel.cur, d.sel.draining)
	}
	step("middle", 1, false, true)

	d.SetTarget(LayerTarget{Slot: 0, Reason: ReasonBandwidth, Drain: true})
	step("drained toward low: middle stops", 1, false, false)
	d.SetTarget(LayerTarget{Slot: 1, Reason: ReasonRequested})
	step("back to middle: passes the gate", 1, false, true)
	if d.m.started {
		t.Fatal("the munger forwards mid-frame after a drain: it must wait for the middle layer's keyframe")
	}
}

// A down track waiting for its target layer's keyframe asks for one again
// after keyframeWait: the adapter's one request is lost when the layer had
// not arrived, and a browser sends no keyframe unasked.
func TestTargetKeyframeAskedAgain(t *testing.T) {
	d, srcs := simulcastDown(t)
	d.ready.Store(true)
	d.SetTarget(LayerTarget{Slot: 2})
	delta := queueItem{ext: 1, layer: 2}
	if d.wants(delta) {
		t.Fatal("a delta frame of the target before its keyframe is wanted")
	}
	if n := srcs[2].keyframes.Load(); n != 0 {
		t.Fatalf("%d keyframe requests at once: the adapter asked already", n)
	}
	d.sel.waitSince = Now() - int64(keyframeWait) // a second has passed
	d.wants(delta)
	if n := srcs[2].keyframes.Load(); n != 1 {
		t.Fatalf("%d keyframe requests of the target after keyframeWait, want 1", n)
	}
	if n := srcs[0].keyframes.Load() + srcs[1].keyframes.Load(); n != 0 {
		t.Fatalf("%d requests to the other layers", n)
	}
	if !d.wants(queueItem{ext: 2, layer: 2, flags: flagKeyframe}) {
		t.Fatal("the target's keyframe is not wanted")
	}
}

// simulcastDown is a down track of a three-layer VP8 track (q, h, f) whose
// layers' sources count the keyframes asked of them; the track is closed
// at the test's end.
func simulcastDown(t *testing.T) (*DownTrack, []*fakeSource) {
	t.Helper()
	m := metrics.New()
	up := NewUpTrack(UpTrackParams{
		ID: "TR_sim", Participant: "alice", Kind: webrtc.RTPCodecTypeVideo, Codec: vp8,
		RIDs: []RIDInfo{{RID: "q"}, {RID: "h"}, {RID: "f"}}, Logger: slog.New(slog.DiscardHandler), Metrics: m,
	})
	t.Cleanup(up.Close)
	srcs := make([]*fakeSource, 3)
	for i, rid := range []string{"q", "h", "f"} {
		srcs[i] = &fakeSource{}
		if _, ok := up.AttachLayer(rid, srcs[i]); !ok {
			t.Fatalf("AttachLayer %s", rid)
		}
	}
	return NewDownTrack(DownTrackParams{Up: up, StreamID: "alice", Logger: slog.New(slog.DiscardHandler), Metrics: m}), srcs
}
