package sfu

import (
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// srWatch is a pion viewer's receive side that keeps the last RTP
// timestamp received (and when) and the sender reports.
type srWatch struct {
	mu      sync.Mutex
	packets int
	lastTS  uint32
	lastSeq uint16
	lastAt  time.Time
	reports []rtcp.SenderReport
	at      []time.Time // when each report came
	lastTSs []uint32    // lastTS and lastAt when each report came
	lastAts []time.Time
}

func (w *srWatch) watch(c *peer) {
	c.sub.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		go func() {
			buf := make([]byte, 1500)
			for {
				n, _, err := r.Read(buf)
				if err != nil {
					return
				}
				pkts, err := rtcp.Unmarshal(buf[:n])
				if err != nil {
					continue
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok {
						w.mu.Lock()
						w.reports = append(w.reports, *sr)
						w.at = append(w.at, time.Now())
						w.lastTSs = append(w.lastTSs, w.lastTS)
						w.lastAts = append(w.lastAts, w.lastAt)
						w.mu.Unlock()
					}
				}
			}
		}()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			w.mu.Lock()
			w.packets++
			w.lastTS, w.lastSeq, w.lastAt = p.Timestamp, p.SequenceNumber, time.Now()
			w.mu.Unlock()
			c.received.Add(1)
		}
	})
}

// watchedViewer publishes alice's VP8 in a new room of s and joins bob as
// its viewer, his receive side watched (srWatch), until he has at least
// packets packets and reports sender reports. It returns bob's
// participant, his watch and his client.
func watchedViewer(t *testing.T, s *SFU, packets, reports int) (*Participant, *srWatch, *peer) {
	t.Helper()
	room, err := s.CreateRoom("sendpath", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	alice := newPeer(t, 0)
	ap := alice.join(room, ParticipantParams{Identity: "alice", Role: RoleHost})
	alice.publishVP8(ap)
	bob := newPeer(t, 0)
	w := &srWatch{}
	w.watch(bob)
	bp := bob.join(room, ParticipantParams{Identity: "bob", Role: RoleViewer})
	waitLong(t, "packets and sender reports", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.reports) >= reports && w.packets >= packets
	})
	return bp, w, bob
}

// directOf is p's subscriber PC's direct send path (nil: none).
func directOf(p *Participant) *directSender {
	var ds *directSender
	_ = p.ops.do(func() error { ds = p.direct; return nil })
	return ds
}

// mustDirect is directOf, failing the test when there is none.
func mustDirect(t *testing.T, p *Participant) *directSender {
	t.Helper()
	ds := directOf(p)
	if ds == nil {
		t.Fatal("the viewer's PC has no direct path")
	}
	return ds
}

// TestDirectSendPath: a pion viewer gets a publisher's video through the
// direct send path (so it decrypts what relayd's own SRTP context
// encrypted), and the down track's own sender reports map RTP time to
// wall-clock time as the packets show it, with counts that grow.
func TestDirectSendPath(t *testing.T) {
	s := newLoopbackSFU(t, Config{})
	bp, w, _ := watchedViewer(t, s, 60, 2)
	ds := mustDirect(t, bp)
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := testutil.ToFloat64(s.Metrics().SendPaths.WithLabelValues("direct")); n != 1 {
		t.Errorf("relayd_subscriber_send_path_total{path=direct} %v, want 1", n)
	}
	if sent := ds.sentDirect(); sent < uint64(w.packets) {
		t.Errorf("%d packets sent directly, the viewer received %d: some went through pion", sent, w.packets)
	}
	for i, sr := range w.reports {
		if sr.PacketCount == 0 || sr.OctetCount < 200*sr.PacketCount/2 {
			t.Errorf("report %d: %d packets, %d octets", i, sr.PacketCount, sr.OctetCount)
		}
		if i > 0 && sr.PacketCount <= w.reports[i-1].PacketCount {
			t.Errorf("report %d: count %d after %d", i, sr.PacketCount, w.reports[i-1].PacketCount)
		}
		// The report's RTP time at its NTP time, against the last packet
		// received before it: 90 kHz, 20 ms frames, loopback. Within 50 ms.
		ntp := ntpToTime(sr.NTPTime)
		if d := ntp.Sub(w.at[i]); d > time.Second || d < -time.Second {
			t.Errorf("report %d: NTP time %v, received at %v", i, ntp, w.at[i])
		}
		want := w.lastTSs[i] + uint32(w.at[i].Sub(w.lastAts[i]).Seconds()*90000)
		if diff := int32(sr.RTPTime - want); diff > 4500 || diff < -4500 {
			t.Errorf("report %d: RTP time %d, the packets say %d (%d ticks off)", i, sr.RTPTime, want, diff)
		}
	}
}

// TestPionSendPath: with the direct path off the viewer is served through
// pion's write path and pion's sender reports, as before it existed.
func TestPionSendPath(t *testing.T) {
	s := newLoopbackSFUWith(t, Config{}, MediaConfig{NoDirect: true})
	bp, _, _ := watchedViewer(t, s, 30, 1)
	if directOf(bp) != nil {
		t.Fatal("a direct send path with NoDirect")
	}
	if n := testutil.ToFloat64(s.Metrics().SendPaths.WithLabelValues("pion")); n != 1 {
		t.Errorf("relayd_subscriber_send_path_total{path=pion} %v, want 1", n)
	}
}

// ntpToTime is the inverse of ntpTime.
func ntpToTime(v uint64) time.Time {
	const unixToNTP = 2208988800
	sec := int64(v>>32) - unixToNTP
	nsec := int64((v & 0xffffffff) * uint64(time.Second) >> 32)
	return time.Unix(sec, nsec)
}

// BenchmarkDirectWrite is the direct path's own cost per packet: marshal,
// SRTP (AES-128-GCM here, as Chromium negotiates) and the hand-off to
// the socket, a no-op here. Target: no allocation.
func BenchmarkDirectWrite(b *testing.B) {
	ds := newDirectSender(func(p []byte, _ netip.AddrPort) (int, error) { return len(p), nil }, nil, slog.New(slog.DiscardHandler))
	ctx, err := srtp.CreateContext(make([]byte, 16), make([]byte, 12), srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		b.Fatal(err)
	}
	ds.ctx = ctx
	ds.addr = netip.MustParseAddrPort("127.0.0.1:9")
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 1, Extension: true, ExtensionProfile: rtp.ExtensionProfileOneByte}
	_ = h.SetExtension(3, []byte{0, 1})
	payload := make([]byte, 1150)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for i := 0; b.Loop(); i++ {
		h.SequenceNumber = uint16(i)
		if _, ok, err := ds.writeRTP(&h, payload); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
