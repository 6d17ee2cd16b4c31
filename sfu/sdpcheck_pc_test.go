package sfu

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

type nopSink struct{}

func (nopSink) Notify(Event) {}

// newTestParticipant joins a host to a room of a real SFU on loopback.
func newTestParticipant(t *testing.T) *Participant {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api, mux, err := NewAPI(MediaConfig{UDPConn: udp, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{API: api})
	t.Cleanup(func() {
		s.Close()
		_ = mux.Close()
		_ = udp.Close()
	})
	r, err := s.CreateRoom("r1", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := r.Join(ParticipantParams{Identity: "alice", Role: RoleHost, Events: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A refused offer creates no PeerConnection, and leaves an existing one
// as it was: no transceiver added, no negotiation started.
func TestRefusedOfferLeavesNoPC(t *testing.T) {
	p := newTestParticipant(t)
	var many strings.Builder
	many.WriteString("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&many, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:%d\r\na=rtpmap:96 VP8/90000\r\n", i)
	}
	bad := map[string]string{
		"500 m-lines": many.String(),
		"no m-line":   "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
		"garbage":     "hello",
	}
	refuse := func(t *testing.T) {
		t.Helper()
		for name, sdp := range bad {
			err := p.HandleOffer(sdp, func(string) { t.Errorf("%s: answered", name) })
			if !errors.Is(err, ErrBadSDP) {
				t.Errorf("%s: got %v, want ErrBadSDP", name, err)
			}
		}
	}
	refuse(t)
	p.mu.Lock()
	pub := p.pub
	p.mu.Unlock()
	if pub != nil {
		t.Fatal("a refused offer created the publisher PC")
	}

	// A real offer, then refused ones on the PC it made.
	client, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.HandleOffer(offer.SDP, func(string) {}); err != nil {
		t.Fatalf("a real offer: %v", err)
	}
	p.mu.Lock()
	pub = p.pub
	p.mu.Unlock()
	before := len(pub.pc.GetTransceivers())
	refuse(t)
	if n := len(pub.pc.GetTransceivers()); n != before {
		t.Fatalf("transceivers %d after refused offers, want %d", n, before)
	}
	if st := pub.pc.SignalingState(); st != webrtc.SignalingStateStable {
		t.Fatalf("signaling state %s after refused offers, want stable", st)
	}
}
