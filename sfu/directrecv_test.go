package sfu

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDirectReceivePath: what a viewer on the direct path sends back is
// read off the media socket by relayd's own SRTCP context, not pion's:
// its receiver reports and feedback are taken, its PLI becomes a keyframe
// request to the publisher and its NACK a retransmission from the cache.
// (Taken packets never reach pion: had the direct path taken them and
// dropped them, neither would happen.)
func TestDirectReceivePath(t *testing.T) {
	s := newLoopbackSFU(t, Config{})
	bp, w, bob := watchedViewer(t, s, 30, 1)
	ds := mustDirect(t, bp)
	waitLong(t, "the viewer's reports and feedback taken", func() bool { return ds.recv.taken.Load() >= 3 })

	var ssrc uint32
	for _, r := range bob.sub.GetReceivers() {
		if tr := r.Track(); tr != nil && tr.Kind().String() == "video" {
			ssrc = uint32(tr.SSRC())
		}
	}
	if ssrc == 0 {
		t.Fatal("the viewer has no video track")
	}
	m := s.Metrics()
	pliIn, pliUp := m.PLIs.WithLabelValues("from_subscriber"), m.PLIs.WithLabelValues("to_publisher")
	hit := m.Retransmits.WithLabelValues("hit")
	in0, up0, hit0 := testutil.ToFloat64(pliIn), testutil.ToFloat64(pliUp), testutil.ToFloat64(hit)
	taken0 := ds.recv.taken.Load()
	time.Sleep(keyframeInterval) // the publisher's keyframe throttle is not the test's
	if err := bob.sub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: ssrc}}); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the PLI at the publisher", func() bool {
		return testutil.ToFloat64(pliIn) > in0 && testutil.ToFloat64(pliUp) > up0
	})
	w.mu.Lock()
	seq := w.lastSeq
	w.mu.Unlock()
	if err := bob.sub.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{seq - 3})}}); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the NACK answered", func() bool { return testutil.ToFloat64(hit) > hit0 })
	if ds.recv.taken.Load() < taken0+2 {
		t.Errorf("taken %d after the PLI and the NACK, %d before", ds.recv.taken.Load(), taken0)
	}

	// Nothing of its RTCP reached pion: the down track's reader of pion's
	// RTCP waits (rtcpreaders.go), no goroutine.
	ds.mu.Lock()
	waiting, toPion := len(ds.readers), ds.pionRTCP
	ds.mu.Unlock()
	if waiting != 1 || toPion {
		t.Fatalf("on the direct path: %d readers waiting, RTCP to pion %v; want 1, false", waiting, toPion)
	}
	// (Waited for: an earlier test's PeerConnections may still be closing.)
	waitLong(t, "no rtcpLoop goroutine", func() bool { return rtcpLoops() == 0 })
	// A packet from its address that does not decrypt goes to pion, and
	// the reader starts; the viewer's RTCP is still taken directly.
	bogus := []byte{0x81, 200, 0, 6, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 0x80, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}
	if ds.takeRTCP(bogus) {
		t.Fatal("a packet that does not authenticate was taken")
	}
	ds.mu.Lock()
	waiting, toPion = len(ds.readers), ds.pionRTCP
	ds.mu.Unlock()
	if waiting != 0 || !toPion {
		t.Fatalf("after a packet for pion: %d readers waiting, RTCP to pion %v; want 0, true", waiting, toPion)
	}
	waitLong(t, "the reader of pion's RTCP running", func() bool { return rtcpLoops() == 1 })
	taken1, in1 := ds.recv.taken.Load(), testutil.ToFloat64(pliIn)
	time.Sleep(keyframeInterval)
	if err := bob.sub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: ssrc}}); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "a PLI after that", func() bool { return testutil.ToFloat64(pliIn) > in1 })
	if ds.recv.taken.Load() <= taken1 {
		t.Error("the viewer's RTCP is no longer taken directly")
	}
}

// rtcpLoops counts the goroutines in DownTrack.rtcpLoop.
func rtcpLoops() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "sfu.(*DownTrack).rtcpLoop(")
}
