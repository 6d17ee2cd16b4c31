package sfu

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// A client that answers the subscriber offer with an error is offered
// again, after a backoff, and gets its media once it answers. pion cannot
// roll a local offer back: before, the rollback failed, the next offer
// could not be set either, and the subscriber PC stayed without media for
// good (bugs.md 9).
func TestRefusedSubscriberOfferIsOfferedAgain(t *testing.T) {
	s := newLoopbackSFU(t, Config{})
	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	host := newPeer(t, 0)
	hp := host.join(r, ParticipantParams{Identity: "alice", Role: RoleHost})
	host.publishVP8(hp)
	waitLong(t, "the host's track", func() bool { return len(hp.PublishedTracks()) == 1 })

	viewer := newPeer(t, 1) // answers the first offer with an error
	viewer.join(r, ParticipantParams{Identity: "bob", Role: RoleViewer})
	waitLong(t, "media on the viewer that refused its first offer", func() bool { return viewer.received.Load() >= 10 })
	offered, refused := viewer.counts()
	if refused != 1 || offered < 2 {
		t.Errorf("%d offers, %d refused; want the refused one and another", offered, refused)
	}
}

func TestOfferRetryDelay(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{
		{1, 500 * time.Millisecond},
		{2, time.Second},
		{3, 2 * time.Second},
		{5, 8 * time.Second},
		{6, 16 * time.Second},
		{7, 16 * time.Second},
		{1000, 16 * time.Second},
	}
	for _, tc := range tests {
		if got := offerRetryDelay(tc.n); got != tc.want {
			t.Errorf("offerRetryDelay(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

// While a participant's offer is being answered (here its deliver
// callback is held), the room goes on: another participant publishes into
// it (which subscribes the first one), and the participant's own state
// can be read. Before, the participant's lock was held across the
// negotiation and its deliver callback, and publishing waited for it.
func TestNoLockHeldWhileAnswering(t *testing.T) {
	var mu sync.Mutex
	var published []string
	s := newLoopbackSFU(t, Config{Observer: ObserverFunc(func(c RoomChange) {
		if tc, ok := c.(TrackChanged); ok && tc.Published {
			mu.Lock()
			published = append(published, tc.Track.ID())
			mu.Unlock()
		}
	})})
	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	hp, _, err := r.Join(ParticipantParams{Identity: "alice", Role: RoleHost, Events: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := clientAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}

	inDeliver, release := make(chan struct{}), make(chan struct{})
	released := false
	unblock := func() {
		if !released {
			released = true
			close(release)
		}
	}
	defer unblock()
	answered := make(chan error, 1)
	go func() {
		answered <- hp.HandleOffer(offer.SDP, func(string) {
			close(inDeliver)
			<-release
		})
	}()
	<-inDeliver

	relay, _, err := r.Join(ParticipantParams{Identity: "alice", Role: RoleRelay, Events: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	up := upTrackFor(s, "alice")
	done := make(chan error, 1)
	go func() {
		err := relay.PublishTrack(up)
		hp.SubscriberOfferFailed()
		_ = hp.Info()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("publishing into the room waited for the host's answer to be delivered")
	}
	mu.Lock()
	n := len(published)
	mu.Unlock()
	if n != 1 {
		t.Errorf("the observer saw %d tracks published, want 1", n)
	}
	unblock()
	if err := <-answered; err != nil {
		t.Errorf("HandleOffer: %v", err)
	}
	relay.Leave()
}

// callbackSink calls back into the room from Notify, as a sink may now
// that Notify runs with no sfu lock held, and records the events.
type callbackSink struct {
	r *Room
	eventLog
}

func (s *callbackSink) Notify(ev Event) {
	_ = s.r.Info(true)
	_ = s.r.Members()
	s.eventLog.Notify(ev)
}

// Notify is called with no lock held: a sink calling back into the room
// does not deadlock. Before, Notify ran under the room's lock.
func TestNotifyMayCallBackIntoTheRoom(t *testing.T) {
	s := New(Config{})
	defer closeUnlessDeadlocked(t, s)
	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	host := &callbackSink{r: r}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, _, err := r.Join(ParticipantParams{Identity: "alice", Role: RoleHost, Events: host}); err != nil {
			t.Error(err)
			return
		}
		for i := range 3 {
			v, _, err := r.Join(ParticipantParams{Identity: fmt.Sprint("v", i), Role: RoleViewer, Events: &callbackSink{r: r}})
			if err != nil {
				t.Error(err)
				return
			}
			v.Leave()
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("joining and leaving deadlocked with a sink that calls back into the room")
	}
	waitFor(t, "the host told of 3 joins and 3 leaves", func() bool { return len(host.events()) == 6 })
}

// Every participant gets the room's changes in one order, whatever the
// goroutines that make them: for any two participants, the events both
// got come in the same order.
func TestEventsInOneOrderForEveryone(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	const watchers, movers = 5, 20
	logs := make([]*eventLog, watchers)
	for i := range logs {
		logs[i] = &eventLog{}
		if _, _, err := r.Join(ParticipantParams{Identity: fmt.Sprint("w", i), Role: RoleViewer, Events: logs[i]}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range movers {
		wg.Go(func() {
			p, _, err := r.Join(ParticipantParams{Identity: fmt.Sprint("m", i), Role: RoleViewer, Events: nopSink{}})
			if err != nil {
				t.Error(err)
				return
			}
			if i%2 == 0 {
				p.SetRole(RoleCohost)
			}
			p.Leave()
		})
	}
	wg.Wait()
	// The movers' changes, as each watcher got them (the watchers' own
	// joins are not the point: the later ones are unknown to the first).
	moves := func(l *eventLog) []string {
		var out []string
		for _, ev := range l.events() {
			var what string
			var who ParticipantInfo
			switch e := ev.(type) {
			case ParticipantJoined:
				what, who = "joined", e.Participant
			case ParticipantLeft:
				what, who = "left", e.Participant
			case ParticipantUpdated:
				what, who = "updated", e.Participant
			}
			if strings.HasPrefix(who.Identity, "m") {
				out = append(out, what+" "+who.Identity)
			}
		}
		return out
	}
	want := movers*2 + movers/2 // every mover joined and left, half were updated
	seqs := make([][]string, watchers)
	for i, l := range logs {
		waitFor(t, fmt.Sprintf("watcher %d's events", i), func() bool { return len(moves(l)) == want })
		seqs[i] = moves(l)
	}
	for i := 1; i < watchers; i++ {
		a := slices.DeleteFunc(slices.Clone(seqs[0]), func(k string) bool { return !slices.Contains(seqs[i], k) })
		b := slices.DeleteFunc(slices.Clone(seqs[i]), func(k string) bool { return !slices.Contains(seqs[0], k) })
		if !slices.Equal(a, b) {
			t.Fatalf("watchers 0 and %d got the changes in different orders:\n%v\n%v", i, a, b)
		}
	}
}

// No one becomes a relay: a relay is a session of its own, kept under a
// key of its own. Before, SetRole(RoleRelay) turned a viewer into one,
// and the room could no longer find it to remove it when it left.
func TestSetRoleNeverMakesARelay(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := r.Join(ParticipantParams{Identity: "bob", Role: RoleViewer, Events: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	v.SetRole(RoleRelay)
	if got := v.Role(); got != RoleViewer {
		t.Errorf("role %s, want viewer", got)
	}
	v.Leave()
	if r.Participant("bob") != nil || len(r.Members()) != 0 {
		t.Error("the participant is still in the room after leaving")
	}
}

// A participant's op goroutine is gone once it has left, and its calls
// return ErrClosed instead of waiting.
func TestOpsEndWithTheParticipant(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := r.Join(ParticipantParams{Identity: "bob", Role: RoleViewer, Events: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	p.Leave()
	select {
	case <-p.ops.done:
	default:
		t.Fatal("the op goroutine is still running after Leave")
	}
	if err := p.SetSubscriberAnswer("v=0"); err != ErrClosed {
		t.Errorf("SetSubscriberAnswer after Leave: %v, want ErrClosed", err)
	}
	if err := p.AddICECandidate(TargetSubscriber, webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"}); err != ErrClosed {
		t.Errorf("AddICECandidate after Leave: %v, want ErrClosed", err)
	}
	p.SubscriberOfferFailed() // nothing to do, and no goroutine started
	p.ClosePublisher()
}

// The publish gate asks Config.IsCohost with no lock held, so the hook may
// read the room. Before, it was asked under the room's lock, and a hook
// reading the room deadlocked the relay's publish.
func TestPublishGateHookCalledWithoutLock(t *testing.T) {
	var s *SFU
	s = New(Config{IsCohost: func(room, identity string) bool {
		_ = s.Room(room).Info(true)
		return identity == "carol"
	}})
	defer closeUnlessDeadlocked(t, s)
	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var carolErr, daveErr error
	go func() {
		defer close(done)
		for _, who := range []string{"carol", "dave"} {
			p, _, err := r.Join(ParticipantParams{Identity: who, Role: RoleRelay, Events: nopSink{}})
			if err != nil {
				t.Error(err)
				return
			}
			err = p.PublishTrack(upTrackFor(s, who))
			if who == "carol" {
				carolErr = err
			} else {
				daveErr = err
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a relay's publish deadlocked in a gate hook that reads the room")
	}
	if carolErr != nil || daveErr != ErrForbidden {
		t.Errorf("carol (a co-host): %v, want nil; dave: %v, want ErrForbidden", carolErr, daveErr)
	}
}

// closeUnlessDeadlocked closes s, unless the test failed on a deadlock:
// closing would hang on the same lock instead of reporting the failure.
func closeUnlessDeadlocked(t *testing.T, s *SFU) {
	if !t.Failed() {
		s.Close()
	}
}
