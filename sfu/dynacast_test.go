package sfu

import (
	"reflect"
	"testing"
	"time"
)

func TestDynacastWant(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		demands []int
		needAll bool
		want    int
	}{
		{"nobody", 3, nil, false, 0},
		{"a relay or recording", 3, nil, true, 3},
		{"one viewer on the top", 3, []int{2}, false, 3},
		{"the highest target counts", 3, []int{0, 1, -1}, false, 2},
		{"all paused", 3, []int{-1, -1}, false, 0},
		{"needAll wins", 3, []int{0}, true, 3},
		{"two layers", 2, []int{1}, false, 2},
	} {
		if got := dynacastWant(tc.n, tc.demands, tc.needAll); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestNextDynacast(t *testing.T) {
	const s = int64(time.Second)
	type step struct {
		at   int64
		want int
		send bool
		sent int
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"told at publish, even none", []step{{0, 0, true, 0}}},
		{"additions at once", []step{{0, 0, true, 0}, {s, 2, true, 2}, {2 * s, 3, true, 3}}},
		{"a removal after 5 s unneeded", []step{{0, 3, true, 3}, {s, 1, false, 3}, {5 * s, 1, false, 3}, {6 * s, 1, true, 1}}},
		{"needed again meanwhile: nothing told", []step{{0, 3, true, 3}, {s, 1, false, 3}, {3 * s, 3, false, 3}, {7 * s, 3, false, 3}}},
		{"the wait starts again", []step{{0, 3, true, 3}, {s, 1, false, 3}, {3 * s, 3, false, 3}, {4 * s, 1, false, 3}, {8 * s, 1, false, 3}, {9 * s, 1, true, 1}}},
		{"layer by layer", []step{{0, 3, true, 3}, {s, 2, false, 3}, {4 * s, 1, false, 3}, {6 * s, 1, true, 2}, {9 * s, 1, true, 1}}},
	} {
		st := dynacastState{Sent: -1}
		for i, x := range tc.steps {
			var send bool
			st, send = nextDynacast(st, x.want, 100*s+x.at)
			if send != x.send || st.Sent != x.sent {
				t.Errorf("%s step %d: send %v sent %d, want %v %d", tc.name, i, send, st.Sent, x.send, x.sent)
			}
		}
	}
}

func (c *peer) publisherLayers() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]string
	for _, ev := range c.events {
		if e, ok := ev.(PublisherLayers); ok {
			out = append(out, e.Active)
		}
	}
	return out
}

// TestDynacastTellsPublisher: a 1.1 simulcast publisher is told no layer
// is needed while nobody watches, all three when a viewer comes (within
// 1 s), and only the low one 5 s after the viewer asks for low.
func TestDynacastTellsPublisher(t *testing.T) {
	s := newLoopbackSFU(t, Config{})
	room, err := s.CreateRoom("dyn", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	alice := newPeer(t, 0)
	ap := alice.join(room, ParticipantParams{Identity: "alice", Role: RoleHost, V11: true})
	alice.publishSimulcast(ap, nil)
	waitLong(t, "publisher.layers []", func() bool {
		l := alice.publisherLayers()
		return len(l) == 1 && len(l[0]) == 0
	})
	bob := newPeer(t, 0)
	bp := bob.join(room, ParticipantParams{Identity: "bob", Role: RoleViewer, V11: true})
	start := time.Now()
	waitLong(t, "publisher.layers [q h f]", func() bool {
		l := alice.publisherLayers()
		return len(l) == 2 && reflect.DeepEqual(l[1], []string{"q", "h", "f"})
	})
	if d := time.Since(start); d > time.Second {
		t.Errorf("the addition took %v", d)
	}
	up := ap.PublishedTracks()[0]
	bp.SetTrackSettings(up.ID(), LayerSettings{Quality: QualityLow})
	start = time.Now()
	waitLong(t, "publisher.layers [q]", func() bool {
		l := alice.publisherLayers()
		return len(l) == 3 && reflect.DeepEqual(l[2], []string{"q"})
	})
	if d := time.Since(start); d < dynacastRemoveAfter-time.Second/2 || d > dynacastRemoveAfter+time.Second {
		t.Errorf("the removal took %v, want ~%v", d, dynacastRemoveAfter)
	}
}
