package rooms

import (
	"sync"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/relay"
)

// Event is one thing a member's client must be told. It is either one of
// the sfu's events (an sfu.Event: the subscriber offer, ICE candidates,
// participants, tracks, room.updated, and SessionEnded, the last one) or
// one of the rooms events below. There is one way for them to reach a
// member: its Sink, in order.
type Event any

// Sink receives a member's events: the transport's session, which turns
// each into a notification. Notify is called without any lock of rooms or
// the sfu held, one event at a time for a member (in the order the events
// were made, for those of one origin: the room, an invitation, the chat of
// a room, a relay); it must not block, and must never drop an event (a
// client too slow to take them is disconnected instead).
type Sink interface {
	Notify(Event)
}

// The rooms events (the sfu's are sfu.Event's types).
type (
	// InvitationUpdated: an invitation of the member changed (it is its
	// host or its invitee, in any room or a user session).
	InvitationUpdated struct{ Invitation invitations.Invitation }
	// RelayState and RelayEvent: the member's relay changed state, or
	// had an event (relay.state, relay.event). A relay.state also carries
	// the relay's destinations (an extension, bugs.md 14), as they stand
	// when it is told: each with its own state and error.
	RelayState struct {
		relay.StateParams
		Destinations []relay.DestInfo
	}
	RelayEvent struct{ relay.EventParams }
	// ChatMessage and ChatDeleted: the room's chat, except what the
	// member did itself (its result says that).
	ChatMessage struct{ Message chat.Message }
	ChatDeleted struct{ ID string }
	// TrackStream: a track the member receives was paused, or is active
	// again (track.stream, 1.1 sessions only: stream.go).
	TrackStream struct {
		TrackID string
		State   string // StreamPaused or StreamActive
		Reason  StreamCause
	}
)

// ordered delivers in the order things were queued, one at a time, and
// without holding its lock while one is delivered: the goroutine that
// finds it idle drains it (it has no goroutine of its own), the others
// leave what they queued to that one. A caller that needs an order across
// queuers (the chat's message ids) queues under its own lock, then drains
// after releasing it.
type ordered struct {
	mu   sync.Mutex
	q    []func() // guarded by mu
	busy bool     // guarded by mu: a goroutine is draining
}

// push queues f.
func (o *ordered) push(f func()) {
	o.mu.Lock()
	o.q = append(o.q, f)
	o.mu.Unlock()
}

// drain runs what is queued, unless another goroutine already does.
// Should a queued function panic, the queue is handed back (not busy), so
// the next drain delivers what is left, and the panic goes on.
func (o *ordered) drain() {
	o.mu.Lock()
	if o.busy {
		o.mu.Unlock()
		return
	}
	o.busy = true
	o.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			o.mu.Lock()
			o.busy = false
			o.mu.Unlock()
		}
	}()
	for f := o.next(); f != nil; f = o.next() {
		f()
	}
	ok = true
}

// next pops the first queued function, or ends the drain (nil) when there
// is none.
func (o *ordered) next() func() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.q) == 0 {
		o.q, o.busy = nil, false
		return nil
	}
	f := o.q[0]
	o.q[0] = nil
	o.q = o.q[1:]
	return f
}
