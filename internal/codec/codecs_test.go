package codec

import (
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestShiftPT(t *testing.T) {
	for _, c := range []struct {
		pt    webrtc.PayloadType
		shift int
		want  webrtc.PayloadType
	}{
		{96, 0, 96},
		{96, 1, 97},
		{127, 1, 96}, // wraps within the dynamic range
		{96, -1, 127},
		{111, 32, 111},
		{111, 33, 112},
		{100, -37, 127},
	} {
		if got := shiftPT(c.pt, c.shift); got != c.want {
			t.Errorf("shiftPT(%d, %d) = %d, want %d", c.pt, c.shift, got, c.want)
		}
	}
}

// Every shift keeps the contract's payload types distinct and dynamic, and
// pion accepts the MediaEngine (it would refuse an RTX without its codec).
func TestRegisterCodecsShifts(t *testing.T) {
	base := []webrtc.PayloadType{opusPT}
	for _, c := range videoCodecs {
		base = append(base, c.pt, c.rtx)
	}
	for shift := -3; shift < dynamicPTCount+3; shift++ {
		seen := map[webrtc.PayloadType]bool{}
		for _, pt := range base {
			s := shiftPT(pt, shift)
			if s < 96 || s > 127 || seen[s] {
				t.Fatalf("shift %d: %d -> %d (out of range or taken)", shift, pt, s)
			}
			seen[s] = true
		}
		if err := RegisterCodecs(&webrtc.MediaEngine{}, shift); err != nil {
			t.Fatalf("shift %d: %v", shift, err)
		}
	}
}

// An offer made with a shifted table lists every codec under its shifted
// payload type, each RTX pointing at its codec's.
func TestRegisterCodecsOffer(t *testing.T) {
	m := &webrtc.MediaEngine{}
	if err := RegisterCodecs(m, 1); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(kind); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"a=rtpmap:112 opus/48000/2",
		"a=rtpmap:97 VP8/90000",
		"a=rtpmap:98 rtx/90000", "a=fmtp:98 apt=97",
		"a=rtpmap:96 H264/90000", "a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
		"a=rtcp-fb:97 nack pli",
	} {
		if !strings.Contains(offer.SDP, want+"\r\n") {
			t.Errorf("offer lacks %q:\n%s", want, offer.SDP)
		}
	}
}
