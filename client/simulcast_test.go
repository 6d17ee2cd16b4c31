package client

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestNewSimulcastTrackChecks(t *testing.T) {
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	for _, tc := range []struct {
		name   string
		codec  webrtc.RTPCodecCapability
		layers []SimulcastLayer
		want   string // "" = ok
		rids   []string
	}{
		{name: "default", codec: vp8, rids: []string{"q", "h", "f"}},
		{name: "two", codec: vp8, layers: []SimulcastLayer{{RID: "q"}, {RID: "f", MaxBitrate: 1e6}}, rids: []string{"q", "f"}},
		{name: "four", codec: vp8, layers: []SimulcastLayer{{RID: "a"}, {RID: "b"}, {RID: "c"}, {RID: "d"}}, want: "at most 3"},
		{name: "audio", codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, want: "not a video codec"},
		{name: "twice", codec: vp8, layers: []SimulcastLayer{{RID: "q"}, {RID: "q"}}, want: "given twice"},
		{name: "bad rid", codec: vp8, layers: []SimulcastLayer{{RID: "a b"}}, want: "want 1-16"},
		{name: "empty rid", codec: vp8, layers: []SimulcastLayer{{RID: ""}}, want: "want 1-16"},
		{name: "negative", codec: vp8, layers: []SimulcastLayer{{RID: "q", MaxBitrate: -1}}, want: "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := NewSimulcastTrack(tc.codec, "video", "alice", tc.layers...)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want one with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var rids []string
			for _, l := range st.Layers() {
				rids = append(rids, l.RID())
				if l.ID() != "video" || l.StreamID() != "alice" || l.Parent() != st {
					t.Fatalf("layer %s: id %q stream %q", l.RID(), l.ID(), l.StreamID())
				}
			}
			if !slices.Equal(rids, tc.rids) || !slices.Equal(st.Active(), tc.rids) {
				t.Fatalf("rids %v active %v, want %v", rids, st.Active(), tc.rids)
			}
		})
	}
}

func TestWithRIDRestrictions(t *testing.T) {
	c := &Client{}
	st, err := NewSimulcastTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "v", "s",
		SimulcastLayer{RID: "q", MaxBitrate: 150000}, SimulcastLayer{RID: "h"}, SimulcastLayer{RID: "f", MaxBitrate: 1500000})
	if err != nil {
		t.Fatal(err)
	}
	in := "v=0\r\na=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=rid:x send max-br=5\r\na=simulcast:send q;h;f\r\n"
	if got := c.withRIDRestrictions(in); got != in {
		t.Fatalf("no simulcast track published, the offer changed:\n%s", got)
	}
	c.sim.published(webrtc.RTPCodecTypeVideo, st)
	want := "v=0\r\na=rid:q send max-br=150000\r\na=rid:h send\r\na=rid:f send max-br=1500000\r\na=rid:x send max-br=5\r\na=simulcast:send q;h;f\r\n"
	if got := c.withRIDRestrictions(in); got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

// answerer is the media end of a fake server: a pion PeerConnection that
// answers the client's publisher offers and counts what arrives per rid.
type answerer struct {
	pc     *webrtc.PeerConnection
	mu     sync.Mutex
	offers []string
	tracks map[string]*webrtc.TrackRemote
	counts map[string]*atomic.Int64
	wg     sync.WaitGroup
}

func newAnswerer(t *testing.T) *answerer {
	t.Helper()
	api, err := NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	a := &answerer{pc: pc, tracks: map[string]*webrtc.TrackRemote{}, counts: map[string]*atomic.Int64{}}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		n := &atomic.Int64{}
		a.mu.Lock()
		a.tracks[tr.RID()] = tr
		a.counts[tr.RID()] = n
		a.mu.Unlock()
		a.wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				n.Add(1)
			}
		})
	})
	t.Cleanup(func() {
		_ = pc.Close()
		a.wg.Wait()
	})
	return a
}

func (a *answerer) count(rid string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.counts[rid]; n != nil {
		return n.Load()
	}
	return 0
}

func (a *answerer) answer(sdp string) (string, error) {
	a.mu.Lock()
	a.offers = append(a.offers, sdp)
	a.mu.Unlock()
	if err := a.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return "", err
	}
	ans, err := a.pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(a.pc)
	if err := a.pc.SetLocalDescription(ans); err != nil {
		return "", err
	}
	<-gathered
	return a.pc.LocalDescription().SDP, nil
}

