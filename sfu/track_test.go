package sfu

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/metrics"
)

func TestForwardStartsAtKeyframeAndRewrites(t *testing.T) {
	m := metrics.New()
	src := &fakeSource{}
	up := newTestUpTrack(m, src)
	w1, w2 := &fakeWriter{keep: true}, &fakeWriter{keep: true}
	d1 := newBoundDownTrack(t, m, up, w1, 1111)
	d2 := newBoundDownTrack(t, m, up, w2, 2222)
	defer d1.Close()
	defer d2.Close()

	up.ingest(vp8Packet(10, 1000, true, false, 100)) // inter frame: held back
	up.ingest(vp8Packet(11, 4000, true, true, 100))  // keyframe start
	up.ingest(vp8Packet(12, 4000, false, false, 100))
	up.ingest(vp8Packet(13, 7000, true, false, 100))
	waitFor(t, "3 packets on each subscriber", func() bool { return w1.count.Load() == 3 && w2.count.Load() == 3 })

	if src.keyframes.Load() == 0 {
		t.Error("no keyframe requested while a subscriber waited for one")
	}
	for _, tc := range []struct {
		w    *fakeWriter
		ssrc uint32
	}{{w1, 1111}, {w2, 2222}} {
		ps := tc.w.packets()
		if !KeyframeStart(vp8.MimeType, ps[0].Payload) {
			t.Errorf("ssrc %d: first packet is not a keyframe start", tc.ssrc)
		}
		for i, p := range ps {
			if p.SSRC != tc.ssrc || p.PayloadType != 100 {
				t.Errorf("packet %d: ssrc %d pt %d, want %d 100", i, p.SSRC, p.PayloadType, tc.ssrc)
			}
			if p.Extension || len(p.Extensions) > 0 {
				t.Errorf("packet %d: publisher's header extensions forwarded", i)
			}
			if i > 0 && p.SequenceNumber != ps[i-1].SequenceNumber+1 {
				t.Errorf("packet %d: seq %d after %d", i, p.SequenceNumber, ps[i-1].SequenceNumber)
			}
		}
		if d := ps[2].Timestamp - ps[0].Timestamp; d != 3000 {
			t.Errorf("timestamp delta %d, want 3000", d)
		}
	}
	if w1.packets()[0].SequenceNumber == w2.packets()[0].SequenceNumber &&
		w1.packets()[0].Timestamp == w2.packets()[0].Timestamp {
		t.Error("two subscribers got the same random sequence and timestamp bases")
	}
}

func TestNACKServedFromCache(t *testing.T) {
	m := metrics.New()
	up := newTestUpTrack(m, &fakeSource{})
	w := &fakeWriter{keep: true}
	d := newBoundDownTrack(t, m, up, w, 1)
	defer d.Close()
	for i := uint16(0); i < 5; i++ {
		up.ingest(vp8Packet(100+i, 9000, i == 0, i == 0, 200))
	}
	waitFor(t, "5 packets", func() bool { return w.count.Load() == 5 })
	lost := w.packets()[2]
	d.nacks <- lost.SequenceNumber
	waitFor(t, "the retransmission", func() bool { return w.count.Load() == 6 })
	rtx := w.packets()[5]
	if rtx.SequenceNumber != lost.SequenceNumber || rtx.Timestamp != lost.Timestamp || string(rtx.Payload) != string(lost.Payload) {
		t.Errorf("retransmission %d/%d differs from the original %d/%d", rtx.SequenceNumber, rtx.Timestamp, lost.SequenceNumber, lost.Timestamp)
	}
	d.nacks <- lost.SequenceNumber + 1000 // never sent: a miss
	waitFor(t, "the miss counted", func() bool {
		return testutil.ToFloat64(m.Retransmits.WithLabelValues("miss")) == 1
	})
	if got := testutil.ToFloat64(m.Retransmits.WithLabelValues("hit")); got != 1 {
		t.Errorf("retransmit hits = %v, want 1", got)
	}
}

