package client

import (
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// The client offers the server's codecs under other payload types
// (publishPTShift), so the server's per-subscriber rewriting is exercised
// by every publisher.
func TestOfferPayloadTypes(t *testing.T) {
	api, err := NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pub, err := NewSyntheticPublisher(PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range pub.Tracks() {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"a=rtpmap:97 VP8/90000", "a=fmtp:98 apt=97", // the server offers VP8 on 96, its RTX on 97
		"a=rtpmap:112 opus/48000/2", // the server: 111
		"a=rtpmap:99 VP9/90000", "a=rtpmap:109 H264/90000",
	} {
		if !strings.Contains(offer.SDP, want+"\r\n") {
			t.Errorf("offer lacks %q:\n%s", want, offer.SDP)
		}
	}
	for _, unwanted := range []string{"AV1", "H265", "G722", "PCMU", "packetization-mode=0"} {
		if strings.Contains(offer.SDP, unwanted) {
			t.Errorf("offer has %s, which the server does not accept", unwanted)
		}
	}
}
