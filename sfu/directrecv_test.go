package sfu

import (
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
}