// A stuck subscriber must not slow the reader or the other subscribers: its
// queue fills, video is dropped to the next keyframe (one is requested),
// the drops are counted, and when it recovers it resumes at a keyframe
// with no gap in its sequence numbers.
func TestSlowSubscriberDropsToKeyframe(t *testing.T) {
	m := metrics.New()
	src := &fakeSource{}
	up := newTestUpTrack(m, src)
	fast := &fakeWriter{keep: true}
	slow := &fakeWriter{keep: true, gate: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(slow.gate)
		}
	}
	t.Cleanup(release) // never leave the writer stuck, even on failure
	df := newBoundDownTrack(t, m, up, fast, 1)
	ds := newBoundDownTrack(t, m, up, slow, 2)
	defer df.Close()
	defer ds.Close()

	const n = 400
	for i := uint16(0); i < n; i++ {
		up.ingest(vp8Packet(i, uint32(i/4)*3000, i%4 == 0, i == 0, 100))
		// The reader is never held up by the stuck subscriber: the fast
		// one gets each packet while the slow one's writer is blocked.
		waitFor(t, "the fast subscriber to get the packet", func() bool { return fast.count.Load() == int64(i)+1 })
	}
	drops := testutil.ToFloat64(m.Drops.WithLabelValues("video", "queue_full"))
	if drops < n-videoQueueSize-1 {
		t.Errorf("queue_full drops = %v, want at least %d", drops, n-videoQueueSize-1)
	}
	kf := src.keyframes.Load()

	release() // the subscriber recovers
	waitFor(t, "the slow subscriber to drain", func() bool { return len(ds.queue) == 0 })
	before := slow.count.Load()
	up.ingest(vp8Packet(n, 999000, false, false, 100))    // still dropped: no keyframe yet
	up.ingest(vp8Packet(n+1, 1002000, true, true, 100))   // keyframe: resync
	up.ingest(vp8Packet(n+2, 1002000, false, false, 100)) // same frame
	waitFor(t, "the slow subscriber to resume", func() bool { return slow.count.Load() == before+2 })
	if src.keyframes.Load() <= kf-1 {
		t.Error("no keyframe requested for the congested subscriber")
	}
	ps := slow.packets()
	last, resumed := ps[len(ps)-3], ps[len(ps)-2]
	if resumed.SequenceNumber != last.SequenceNumber+1 {
		t.Errorf("resumed at seq %d after %d: a gap the subscriber would NACK", resumed.SequenceNumber, last.SequenceNumber)
	}
	if !KeyframeStart(vp8.MimeType, resumed.Payload) {
		t.Error("resumed on a packet that is not a keyframe start")
	}
}

func TestGarbageRTPIsCountedNotForwarded(t *testing.T) {
	m := metrics.New()
	up := newTestUpTrack(m, &fakeSource{})
	w := &fakeWriter{}
	d := newBoundDownTrack(t, m, up, w, 1)
	defer d.Close()
	for _, b := range [][]byte{nil, {0x80}, {0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0xff, 0xff}, make([]byte, 12)} {
		up.ingest(b)
	}
	if w.count.Load() != 0 {
		t.Error("garbage forwarded")
	}
	if got := testutil.ToFloat64(m.Drops.WithLabelValues("video", "stale")); got < 3 {
		t.Errorf("garbage drops = %v, want >= 3", got)
	}
}

func TestSinkListCopyOnWrite(t *testing.T) {
	m := metrics.New()
	up := newTestUpTrack(m, &fakeSource{})
	w := &fakeWriter{}
	d := newBoundDownTrack(t, m, up, w, 1)
	snapshot := *up.sinks.Load()
	up.RemoveSink(d)
	if len(snapshot) != 1 || up.SinkCount() != 0 {
		t.Fatalf("snapshot %d sinks, now %d", len(snapshot), up.SinkCount())
	}
	d.Close()
	up.finish()
	if up.AddSink(d) {
		t.Error("AddSink accepted a sink after the track ended")
	}
}

// A keyframe request inside the throttle interval is deferred to its end,
// once, not dropped: a subscriber joining just after another still gets a
// keyframe within keyframeInterval.
func TestKeyframeRequestDeferred(t *testing.T) {
	src := &fakeSource{}
	up := newTestUpTrack(metrics.New(), src)
	defer up.finish()
	up.RequestKeyframe()
	if src.keyframes.Load() != 1 {
		t.Fatalf("first request not sent at once")
	}
	for i := 0; i < 5; i++ {
		up.RequestKeyframe() // throttled: one deferred request for all
	}
	if src.keyframes.Load() != 1 {
		t.Fatalf("throttled requests sent at once: %d", src.keyframes.Load())
	}
	waitFor(t, "the deferred request", func() bool { return src.keyframes.Load() == 2 })
	time.Sleep(keyframeInterval + 100*time.Millisecond)
	if n := src.keyframes.Load(); n != 2 {
		t.Fatalf("%d requests, want 2 (one at once, one deferred)", n)
	}
}
