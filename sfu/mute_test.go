package sfu

import (
	"testing"
	"time"

	"github.com/relaysfu/relayd/metrics"
)

// countSink counts the packets an up track hands it, and the keyframes
// and discontinuities among them.
type countSink struct {
	n, keyframes, discontinuities int
	first                         *Packet // a copy of the first packet handed
}

func (s *countSink) WriteRTP(p *Packet) {
	s.n++
	if p.Keyframe {
		s.keyframes++
	}
	if p.Discontinuity {
		s.discontinuities++
		if s.first == nil {
			cp := *p
			s.first = &cp
		}
	}
}
func (s *countSink) Close() {}

// A muted track stores and forwards nothing, to any sink; unmuting asks
// for a keyframe and forwarding resumes at one, flagged Discontinuity, so
// a subscriber's sequence goes on without a gap; a subscriber joining
// while muted is not started from what was cached before.
func TestMuteGatesTheReader(t *testing.T) {
	m := metrics.New()
	src := &fakeSource{}
	up := newTestUpTrack(m, src)
	sink := &countSink{}
	if !up.AddSink(sink) {
		t.Fatal("AddSink refused")
	}
	w := &fakeWriter{keep: true}
	d := newBoundDownTrack(t, m, up, w, 1111)
	defer d.Close()

	up.ingest(vp8Packet(1, 1000, true, true, 100))
	up.ingest(vp8Packet(2, 4000, true, false, 100))
	waitFor(t, "2 packets forwarded", func() bool { return w.count.Load() == 2 })

	if !up.SetMuted(true) || up.SetMuted(true) {
		t.Fatal("SetMuted(true): want changed once, then no change")
	}
	if !up.Muted() {
		t.Fatal("Muted() false after SetMuted(true)")
	}
	head, _ := up.Cache().Newest()
	for seq := uint16(3); seq < 10; seq++ {
		up.ingest(vp8Packet(seq, uint32(seq)*3000, true, seq == 5, 100))
	}
	if got, _ := up.Cache().Newest(); got != head {
		t.Errorf("the cache took packets while muted: newest %d, was %d", got, head)
	}
	if sink.n != 2 {
		t.Errorf("sink got %d packets, want the 2 from before the mute", sink.n)
	}
	time.Sleep(20 * time.Millisecond) // what the writer had is written
	if n := w.count.Load(); n != 2 {
		t.Errorf("subscriber got %d packets, want 2", n)
	}

	kf := src.keyframes.Load()
	if !up.SetMuted(false) || up.SetMuted(false) {
		t.Fatal("SetMuted(false): want changed once, then no change")
	}
	if up.Muted() {
		t.Fatal("Muted() true after SetMuted(false)")
	}
	if src.keyframes.Load() == kf {
		t.Error("unmute asked for no keyframe")
	}
	up.ingest(vp8Packet(10, 30000, true, false, 100)) // inter frame: still held back
	if sink.n != 2 {
		t.Fatalf("an inter frame was forwarded before the keyframe after unmute")
	}
	up.ingest(vp8Packet(11, 33000, true, true, 100)) // the keyframe
	up.ingest(vp8Packet(12, 33000, false, false, 100))
	if sink.n != 4 || sink.discontinuities != 1 || sink.first == nil || !sink.first.Keyframe {
		t.Fatalf("after unmute: %d packets, %d discontinuities (first %+v); want 2 more, the first a keyframe flagged", sink.n-2, sink.discontinuities, sink.first)
	}
	waitFor(t, "4 packets at the subscriber", func() bool { return w.count.Load() == 4 })
	ps := w.packets()
	for i := 1; i < len(ps); i++ {
		if ps[i].SequenceNumber != ps[i-1].SequenceNumber+1 {
			t.Errorf("subscriber's packet %d: seq %d after %d (a gap)", i, ps[i].SequenceNumber, ps[i-1].SequenceNumber)
		}
	}
}

