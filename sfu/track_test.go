package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/metrics"

	"github.com/relaysfu/relayd/internal/codec"
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
		if !codec.KeyframeStart(vp8.MimeType, ps[0].Payload) {
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
	if !d.nack(lost.SequenceNumber) {
		t.Fatal("NACK not queued")
	}
	waitFor(t, "the retransmission", func() bool { return w.count.Load() == 6 })
	rtx := w.packets()[5]
	if rtx.SequenceNumber != lost.SequenceNumber || rtx.Timestamp != lost.Timestamp || string(rtx.Payload) != string(lost.Payload) {
		t.Errorf("retransmission %d/%d differs from the original %d/%d", rtx.SequenceNumber, rtx.Timestamp, lost.SequenceNumber, lost.Timestamp)
	}
	d.nack(lost.SequenceNumber + 1000) // never sent: a miss
	waitFor(t, "the miss counted", func() bool {
		return testutil.ToFloat64(m.Retransmits.WithLabelValues("miss")) == 1
	})
	if got := testutil.ToFloat64(m.Retransmits.WithLabelValues("hit")); got != 1 {
		t.Errorf("retransmit hits = %v, want 1", got)
	}
}

// A stuck writer group must not slow the reader or the other groups: its
// queue fills, video is dropped to the next keyframe (one is requested),
// the drops are counted for each of its subscribers, and when it recovers
// it resumes at a keyframe with no gap in its sequence numbers.
func TestSlowWriterDropsToKeyframe(t *testing.T) {
	defer func(n int) { writerTracks = n }(writerTracks)
	writerTracks = 1 // one subscriber per writer: fast and slow in different groups
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
	if df.w.Load() == ds.w.Load() {
		t.Fatal("both subscribers on one writer")
	}

	const n = 400
	for i := uint16(0); i < n; i++ {
		up.ingest(vp8Packet(i, uint32(i/4)*3000, i%4 == 0, i == 0, 100))
		// The reader is never held up by the stuck group: the fast one
		// gets each packet while the slow one's writer is blocked.
		waitFor(t, "the fast subscriber to get the packet", func() bool { return fast.count.Load() == int64(i)+1 })
	}
	drops := testutil.ToFloat64(m.Drops.WithLabelValues("video", "queue_full"))
	if drops < n-videoQueueSize-1 {
		t.Errorf("queue_full drops = %v, want at least %d", drops, n-videoQueueSize-1)
	}
	kf := src.keyframes.Load()

	release() // the subscriber recovers
	waitFor(t, "the slow writer to drain", func() bool { return len(ds.w.Load().queue) == 0 })
	time.Sleep(10 * time.Millisecond) // the last dequeued packet is written
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
	if !codec.KeyframeStart(vp8.MimeType, resumed.Payload) {
		t.Error("resumed on a packet that is not a keyframe start")
	}
}

// Down tracks share writers, writerTracks each; the last one leaving a
// writer stops it.
func TestWritersGroupDownTracks(t *testing.T) {
	defer func(n int) { writerTracks = n }(writerTracks)
	writerTracks = 2
	m := metrics.New()
	up := newTestUpTrack(m, &fakeSource{})
	var ws []*fakeWriter
	var ds []*DownTrack
	for i := 0; i < 5; i++ {
		w := &fakeWriter{}
		ws = append(ws, w)
		ds = append(ds, newBoundDownTrack(t, m, up, w, webrtc.SSRC(i+1)))
	}
	if n := len(up.writers); n != 3 {
		t.Fatalf("%d writers for 5 down tracks of 2 each, want 3", n)
	}
	if up.SinkCount() != 5 {
		t.Errorf("SinkCount %d, want 5", up.SinkCount())
	}
	for i := uint16(0); i < 4; i++ {
		up.ingest(vp8Packet(i, uint32(i)*3000, true, i == 0, 100))
	}
	for i, w := range ws {
		waitFor(t, fmt.Sprintf("subscriber %d's 4 packets", i), func() bool { return w.count.Load() == 4 })
	}
	ds[4].Close() // alone on the third writer
	if n := len(up.writers); n != 2 {
		t.Errorf("%d writers after the lone subscriber left, want 2", n)
	}
	for _, d := range ds[:4] {
		up.RemoveDownTrack(d)
		d.Close()
	}
	if len(up.writers) != 0 || len(*up.sinks.Load()) != 0 {
		t.Errorf("%d writers, %d sinks left", len(up.writers), len(*up.sinks.Load()))
	}
	up.finish() // waits for every writer goroutine
}

