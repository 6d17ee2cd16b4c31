package sfu

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// chromeOffer is the publisher offer of Chromium 156 (audio and video
// transceivers, sendonly, before any candidate), as its createOffer made
// it; crlf gives it the line endings it has on the wire.
const chromeOffer = `v=0
o=- 7943938294227844424 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:r5Vd
a=ice-pwd:RlSdINBkQbP5hcfcXepo1Vig
a=ice-options:trickle
a=fingerprint:sha-256 3F:51:3A:73:F9:F8:8F:4E:79:90:B7:B4:60:4F:2C:CF:5F:7F:19:E8:18:18:03:A3:40:00:38:E7:D8:86:F5:BB
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendonly
a=msid:- db79f239-2e3a-4e2b-a396-1d1e5162e126
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3608308472 cname:fvG44vHfEHxMmqB5
a=ssrc:3608308472 msid:- db79f239-2e3a-4e2b-a396-1d1e5162e126
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 107 108 109 114 115 116 117 39 40 45 46 98 99 100 101 118 119 120
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:r5Vd
a=ice-pwd:RlSdINBkQbP5hcfcXepo1Vig
a=ice-options:trickle
a=fingerprint:sha-256 3F:51:3A:73:F9:F8:8F:4E:79:90:B7:B4:60:4F:2C:CF:5F:7F:19:E8:18:18:03:A3:40:00:38:E7:D8:86:F5:BB
a=setup:actpass
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendonly
a=msid:- 4e208403-d2f7-4d8a-baf3-863e0fa093c2
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=rtcp-fb:102 goog-remb
a=rtcp-fb:102 transport-cc
a=rtcp-fb:102 ccm fir
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:104 H264/90000
a=rtcp-fb:104 goog-remb
a=rtcp-fb:104 transport-cc
a=rtcp-fb:104 ccm fir
a=rtcp-fb:104 nack
a=rtcp-fb:104 nack pli
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f
a=rtpmap:107 rtx/90000
a=fmtp:107 apt=104
a=rtpmap:108 H264/90000
a=rtcp-fb:108 goog-remb
a=rtcp-fb:108 transport-cc
a=rtcp-fb:108 ccm fir
a=rtcp-fb:108 nack
a=rtcp-fb:108 nack pli
a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:109 rtx/90000
a=fmtp:109 apt=108
a=rtpmap:114 H264/90000
a=rtcp-fb:114 goog-remb
a=rtcp-fb:114 transport-cc
a=rtcp-fb:114 ccm fir
a=rtcp-fb:114 nack
a=rtcp-fb:114 nack pli
a=fmtp:114 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f
a=rtpmap:115 rtx/90000
a=fmtp:115 apt=114
a=rtpmap:116 H264/90000
a=rtcp-fb:116 goog-remb
a=rtcp-fb:116 transport-cc
a=rtcp-fb:116 ccm fir
a=rtcp-fb:116 nack
a=rtcp-fb:116 nack pli
a=fmtp:116 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f
a=rtpmap:117 rtx/90000
a=fmtp:117 apt=116
a=rtpmap:39 H264/90000
a=rtcp-fb:39 goog-remb
a=rtcp-fb:39 transport-cc
a=rtcp-fb:39 ccm fir
a=rtcp-fb:39 nack
a=rtcp-fb:39 nack pli
a=fmtp:39 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f
a=rtpmap:40 rtx/90000
a=fmtp:40 apt=39
a=rtpmap:45 AV1/90000
a=rtcp-fb:45 goog-remb
a=rtcp-fb:45 transport-cc
a=rtcp-fb:45 ccm fir
a=rtcp-fb:45 nack
a=rtcp-fb:45 nack pli
a=fmtp:45 level-idx=5;profile=0;tier=0
a=rtpmap:46 rtx/90000
a=fmtp:46 apt=45
a=rtpmap:98 VP9/90000
a=rtcp-fb:98 goog-remb
a=rtcp-fb:98 transport-cc
a=rtcp-fb:98 ccm fir
a=rtcp-fb:98 nack
a=rtcp-fb:98 nack pli
a=fmtp:98 profile-id=0
a=rtpmap:99 rtx/90000
a=fmtp:99 apt=98
a=rtpmap:100 VP9/90000
a=rtcp-fb:100 goog-remb
a=rtcp-fb:100 transport-cc
a=rtcp-fb:100 ccm fir
a=rtcp-fb:100 nack
a=rtcp-fb:100 nack pli
a=fmtp:100 profile-id=2
a=rtpmap:101 rtx/90000
a=fmtp:101 apt=100
a=rtpmap:118 red/90000
a=rtpmap:119 rtx/90000
a=fmtp:119 apt=118
a=rtpmap:120 ulpfec/90000
a=ssrc-group:FID 3977667468 339606642
a=ssrc:3977667468 cname:fvG44vHfEHxMmqB5
a=ssrc:3977667468 msid:- 4e208403-d2f7-4d8a-baf3-863e0fa093c2
a=ssrc:339606642 cname:fvG44vHfEHxMmqB5
a=ssrc:339606642 msid:- 4e208403-d2f7-4d8a-baf3-863e0fa093c2
`

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// Candidates as browsers trickle them: host, mDNS host, server
// reflexive, relay, TCP; and the end-of-candidates empty one.
var browserCandidates = []string{
	"candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0 ufrag r5Vd network-id 1",
	"candidate:2384745711 1 udp 2122262783 2a01:e0a:1b2:c3d0::5 51002 typ host generation 0 ufrag r5Vd network-id 2",
	"candidate:3010532395 1 udp 2113937151 4f2c7c6e-2a5d-4c1e-9d0b-2f6b9b1c3e7a.local 54321 typ host generation 0 ufrag r5Vd network-cost 999",
	"candidate:842163049 1 udp 1677729535 203.0.113.7 46243 typ srflx raddr 192.168.0.196 rport 46243 generation 0 ufrag r5Vd network-cost 999",
	"candidate:3928394583 1 udp 41885439 198.51.100.9 3478 typ relay raddr 203.0.113.7 rport 46243 generation 0 ufrag r5Vd network-id 1",
	"candidate:1191166643 1 tcp 1518280447 192.168.0.196 9 typ host tcptype active generation 0 ufrag r5Vd network-id 1",
	"candidate:0 1 UDP 2122252543 10.0.0.3 49203 typ host",
	"",
}