// Audio resumes at its first packet after unmute, flagged; a relayed copy
// reports its origin's mute; OnNextPacket fires once, after the next
// packet was handed over.
func TestMuteAudioCopyAndNextPacket(t *testing.T) {
	m := metrics.New()
	up := newTestUpTrack(m, &fakeSource{})
	up.video = false // the gate's audio rule
	sink := &countSink{}
	up.AddSink(sink)
	cp := NewRelayedUpTrack(up, UpTrackParams{ID: "TR_copy", Participant: "alice", Logger: up.log, Metrics: m})
	defer cp.Close()

	up.SetMuted(true)
	if !cp.Muted() {
		t.Error("a relayed copy of a muted track says it is not muted")
	}
	calls := 0
	up.OnNextPacket(func() { calls++ })
	up.ingest(vp8Packet(1, 0, true, false, 50))
	if sink.n != 0 || calls != 0 {
		t.Fatalf("muted: %d packets, OnNextPacket called %d times", sink.n, calls)
	}
	up.SetMuted(false)
	up.ingest(vp8Packet(2, 960, true, false, 50))
	up.ingest(vp8Packet(3, 1920, true, false, 50))
	if sink.n != 2 || sink.discontinuities != 1 {
		t.Errorf("audio after unmute: %d packets, %d discontinuities; want 2, 1", sink.n, sink.discontinuities)
	}
	if calls != 1 {
		t.Errorf("OnNextPacket called %d times, want once", calls)
	}
	if cp.Muted() {
		t.Error("a relayed copy of an unmuted track says it is muted")
	}
	copied := 0
	cp.OnNextPacket(func() { copied++ })
	cp.Forward(&Packet{})
	cp.Forward(&Packet{})
	if copied != 1 {
		t.Errorf("a copy's OnNextPacket called %d times, want once", copied)
	}
}

// TellMuted tells every participant of the room, in the room's order
// after the track's TrackPublished, the track as it is now (muted), and
// the track objects say muted; a track not published there tells nothing.
func TestTellMuted(t *testing.T) {
	s := newLoopbackSFU(t, Config{})
	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	host, viewer := &eventLog{}, &eventLog{}
	if _, _, err := r.Join(ParticipantParams{Identity: "alice", Role: RoleHost, Events: host}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Join(ParticipantParams{Identity: "bob", Role: RoleViewer, Events: viewer}); err != nil {
		t.Fatal(err)
	}
	rp, _, err := r.Join(ParticipantParams{Identity: "alice", Role: RoleRelay, RelayFrom: "src", Events: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	m := s.Metrics()
	origin := newTestUpTrack(m, &fakeSource{})
	cp := NewRelayedUpTrack(origin, UpTrackParams{ID: "TR_copy", Participant: "alice", Logger: origin.log, Metrics: m})
	if err := rp.PublishTrack(cp); err != nil {
		t.Fatal(err)
	}
	if r.TellMuted(origin, "admin") {
		t.Error("TellMuted of a track not published in the room said true")
	}
	origin.SetMuted(true)
	if !r.TellMuted(cp, "admin") {
		t.Fatal("TellMuted of a published track said false")
	}
	muted := func(l *eventLog) (published, mutedAfter bool) {
		for _, ev := range l.events() {
			switch e := ev.(type) {
			case TrackPublished:
				published = e.Track.ID == "TR_copy"
			case TrackMuted:
				mutedAfter = published && e.Track.ID == "TR_copy" && e.Track.Muted && e.By == "admin"
			}
		}
		return
	}
	for name, l := range map[string]*eventLog{"host": host, "viewer": viewer} {
		waitFor(t, name+" told TrackMuted after TrackPublished", func() bool { _, ok := muted(l); return ok })
	}
	if tr := rp.Info().Tracks; len(tr) != 1 || !tr[0].Muted {
		t.Errorf("the relay participant's tracks %+v, want the copy muted", tr)
	}
	rp.Leave()
}
