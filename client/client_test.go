package client

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func TestClientPublishSubscribe(t *testing.T) {
	m, fs := startMiniSFU(t)
	c := dialTest(t, fs.URL, Options{})
	ctx := testCtx(t, 20*time.Second)

	jr, err := c.Join(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if jr.Participant.Identity != "alice" || jr.Room == nil || jr.Room.Status != "idle" || jr.Room.CreatedAt.Year() != 2024 {
		t.Fatalf("join result %+v", jr)
	}

	pub, err := NewSyntheticPublisher(PublisherOptions{KeyframeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	if err := c.Publish(ctx, pub.Tracks()...); err != nil {
		t.Fatal(err)
	}
	pub.Start()

	for _, kind := range []string{"video", "audio"} {
		if _, err := c.WaitNotification(ctx, NotifyTrackPublished, func(p json.RawMessage) bool {
			var ev TrackEvent
			return json.Unmarshal(p, &ev) == nil && ev.Track.Kind == kind
		}); err != nil {
			t.Fatal(err)
		}
	}
	video, err := c.WaitTrack(ctx, "video", nil)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := c.WaitTrack(ctx, "audio", nil)
	if err != nil {
		t.Fatal(err)
	}
	if video.StreamID != pub.Video().StreamID() || video.TrackID != "video" {
		t.Errorf("video ids %s/%s", video.StreamID, video.TrackID)
	}
	// The fake SFU asks the publisher for a keyframe for its new subscriber.
	eventually(t, 5*time.Second, "keyframe through the SFU", func() bool { return video.Keyframes() >= 1 && audio.Packets() > 10 })
	if c.SubscriberOffers() < 1 || len(c.Tracks()) != 2 {
		t.Errorf("offers %d tracks %d", c.SubscriberOffers(), len(c.Tracks()))
	}
	if m.candidates(TargetPublisher) == 0 || m.candidates(TargetSubscriber) == 0 {
		t.Errorf("trickled candidates: publisher %d subscriber %d", m.candidates(TargetPublisher), m.candidates(TargetSubscriber))
	}

	// A subscriber PLI reaches the publisher and brings a keyframe.
	k := video.Keyframes()
	if err := video.SendPLI(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "keyframe after PLI", func() bool { return video.Keyframes() > k })
	if pub.PLIsReceived() < 2 {
		t.Errorf("PLIs at publisher = %d", pub.PLIsReceived())
	}
	if p50 := video.Latency().Percentile(50); p50 <= 0 || p50 > 100*time.Millisecond {
		t.Errorf("latency p50 %v", p50)
	}

	// Unpublishing video ends the client's video track after renegotiation.
	if err := c.Unpublish(ctx, pub.Video()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitNotification(ctx, NotifyTrackUnpublished, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-video.Ended():
	case <-ctx.Done():
		t.Fatal("video track did not end")
	}
	if audio.IsEnded() {
		t.Error("audio ended too")
	}

	// leave: {} then the server closes with 1000.
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Closed():
	case <-ctx.Done():
		t.Fatal("not closed after leave")
	}
	if c.CloseCode() != 1000 {
		t.Errorf("close code %d", c.CloseCode())
	}
}

func TestPublishForbiddenLeavesClientUsable(t *testing.T) {
	m, fs := startMiniSFU(t)
	m.denyFirst.Store(true)
	c := dialTest(t, fs.URL, Options{})
	ctx := testCtx(t, 20*time.Second)
	if _, err := c.Join(ctx); err != nil {
		t.Fatal(err)
	}
	pub, err := NewSyntheticPublisher(PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	pub.Start()

	err = c.Publish(ctx, pub.Tracks()...)
	var re *RPCError
	if !errors.As(err, &re) || re.Code != CodeForbidden {
		t.Fatalf("want RPCError 4003, got %v", err)
	}
	if c.PublisherPC() != nil {
		t.Error("failed first publish kept its PeerConnection")
	}
	if err := c.Publish(ctx, pub.Tracks()...); err != nil {
		t.Fatalf("second publish: %v", err)
	}
	rt, err := c.WaitTrack(ctx, "video", nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "media", func() bool { return rt.Packets() > 20 })

	// Refused on a negotiated PeerConnection: rolled back, still usable.
	pc := c.PublisherPC()
	m.denyFirst.Store(true)
	pub2, err := NewSyntheticPublisher(PublisherOptions{StreamID: "second", NoVideo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub2.Stop()
	pub2.Start()
	if err := c.Publish(ctx, pub2.Tracks()...); ErrorCode(err) != CodeForbidden {
		t.Fatalf("want 4003, got %v", err)
	}
	if c.PublisherPC() != pc || pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		t.Fatalf("publisher PC replaced or offer not pending: %v", pc.SignalingState())
	}
	if err := c.Publish(ctx, pub2.Tracks()...); err != nil { // sends the pending offer, then its own
		t.Fatal(err)
	}
	if pc.SignalingState() != webrtc.SignalingStateStable || len(pc.GetTransceivers()) != 3 {
		t.Fatalf("after retry: %v, %d transceivers", pc.SignalingState(), len(pc.GetTransceivers()))
	}
	second, err := c.WaitTrack(ctx, "audio", func(rt *RemoteTrack) bool { return rt.StreamID == "second" })
	if err != nil {
		t.Fatal(err)
	}
	n := rt.Packets()
	eventually(t, 5*time.Second, "both flowing", func() bool { return second.Packets() > 10 && rt.Packets() > n+10 })
}

func TestReceiveDropThroughSFU(t *testing.T) {
	_, fs := startMiniSFU(t)
	c := dialTest(t, fs.URL, Options{ReceiveDrop: func(seq uint16) bool { return seq%25 == 0 }})
	ctx := testCtx(t, 20*time.Second)
	if _, err := c.Join(ctx); err != nil {
		t.Fatal(err)
	}
	pub, err := NewSyntheticPublisher(PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	if err := c.Publish(ctx, pub.Tracks()...); err != nil {
		t.Fatal(err)
	}
	pub.Start()
	if _, err := c.WaitTrack(ctx, "video", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "recoveries", func() bool { return c.Recovered() >= 3 })
	if c.DroppedOnPurpose() < c.Recovered() {
		t.Errorf("dropped %d recovered %d", c.DroppedOnPurpose(), c.Recovered())
	}
	t.Logf("dropped %d recovered %d", c.DroppedOnPurpose(), c.Recovered())
}