// A subscriber whose transport comes up after the keyframe starts from the
// cached keyframe (no new request); one that comes up when the cached
// keyframe is too old waits for a new one and asks for it.
func TestReadyStartsFromCachedKeyframe(t *testing.T) {
	m := metrics.New()
	src := &fakeSource{}
	up := newTestUpTrack(m, src)
	defer up.finish()
	for i := uint16(0); i < 6; i++ { // keyframe at 1, then delta frames
		up.ingest(vp8Packet(i, uint32(i)*3000, true, i == 1, 100))
	}
	w := &fakeWriter{keep: true}
	d := newUnreadyDownTrack(t, m, up, w, 9)
	defer d.Close()
	up.ingest(vp8Packet(6, 18000, true, false, 100)) // not ready: not written
	d.SetReady()
	up.ingest(vp8Packet(7, 21000, true, false, 100))
	waitFor(t, "the replay and the live packet", func() bool { return w.count.Load() == 7 })
	ps := w.packets()
	if !codec.KeyframeStart(vp8.MimeType, ps[0].Payload) || ps[0].Payload[len(ps[0].Payload)-1] != 1 {
		t.Errorf("first packet is not the cached keyframe (upstream seq 1)")
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].SequenceNumber != ps[i-1].SequenceNumber+1 || ps[i].Payload[len(ps[i].Payload)-1] != byte(i+1) {
			t.Errorf("packet %d: seq %d after %d, upstream %d", i, ps[i].SequenceNumber, ps[i-1].SequenceNumber, ps[i].Payload[len(ps[i].Payload)-1])
		}
	}
	if got := testutil.ToFloat64(m.KeyframeReplays); got != 1 {
		t.Errorf("replays = %v, want 1", got)
	}
	if src.keyframes.Load() != 0 {
		t.Error("a keyframe was requested although the cached one was used")
	}

	// A cached keyframe older than replayMaxAge is not replayed.
	up2 := newTestUpTrack(m, &fakeSource{})
	defer up2.finish()
	up2.ingest(vp8Packet(1, 3000, true, true, 100))
	up2.cache.keyAt.Store(Now() - replayMaxAge - int64(time.Millisecond))
	w2 := &fakeWriter{keep: true}
	d2 := newBoundDownTrack(t, m, up2, w2, 10)
	defer d2.Close()
	up2.ingest(vp8Packet(2, 6000, true, false, 100))
	up2.ingest(vp8Packet(3, 9000, true, true, 100))
	waitFor(t, "the new keyframe", func() bool { return w2.count.Load() == 1 })
	if p := w2.packets()[0]; p.Payload[len(p.Payload)-1] != 3 {
		t.Errorf("started at upstream %d, want the new keyframe 3", p.Payload[len(p.Payload)-1])
	}
	if up2.src.(*fakeSource).keyframes.Load() == 0 {
		t.Error("no keyframe requested for a subscriber without a recent cached one")
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
	up.RemoveDownTrack(d)
	if len(snapshot) != 1 || up.SinkCount() != 0 {
		t.Fatalf("snapshot %d sinks, now %d", len(snapshot), up.SinkCount())
	}
	d.Close()
	up.finish()
	if up.AddDownTrack(d) {
		t.Error("AddDownTrack accepted a down track after the track ended")
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

// A subscriber that becomes ready gets the cached keyframe at once, before
// any new packet arrives, and no packet twice when the next ones come.
func TestReadyReplaysWithoutWaitingForAPacket(t *testing.T) {
	m := metrics.New()
	up := newTestUpTrack(m, &fakeSource{})
	defer up.finish()
	for i := uint16(0); i < 4; i++ { // keyframe at 1
		up.ingest(vp8Packet(i, uint32(i)*3000, true, i == 1, 100))
	}
	w := &fakeWriter{keep: true}
	d := newUnreadyDownTrack(t, m, up, w, 9)
	defer d.Close()
	d.SetReady()
	waitFor(t, "the replay (upstream 1..3)", func() bool { return w.count.Load() == 3 })
	up.ingest(vp8Packet(4, 12000, true, false, 100))
	waitFor(t, "the live packet", func() bool { return w.count.Load() == 4 })
	for i, p := range w.packets() {
		if up := p.Payload[len(p.Payload)-1]; up != byte(i+1) {
			t.Errorf("packet %d is upstream %d, want %d", i, up, i+1)
		}
	}
}
