package relay

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/relaysfu/relayd/sfu"
)

// A held source's relay tells its destination on the other node, over the
// link: that node's OnHeld gets the relay participant (with its tracks),
// held, then resumed; a destination of the source's own node is not told
// over a link (the rooms layer has its participants).
func TestRemoteSourceHeld(t *testing.T) {
	c := newTestCluster()
	got := make(chan string, 8)
	c.onHeld = func(node string, p *sfu.Participant, held bool) {
		got <- fmt.Sprintf("%s %s relay:%v tracks:%d held:%v", node, p.Identity(), p.Role() == sfu.RoleRelay, len(p.PublishedTracks()), held)
	}
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	n1.room(t, c, "c", "alice")
	b := n2.room(t, c, "b", "alice")
	pub := publish(t, a, "alice")
	vb := watch(t, b, "viewer-b")
	var rn notes
	r := startRelay(t, n1.mgr, pub.p, &rn, "b", "c")
	rn.wait(t, "event 4 b")
	vb.receiving("video", "alice", 5)
	vb.receiving("audio", "alice", 5)

	for _, held := range []bool{true, false} {
		r.SourceHeld(held)
		expectOne(t, got, fmt.Sprintf("n2 alice relay:true tracks:2 held:%v", held))
	}
	expectNone(t, got)
	r.Stop()
}

// expectOne reads one string from got within 5 s and checks it is want.
func expectOne(t *testing.T, got <-chan string, want string) {
	t.Helper()
	select {
	case s := <-got:
		if s != want {
			t.Fatalf("got %q, want %q", s, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing within 5 s, want %q", want)
	}
}

// expectNone checks nothing more comes on got for 300 ms.
func expectNone(t *testing.T, got <-chan string) {
	t.Helper()
	select {
	case s := <-got:
		t.Fatalf("one more: %q", s)
	case <-time.After(300 * time.Millisecond):
	}
}

// A paused relay tells its destination on the other node, over the link
// (OnPaused there, with the relay participant), at the pause and at the
// resume; a destination added while paused is told before its tracks are
// published; one of the source's own node is not told over a link.
func TestRemoteRelayPaused(t *testing.T) {
	c := newTestCluster()
	got := make(chan string, 8)
	c.onPaused = func(node string, p *sfu.Participant, paused bool) {
		got <- fmt.Sprintf("%s %s %s tracks:%d paused:%v", node, p.Room().Name(), p.Identity(), len(p.PublishedTracks()), paused)
	}
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	n1.room(t, c, "c", "alice")
	n2.room(t, c, "b", "alice")
	n2.room(t, c, "d", "alice")
	pub := publish(t, a, "alice")
	var rn notes
	r := startRelay(t, n1.mgr, pub.p, &rn, "b", "c")
	rn.wait(t, "event 4 b")
	rn.wait(t, "event 4 c")
	waitFor(t, "the copies in b", func() bool {
		p := relayIn(n2.sfu.Room("b"))
		return p != nil && len(p.PublishedTracks()) == 2
	})

	if _, err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	expectOne(t, got, "n2 b alice tracks:2 paused:true")
	expectNone(t, got)
	if _, err := r.Update([]Target{{Room: "b", Identity: "alice"}, {Room: "c", Identity: "alice"}, {Room: "d", Identity: "alice"}}); err != nil {
		t.Fatal(err)
	}
	expectOne(t, got, "n2 d alice tracks:0 paused:true")
	if _, err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"n2 b alice tracks:2 paused:false": true, "n2 d alice tracks:2 paused:false": true}
	for range 2 {
		select {
		case s := <-got:
			if !want[s] {
				t.Fatalf("OnPaused: %q, want one of %v", s, want)
			}
			delete(want, s)
		case <-time.After(5 * time.Second):
			t.Fatalf("no OnPaused: %v", want)
		}
	}
	expectNone(t, got)
	r.Stop()
}

// A muted source track: its copy on the other node is told over the link
// (OnMuted there, with the copy, muted and by), as is the unmute; a copy
// published while its source is muted starts muted.
func TestRemoteTrackMuted(t *testing.T) {
	c := newTestCluster()
	got := make(chan string, 8)
	c.onMuted = func(node string, p *sfu.Participant, up *sfu.UpTrack, muted bool, by string) {
		mine := slices.Contains(p.PublishedTracks(), up)
		got <- fmt.Sprintf("%s %s %s %s mine:%v muted:%v by:%s", node, p.Room().Name(), p.Identity(), up.Kind(), mine, muted, by)
	}
	n1 := c.newTestNode(t, "n1", nil)
	n2 := c.newTestNode(t, "n2", nil)
	a := n1.room(t, c, "a", "alice")
	n2.room(t, c, "b", "alice")
	n2.room(t, c, "d", "alice")
	pub := publish(t, a, "alice")
	var audio *sfu.UpTrack
	for _, up := range pub.p.PublishedTracks() {
		if up.Kind().String() == "audio" {
			audio = up
		}
	}
	if audio == nil {
		t.Fatal("no audio track")
	}
	var rn notes
	r := startRelay(t, n1.mgr, pub.p, &rn, "b")
	rn.wait(t, "event 4 b")
	waitFor(t, "the copies in b", func() bool {
		p := relayIn(n2.sfu.Room("b"))
		return p != nil && len(p.PublishedTracks()) == 2
	})

	for _, muted := range []bool{true, false} {
		if !audio.SetMuted(muted) {
			t.Fatalf("SetMuted(%v) changed nothing", muted)
		}
		n1.mgr.TrackMuted(audio, muted, "admin")
		expectOne(t, got, fmt.Sprintf("n2 b alice audio mine:true muted:%v by:admin", muted))
	}
	expectNone(t, got)

	audio.SetMuted(true)
	if _, err := r.Update([]Target{{Room: "b", Identity: "alice"}, {Room: "d", Identity: "alice"}}); err != nil {
		t.Fatal(err)
	}
	rn.wait(t, "event 4 d")
	waitFor(t, "the copies in d", func() bool {
		p := relayIn(n2.sfu.Room("d"))
		return p != nil && len(p.PublishedTracks()) == 2
	})
	for _, up := range relayIn(n2.sfu.Room("d")).PublishedTracks() {
		if want := up.Kind().String() == "audio"; up.Muted() != want {
			t.Fatalf("copy of the %s track in d: muted %v, want %v", up.Kind(), up.Muted(), want)
		}
	}
	expectNone(t, got)
	r.Stop()
}

// relayIn returns room's relay participant (nil: none).
func relayIn(room *sfu.Room) *sfu.Participant {
	for _, p := range room.Members() {
		if p.Role() == sfu.RoleRelay {
			return p
		}
	}
	return nil
}