// TestPublishSimulcast publishes a three-layer track through a fake server
// whose media end is a real pion PeerConnection: every layer arrives as
// its own rid, the offer carries the layers' max-br, a PLI reaches its
// layer only, and publisher.layers stops the layers it leaves out.
func TestPublishSimulcast(t *testing.T) {
	a := newAnswerer(t)
	ready := make(chan *fakeConn, 1)
	fs := newFakeServer(t, func(f *fakeConn) {
		for {
			m, err := f.read()
			if err != nil {
				return
			}
			switch m.Method {
			case "join":
				f.result(t, m.ID, map[string]any{"version": "1.1", "participant": map[string]any{"identity": "alice", "role": "host", "tracks": []any{}}})
				ready <- f
			case "offer":
				var p SDPParams
				_ = json.Unmarshal(m.Params, &p)
				sdp, err := a.answer(p.SDP)
				if err != nil {
					f.fail(t, m.ID, CodeInvalidParams, err.Error())
					continue
				}
				f.result(t, m.ID, SDPParams{SDP: sdp})
			case "trickle":
				var tp TrickleParams
				_ = json.Unmarshal(m.Params, &tp)
				if tp.Candidate != nil && tp.Candidate.Candidate != "" {
					_ = a.pc.AddICECandidate(*tp.Candidate)
				}
			}
		}
	})
	c := dialTest(t, fs.URL, Options{})
	ctx := testCtx(t, 20*time.Second)
	if _, err := c.JoinWith(ctx, JoinParams{Version: "1.1"}); err != nil {
		t.Fatal(err)
	}
	f := <-ready
	st, err := NewSimulcastTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "alice",
		SimulcastLayer{RID: "q", MaxBitrate: 150000}, SimulcastLayer{RID: "h", MaxBitrate: 500000}, SimulcastLayer{RID: "f", MaxBitrate: 1500000})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, st.Tracks()...); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, st.Layer("h")); err != nil { // already there: a no-op
		t.Fatal(err)
	}
	if n := len(c.PublisherPC().GetTransceivers()); n != 1 {
		t.Fatalf("%d transceivers, want the one of the simulcast track", n)
	}
	a.mu.Lock()
	offer := a.offers[0]
	a.mu.Unlock()
	for _, want := range []string{"a=rid:q send max-br=150000", "a=rid:h send max-br=500000", "a=rid:f send max-br=1500000", "a=simulcast:send q;h;f"} {
		if !strings.Contains(offer, want) {
			t.Fatalf("offer lacks %q:\n%s", want, offer)
		}
	}

	// Each layer sends its own stream, a packet every 10 ms.
	stop := make(chan struct{})
	var sender sync.WaitGroup
	sender.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		seq := uint16(0)
		for {
			for _, l := range st.Layers() {
				p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 900, Marker: true}, Payload: []byte{0x10, 0, 0, 0}}
				_ = l.WriteRTP(p)
			}
			seq++
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	defer func() {
		close(stop)
		sender.Wait()
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("waiting for %s", what)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	waitFor("the three layers", func() bool { return a.count("q") > 5 && a.count("h") > 5 && a.count("f") > 5 })

	// A PLI on the middle layer reaches that layer alone.
	a.mu.Lock()
	ssrc := a.tracks["h"].SSRC()
	a.mu.Unlock()
	for _, l := range st.Layers() {
		l.KeyframeWanted()
	}
	if err := a.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}}); err != nil {
		t.Fatal(err)
	}
	waitFor("the PLI on h", func() bool { return st.Layer("h").KeyframeWanted() })
	if st.Layer("q").KeyframeWanted() || st.Layer("f").KeyframeWanted() {
		t.Fatal("a PLI on h reached another layer")
	}

	// publisher.layers before the track's id is known is kept, then
	// applied when the own track.published names it.
	f.notify(t, NotifyPublisherLayers, map[string]any{"trackId": "TR_v", "active": []string{"q"}, "seq": 2})
	f.notify(t, NotifyTrackPublished, map[string]any{"track": map[string]any{"id": "TR_other", "participant": "bob", "kind": "video"}, "seq": 3})
	f.notify(t, NotifyTrackPublished, map[string]any{"track": map[string]any{"id": "TR_v", "participant": "alice", "kind": "video"}, "seq": 4})
	waitFor("the own track's id", func() bool { return st.ServerID() == "TR_v" })
	if !slices.Equal(st.Active(), []string{"q"}) || st.Layer("h").Active() || st.Layer("f").Active() || !st.Layer("q").Active() {
		t.Fatalf("active %v after publisher.layers [q]", st.Active())
	}
	if got, err := c.SimulcastTrackByID("TR_v"); err != nil || got != st {
		t.Fatalf("SimulcastTrackByID: %v %v", got, err)
	}
	if _, err := c.SimulcastTrackByID("TR_other"); err == nil {
		t.Fatal("another participant's track found as ours")
	}
	time.Sleep(100 * time.Millisecond) // packets in flight
	h0, f0, q0 := a.count("h"), a.count("f"), a.count("q")
	time.Sleep(300 * time.Millisecond)
	if a.count("h") != h0 || a.count("f") != f0 {
		t.Fatalf("inactive layers still sent: h %d->%d f %d->%d", h0, a.count("h"), f0, a.count("f"))
	}
	if a.count("q") <= q0 {
		t.Fatal("the active layer stopped")
	}
	if st.Layer("f").Dropped() == 0 {
		t.Fatal("no packet counted as dropped on an inactive layer")
	}

	// All back.
	f.notify(t, NotifyPublisherLayers, map[string]any{"trackId": "TR_v", "active": []string{"q", "h", "f"}, "seq": 5})
	f1 := a.count("f")
	waitFor("f again", func() bool { return a.count("f") > f1+5 })

	var ev PublisherLayersEvent
	n, err := c.WaitNotification(ctx, NotifyPublisherLayers, nil)
	if err != nil || n.Decode(&ev) != nil || ev.TrackID != "TR_v" {
		t.Fatalf("publisher.layers as a notification: %v %+v", err, ev)
	}
}

