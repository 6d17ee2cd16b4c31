package sfu

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Real PeerConnections on loopback for the participant tests: the sfu as
// the server runs it, and pion clients.

// newLoopbackSFU is an SFU with its media on a loopback UDP port.
func newLoopbackSFU(t testing.TB, cfg Config) *SFU {
	t.Helper()
	return newLoopbackSFUWith(t, cfg, MediaConfig{})
}

// newLoopbackSFUWith is newLoopbackSFU with the media settings of mc
// (its UDPConn and LoopbackOnly are set here).
func newLoopbackSFUWith(t testing.TB, cfg Config, mc MediaConfig) *SFU {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mc.UDPConn, mc.LoopbackOnly = udp, true
	api, mux, err := NewAPI(mc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.API = api
	s := New(cfg)
	t.Cleanup(func() {
		s.Close()
		_ = mux.Close()
		_ = udp.Close()
	})
	return s
}

// clientAPI is a pion client's API on loopback, with pion's default codecs
// and interceptors.
func clientAPI(t testing.TB) *webrtc.API { return loopbackClientAPI(t, true) }

// loopbackClientAPI is a pion client's API on loopback with pion's default
// codecs, and its default interceptors or none (an empty registry:
// without one, NewAPI registers pion's defaults).
func loopbackClientAPI(t testing.TB, interceptors bool) *webrtc.API {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if interceptors {
		if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
			t.Fatal(err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

// waitLong is waitFor with room for ICE and DTLS on a busy machine.
func waitLong(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// peer is a pion client of one participant and its EventSink: it answers
// the server's subscriber offers (refusing the first refuse of them, as a
// client answering the offer request with an error does), counts the
// packets it receives, and records its events.
type peer struct {
	t        testing.TB
	api      *webrtc.API
	sub      *webrtc.PeerConnection
	p        *Participant
	offers   chan string
	done     chan struct{}
	wg       sync.WaitGroup
	refuse   int // loop-owned
	received atomic.Int64

	mu      sync.Mutex
	events  []Event
	offered int // offers received
	refused int // offers refused
}

func newPeer(t testing.TB, refuse int) *peer {
	t.Helper()
	c := &peer{t: t, api: clientAPI(t), offers: make(chan string, 64), done: make(chan struct{}), refuse: refuse}
	sub, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c.sub = sub
	sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			c.received.Add(1)
		}
	})
	return c
}

// join joins r as pp (with c as its EventSink) and starts answering
// offers; the test's cleanup leaves and closes everything.
func (c *peer) join(r *Room, pp ParticipantParams) *Participant {
	c.t.Helper()
	pp.Events = c
	p, _, err := r.Join(pp)
	if err != nil {
		c.t.Fatal(err)
	}
	c.p = p
	c.wg.Add(1)
	go c.answerLoop()
	c.t.Cleanup(func() {
		close(c.done)
		c.wg.Wait()
		p.Leave()
		_ = c.sub.Close()
	})
	return p
}

// Notify implements EventSink.
func (c *peer) Notify(ev Event) {
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.mu.Unlock()
	if o, ok := ev.(SubscriberOffer); ok {
		c.offers <- o.SDP
	}
}

func (c *peer) counts() (offered, refused int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offered, c.refused
}

func (c *peer) answerLoop() {
	defer c.wg.Done()
	for {
		var sdp string
		select {
		case <-c.done:
			return
		case sdp = <-c.offers:
		}
		c.mu.Lock()
		c.offered++
		refuse := c.refuse > 0
		if refuse {
			c.refuse--
			c.refused++
		}
		c.mu.Unlock()
		if refuse {
			c.p.SubscriberOfferFailed()
			continue
		}
		if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
			c.t.Errorf("client: remote offer: %v", err)
			c.p.SubscriberOfferFailed()
			continue
		}
		answer, err := c.sub.CreateAnswer(nil)
		if err == nil {
			err = c.sub.SetLocalDescription(answer)
		}
		if err != nil {
			c.t.Errorf("client: answer: %v", err)
			c.p.SubscriberOfferFailed()
			continue
		}
		<-webrtc.GatheringCompletePromise(c.sub)
		if err := c.p.SetSubscriberAnswer(c.sub.LocalDescription().SDP); err != nil {
			c.t.Errorf("client: the server refused the answer: %v", err)
		}
	}
}

// publishVP8 opens a publisher PC for p and sends VP8 on it (a keyframe
// every 25 frames of 20 ms) until the test ends.
func (c *peer) publishVP8(p *Participant) {
	c.t.Helper()
	pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		c.t.Fatal(err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "alice")
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		c.t.Fatal(err)
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
			payload := make([]byte, 200)
			payload[0] = 0x10 // S=1, PID=0: a frame starts
			if i%25 != 0 {
				payload[1] = 0x01 // P=1: an inter frame
			}
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{
				Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i) * 1800,
			}, Payload: payload})
		}
	}()
	c.t.Cleanup(func() {
		close(stop)
		wg.Wait()
		_ = pc.Close()
	})
}

// upTrackFor is an up track with no reader, published with PublishTrack
// (as a relay publishes its copies).
func upTrackFor(s *SFU, identity string) *UpTrack {
	return NewUpTrack(UpTrackParams{
		ID: NewID("TR_"), Participant: identity, Kind: webrtc.RTPCodecTypeVideo, Codec: vp8,
		Source: &fakeSource{}, Logger: slog.New(slog.DiscardHandler), Metrics: s.Metrics(),
	})
}
