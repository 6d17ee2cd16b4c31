package relay

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaysfu/relayd/sfu"
)

// No word of a relay's destinations is ever dropped. The source's session
// is slow to take a notification, which holds the loop up while 150
// destinations' egresses post their first packets (300 posts: more than
// the 256 a bounded channel held) and then every destination room ends:
// every end still reaches the relay (event 0 each, then idle).
func TestRelayEventsNeverDropped(t *testing.T) {
	const rooms = 150
	c := newTestCluster()
	n := c.newTestNode(t, "n1", nil)
	a := n.room(t, c, "a", "alice")
	var ts []Target
	var dests []*sfu.Room
	for i := range rooms {
		name := fmt.Sprintf("d%03d", i)
		dests = append(dests, n.room(t, c, name, "alice"))
		ts = append(ts, Target{Room: name, Identity: "alice"})
	}
	pub := publish(t, a, "alice")
	mgr := NewManager(Config{
		SFU: n.sfu, Metrics: n.sfu.Metrics(), Logger: testLogger(), MaxDestinations: rooms,
		Authorize: func(t Target) (string, Error) { return t.Identity, ErrNone },
	})
	t.Cleanup(mgr.Close)

	var (
		slow    sync.Once
		holding = make(chan struct{})
		release = make(chan struct{})
		notes   notes
	)
	r, err := mgr.Start(pub.p, ts, func(method string, params any) {
		notes.notify(method, params)
		if p, ok := params.(EventParams); ok && p.Code == int(EventSentToDestChannel) {
			slow.Do(func() {
				close(holding)
				select {
				case <-release:
				case <-time.After(20 * time.Second):
				}
			})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	begun := make(chan struct{})
	go func() { // Begin's goroutine may be the one held up
		defer close(begun)
		r.Begin()
	}()
	select {
	case <-holding:
	case <-time.After(20 * time.Second):
		t.Fatal("no packet reached a destination")
	}
	time.Sleep(500 * time.Millisecond) // the other egresses post meanwhile
	for _, d := range dests {
		d.End("test")
	}
	close(release)
	<-begun
	notes.wait(t, "state idle/0 error none/0")
	ended := 0
	for _, s := range notes.all() {
		if strings.HasPrefix(s, "event 0 d") {
			ended++
		}
	}
	if ended != rooms {
		t.Errorf("event 0 for %d of %d ended destinations", ended, rooms)
	}
}