func TestTrackObjectsLayers(t *testing.T) {
	var ev TrackUpdatedEvent
	in := `{"track":{"id":"TR_a1","participant":"alice","kind":"video","codec":"VP8","muted":false,"layers":[{"rid":"q","quality":"low","width":320,"height":180},{"rid":"f","quality":"high","width":1280,"height":720,"maxBitrate":1500000}]}}`
	if err := json.Unmarshal([]byte(in), &ev); err != nil {
		t.Fatal(err)
	}
	want := []Layer{{RID: "q", Quality: QualityLow, Width: 320, Height: 180}, {RID: "f", Quality: QualityHigh, Width: 1280, Height: 720, MaxBitrate: 1500000}}
	if !slices.Equal(ev.Track.Layers, want) {
		t.Fatalf("layers %+v", ev.Track.Layers)
	}
	var l TrackLayerEvent
	if err := json.Unmarshal([]byte(`{"trackId":"TR_a1","quality":"medium","rid":"h","reason":"requested","seq":12}`), &l); err != nil || l != (TrackLayerEvent{TrackID: "TR_a1", Quality: QualityMedium, RID: "h", Reason: "requested"}) {
		t.Fatalf("track.layer %+v %v", l, err)
	}
}

func TestTrackSettingsRequest(t *testing.T) {
	got := make(chan string, 1)
	fs := newFakeServer(t, func(f *fakeConn) {
		for {
			m, err := f.read()
			if err != nil {
				return
			}
			if m.Method == "track.settings" {
				got <- string(m.Params)
				f.result(t, m.ID, map[string]any{"trackId": "TR_a1", "quality": "auto", "maxWidth": 640, "maxHeight": 0, "paused": false})
			}
		}
	})
	c := dialTest(t, fs.URL, Options{})
	ctx := testCtx(t, 5*time.Second)
	s, err := c.TrackSettings(ctx, TrackSettingsParams{TrackID: "TR_a1", MaxWidth: Int(640)})
	if err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != `{"trackId":"TR_a1","maxWidth":640}` {
		t.Fatalf("params %s: omitted fields must not be sent", p)
	}
	if *s != (TrackSettings{TrackID: "TR_a1", Quality: QualityAuto, MaxWidth: 640}) {
		t.Fatalf("result %+v", s)
	}
	if _, err := c.TrackSettings(ctx, TrackSettingsParams{TrackID: "TR_a1", Paused: Bool(false)}); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != `{"trackId":"TR_a1","paused":false}` {
		t.Fatalf("params %s: paused false must be sent", p)
	}
}
