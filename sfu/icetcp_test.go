package sfu

import (
	"net"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/metrics"
)

func TestPairTransport(t *testing.T) {
	for _, tc := range []struct {
		name   string
		local  webrtc.ICEProtocol
		remote webrtc.ICECandidateType
		relay  string
		want   string
	}{
		{"udp host", webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost, "", "udp"},
		{"udp srflx", webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeSrflx, "", "udp"},
		{"udp prflx", webrtc.ICEProtocolUDP, webrtc.ICECandidateTypePrflx, "", "udp"},
		{"ice-tcp", webrtc.ICEProtocolTCP, webrtc.ICECandidateTypeHost, "", "tcp"},
		{"ice-tcp prflx", webrtc.ICEProtocolTCP, webrtc.ICECandidateTypePrflx, "", "tcp"},
		{"our relay over tls, seen as prflx", webrtc.ICEProtocolUDP, webrtc.ICECandidateTypePrflx, "turn_tls", "turn_tls"},
		{"our relay over tcp", webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeRelay, "turn_tcp", "turn_tcp"},
		{"another TURN server's relay", webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeRelay, "", "turn_udp"},
	} {
		if got := pairTransport(tc.local, tc.remote, tc.relay); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// newTCPSFU is an SFU on loopback with ICE-TCP on, counting in m.
func newTCPSFU(t *testing.T, m *metrics.Metrics) *SFU {
	t.Helper()
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newLoopbackSFUWith(t, Config{Metrics: m}, MediaConfig{TCPListener: tcp})
}

// apiOn is a loopback pion client gathering only the given network types.
func apiOn(t *testing.T, nt ...webrtc.NetworkType) *webrtc.API {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes(nt)
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

// newPeerOn is newPeer with the client's PeerConnections made by api.
func newPeerOn(t *testing.T, api *webrtc.API) *peer {
	t.Helper()
	c := newPeer(t, 0)
	_ = c.sub.Close()
	c.api = api
	sub, err := api.NewPeerConnection(webrtc.Configuration{})
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

// A publisher and a viewer that can only do TCP connect over ICE-TCP and
// the viewer gets the media; a viewer that can do both takes UDP.
func TestICETCPMediaFlows(t *testing.T) {
	m := metrics.New()
	s := newTCPSFU(t, m)
	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	conns := func(tr string) float64 { return testutil.ToFloat64(m.Net.Connections.WithLabelValues(tr)) }

	host := newPeerOn(t, apiOn(t, webrtc.NetworkTypeTCP4))
	hp := host.join(r, ParticipantParams{Identity: "alice", Role: RoleHost})
	host.publishVP8(hp)
	waitLong(t, "the host's track", func() bool { return len(hp.PublishedTracks()) == 1 })

	viewer := newPeerOn(t, apiOn(t, webrtc.NetworkTypeTCP4))
	vp := viewer.join(r, ParticipantParams{Identity: "bob", Role: RoleViewer})
	waitLong(t, "media on the ICE-TCP viewer", func() bool { return viewer.received.Load() >= 20 })
	// Its RTCP reaches pion (not the direct path's taps): the down track
	// reads it there (rtcpreaders.go), and its PLI gets to the publisher.
	if ds := directOf(vp); ds != nil {
		ds.mu.Lock()
		toPion := ds.pionRTCP
		ds.mu.Unlock()
		if !toPion {
			t.Error("the ICE-TCP viewer's RTCP is not read from pion")
		}
	}
	var vssrc webrtc.SSRC
	for _, rc := range viewer.sub.GetReceivers() {
		if tr := rc.Track(); tr != nil {
			vssrc = tr.SSRC()
		}
	}
	pliIn := m.PLIs.WithLabelValues("from_subscriber")
	in0 := testutil.ToFloat64(pliIn)
	if err := viewer.sub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: uint32(vssrc)}}); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the ICE-TCP viewer's PLI read", func() bool { return testutil.ToFloat64(pliIn) > in0 })
	if got := conns("tcp"); got < 2 {
		t.Errorf("relayd_ice_connections_total{tcp} = %v, want 2 (the publisher's and the viewer's)", got)
	}
	if got := conns("udp"); got != 0 {
		t.Errorf("relayd_ice_connections_total{udp} = %v, want 0", got)
	}

	both := newPeerOn(t, apiOn(t, webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4))
	both.join(r, ParticipantParams{Identity: "carol", Role: RoleViewer})
	waitLong(t, "media on the viewer with UDP and TCP", func() bool { return both.received.Load() >= 20 })
	if got := conns("udp"); got != 1 {
		t.Errorf("relayd_ice_connections_total{udp} = %v, want 1: UDP keeps priority", got)
	}
	// The ICE-TCP viewer is served through pion's path (the direct path
	// writes UDP only), the UDP one directly.
	paths := func(p string) float64 { return testutil.ToFloat64(m.SendPaths.WithLabelValues(p)) }
	if paths("pion") != 1 || paths("direct") != 1 {
		t.Errorf("send paths: pion %v, direct %v; want 1 and 1", paths("pion"), paths("direct"))
	}
}
