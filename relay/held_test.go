package relay

import (
	"fmt"
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
		want := fmt.Sprintf("n2 alice relay:true tracks:2 held:%v", held)
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("OnHeld: %q, want %q", s, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no OnHeld (%v) on the destination's node", held)
		}
	}
	select {
	case s := <-got:
		t.Fatalf("one more OnHeld: %q", s)
	case <-time.After(300 * time.Millisecond):
	}
	r.Stop()
}