// FuzzValidateSDP checks the offer path of HandleOffer: ValidateSDP, then,
// for what it lets through, what a publisher PeerConnection does with the
// offer (SetRemoteDescription, CreateAnswer, SetLocalDescription) on the
// server's real API. Invariants: nothing panics; ValidateSDP's errors wrap
// ErrBadSDP; every PeerConnection closes and leaves no goroutine behind.
func FuzzValidateSDP(f *testing.F) {
	f.Add(crlf(chromeOffer))
	f.Add(chromeOffer)
	// Only audio, a rejected m-line, no BUNDLE group.
	f.Add(crlf(chromeOffer[:strings.Index(chromeOffer, "m=video")]))
	f.Add(crlf(strings.Replace(chromeOffer, "m=video 9", "m=video 0", 1)))
	f.Add(crlf(strings.Replace(chromeOffer, "a=group:BUNDLE 0 1\n", "", 1)))
	f.Add("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
	f.Add("v=0")
	f.Add("this is not sdp")
	f.Add("")

	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	api, mux, err := NewAPI(MediaConfig{UDPConn: udp, LoopbackOnly: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		_ = mux.Close()
		_ = udp.Close()
	})
	f.Fuzz(func(t *testing.T, offer string) {
		if err := ValidateSDP(offer); err != nil {
			if !errors.Is(err, ErrBadSDP) {
				t.Fatalf("ValidateSDP error %v does not wrap ErrBadSDP", err)
			}
			return
		}
		var d sdp.SessionDescription
		if err := d.UnmarshalString(offer); err != nil {
			t.Fatalf("ValidateSDP accepted what does not parse: %v", err)
		}
		_, _ = d.Marshal()

		before := runtime.NumGoroutine()
		pc, err := api.Publisher.NewPeerConnection(webrtc.Configuration{
			BundlePolicy:  webrtc.BundlePolicyMaxBundle,
			RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err == nil {
			if answer, err := pc.CreateAnswer(nil); err == nil {
				_ = pc.SetLocalDescription(answer)
			}
		}
		if err := pc.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		// A closed PeerConnection's goroutines end within moments.
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines after the PeerConnection closed, %d before", runtime.NumGoroutine(), before)
			}
			time.Sleep(50 * time.Microsecond)
		}
	})
}

// FuzzValidateCandidate: ValidateCandidate never panics, its errors wrap
// ErrBadCandidate, and what it accepts a PeerConnection can be given.
func FuzzValidateCandidate(f *testing.F) {
	for _, c := range browserCandidates {
		f.Add(c)
		f.Add("a=" + c)
	}
	f.Fuzz(func(t *testing.T, cand string) {
		err := ValidateCandidate(webrtc.ICECandidateInit{Candidate: cand})
		if err != nil && !errors.Is(err, ErrBadCandidate) {
			t.Fatalf("ValidateCandidate error %v does not wrap ErrBadCandidate", err)
		}
	})
}
