package relay

// The relay's decisions, as one pure function: decide takes the relay's
// state (a model: values only) and one request, and returns the new state
// and the ordered list of what follows from it: notifications for the
// source (relay.state, relay.event) and actions (join a destination, leave
// one, pause the egress, ...). Relay (relay.go) only applies them: it
// performs the actions, feeds their results back as requests, and sends
// the notifications. PROTOCOL.md's "Exactly:" list is decide's table
// test (decide_test.go).

import (
	"errors"
	"fmt"
	"slices"

	"github.com/relaysfu/relayd/sfu"
)

// model is a relay's state as its decisions see it.
type model struct {
	room    string // the source room: no destination may be it
	limit   int    // most destinations (--max-relay-destinations)
	state   State
	err     Error
	paused  bool
	begun   bool // Begin ran: the source's track changes are followed
	stopped bool
	joins   uint64 // joins started so far; each join is numbered by it
	dests   []destModel
}

// destModel is one destination as the decisions see it.
type destModel struct {
	target   Target
	identity string // the identity the stream takes there (once known)
	state    State
	err      Error
	joined   bool   // a relay participant is in that room: leave it to end
	join     uint64 // the join it is in: a late word about an older one is ignored
	sent     bool   // event 4 was sent for this join
}

func (m *model) find(room string) int {
	return slices.IndexFunc(m.dests, func(d destModel) bool { return d.target.Room == room })
}

// live is the number of destinations the relay holds (a metric).
func (m model) live() int {
	if m.stopped {
		return 0
	}
	return len(m.dests)
}

// A request is what decide is asked: an API call, the result of an action,
// or something that happened in a destination or the source.
type request interface{ isRequest() }

type (
	reqBegin      struct{}
	reqPause      struct{}
	reqResume     struct{}
	reqStop       struct{}
	reqSourceGone struct{} // the source left, or its room ended
	// reqUpdate replaces the destination set. ids[i] is the identity
	// targets[i] takes (its token's sub, or its Identity); ok false: its
	// token does not verify.
	reqUpdate struct {
		targets []Target
		ids     []resolved
	}
	// reqJoined is a join's outcome: fail ErrNone, or why it failed.
	reqJoined struct {
		room     string
		join     uint64
		identity string
		fail     Error
	}
	// reqDestEnded: that destination's room ended, or the relay
	// participant was removed there.
	reqDestEnded struct {
		room string
		join uint64
	}
	// reqDestLost: the link to the node of that destination died.
	reqDestLost struct {
		room string
		join uint64
	}
	// reqFirstPacket: the first packet was written into that destination.
	reqFirstPacket struct {
		room string
		join uint64
	}
	// reqTrack: the source published (or unpublished) a track.
	reqTrack struct {
		up        *sfu.UpTrack
		published bool
	}
	// reqSettle recomputes the relay's state from its destinations'.
	reqSettle struct{}
)

// resolved is a target's identity, when its token verifies.
type resolved struct {
	identity string
	ok       bool
}

func (reqBegin) isRequest()       {}
func (reqPause) isRequest()       {}
func (reqResume) isRequest()      {}
func (reqStop) isRequest()        {}
func (reqSourceGone) isRequest()  {}
func (reqUpdate) isRequest()      {}
func (reqJoined) isRequest()      {}
func (reqDestEnded) isRequest()   {}
func (reqDestLost) isRequest()    {}
func (reqFirstPacket) isRequest() {}
func (reqTrack) isRequest()       {}
func (reqSettle) isRequest()      {}

// An effect is what follows from a decision, in order: a notification or
// an action.
type effect interface{ isEffect() }

type (
	// noteState is a relay.state notification.
	noteState struct {
		state State
		err   Error
	}
	// noteEvent is a relay.event notification; room is "" for the relay's
	// own events.
	noteEvent struct {
		event Event
		room  string
	}
	// doJoin joins a destination (the gate, the relay participant, the
	// source's tracks); its outcome is a reqJoined with the same join.
	doJoin struct {
		target Target
		join   uint64
	}
	// doLeave takes the relay out of a destination: its tracks, then its
	// participant.
	doLeave struct{ room string }
	// doTrack adds (or removes) a source track in a destination.
	doTrack struct {
		room      string
		up        *sfu.UpTrack
		published bool
	}
	// doPause stops the packets to every destination; doResume restarts
	// them at a keyframe, which it requests.
	doPause  struct{}
	doResume struct{}
	// doEnd: the relay is over (its loop stops, the Manager forgets it).
	doEnd struct{}
	// then: decide req next, once the effects before it are done.
	then struct{ req request }
)

func (noteState) isEffect() {}
func (noteEvent) isEffect() {}
func (doJoin) isEffect()    {}
func (doLeave) isEffect()   {}
func (doTrack) isEffect()   {}
func (doPause) isEffect()   {}
func (doResume) isEffect()  {}
func (doEnd) isEffect()     {}
func (then) isEffect()      {}

// checkTargets validates a destination set for a relay out of srcRoom.
func checkTargets(srcRoom string, limit int, ts []Target) error {
	if len(ts) == 0 {
		return fmt.Errorf("%w: destinations must not be empty", ErrInvalid)
	}
	if len(ts) > limit {
		return fmt.Errorf("%w: at most %d destinations", ErrTooMany, limit)
	}
	seen := map[string]bool{}
	for _, t := range ts {
		if t.Room == srcRoom {
			return fmt.Errorf("%w: %s is the source room", ErrInvalid, t.Room)
		}
		if seen[t.Room] {
			return fmt.Errorf("%w: room %s given twice", ErrInvalid, t.Room)
		}
		seen[t.Room] = true
	}
	return nil
}

// decide returns the relay's next state and what follows from req, in
// order. An error is the API call's answer (the effects still happen: an
// update refused for the limit still sends event 8). It never changes m.
func decide(m model, req request) (model, []effect, error) {
	m.dests = slices.Clone(m.dests)
	var out []effect
	say := func(e ...effect) { out = append(out, e...) }

	switch q := req.(type) {
	case reqBegin:
		if m.begun || m.stopped {
			return m, nil, nil
		}
		m.begun = true
		// The first connecting is a notification too, though Start's
		// answer already said so.
		say(noteState{StateConnecting, ErrNone}, noteEvent{EventJoinedSrcChannel, ""})
		for i := range m.dests {
			say(m.startJoin(i))
		}
		say(then{reqSettle{}})

	case reqJoined:
		i := m.find(q.room)
		if i < 0 || m.dests[i].join != q.join || m.dests[i].state != StateConnecting {
			return m, nil, nil
		}
		d := &m.dests[i]
		d.identity = q.identity
		if q.fail != ErrNone {
			d.state, d.err = StateFailure, q.fail
			break
		}
		d.state, d.err, d.joined = StateRunning, ErrNone, true
		say(noteEvent{EventJoinedDestChannel, q.room})

	case reqSettle:
		if !m.stopped {
			out = m.setState(out, m.recompute())
		}

	case reqUpdate:
		if m.stopped {
			return m, nil, ErrNotFound
		}
		if len(q.targets) == 0 {
			return m, []effect{noteEvent{EventUpdateDestChannelIsNil, ""}}, fmt.Errorf("%w: destinations must not be empty", ErrInvalid)
		}
		if err := checkTargets(m.room, m.limit, q.targets); err != nil {
			if errors.Is(err, ErrTooMany) {
				say(noteEvent{EventUpdateDestChannelRefused, ""})
			}
			return m, out, err
		}
		if m.sameSet(q.targets, q.ids) {
			return m, []effect{noteEvent{EventUpdateDestChannelNotChange, ""}}, nil
		}
		out = m.update(out, q.targets, q.ids)

	case reqPause:
		if m.stopped {
			return m, nil, ErrNotFound
		}
		if m.paused {
			return m, []effect{noteEvent{EventPauseFailed, ""}}, fmt.Errorf("%w: already paused", ErrConflict)
		}
		m.paused = true
		say(doPause{}, noteEvent{EventPauseSuccess, ""})

	case reqResume:
		if m.stopped {
			return m, nil, ErrNotFound
		}
		if !m.paused {
			return m, []effect{noteEvent{EventResumeFailed, ""}}, fmt.Errorf("%w: not paused", ErrConflict)
		}
		m.paused = false
		say(doResume{}, noteEvent{EventResumeSuccess, ""})

	case reqStop:
		out = m.stop(out)

	case reqSourceGone:
		if !m.stopped {
			say(noteEvent{EventDisconnect, ""})
			out = m.stop(out)
		}

	case reqDestEnded:
		i := m.find(q.room)
		if m.stopped || i < 0 || !m.dests[i].joined || m.dests[i].join != q.join {
			return m, nil, nil
		}
		// Dropped with an event; with no destination left, the relay
		// is over.
		m.dests = slices.Delete(m.dests, i, i+1)
		say(doLeave{q.room}, noteEvent{EventDisconnect, q.room})
		if len(m.dests) == 0 {
			out = m.stop(out)
			break
		}
		say(then{reqSettle{}})

	case reqDestLost:
		i := m.find(q.room)
		if m.stopped || i < 0 || !m.dests[i].joined || m.dests[i].join != q.join {
			return m, nil, nil
		}
		// As when its room ends, event 0 names the room; but the
		// destination stays listed, failed with server_connection_lost,
		// and an update may join it again.
		d := &m.dests[i]
		d.joined, d.state, d.err = false, StateFailure, ErrServerConnectionLost
		say(doLeave{q.room}, noteEvent{EventDisconnect, q.room}, then{reqSettle{}})

	case reqFirstPacket:
		i := m.find(q.room)
		if m.stopped || i < 0 || !m.dests[i].joined || m.dests[i].join != q.join || m.dests[i].sent {
			return m, nil, nil
		}
		m.dests[i].sent = true
		say(noteEvent{EventSentToDestChannel, q.room})

	case reqTrack:
		if !m.begun || m.stopped {
			return m, nil, nil
		}
		for _, d := range m.dests {
			if d.joined {
				say(doTrack{d.target.Room, q.up, q.published})
			}
		}
	}
	return m, out, nil
}

// startJoin makes dests[i] connecting in a new join.
func (m *model) startJoin(i int) effect {
	m.joins++
	d := &m.dests[i]
	d.state, d.err, d.join, d.sent, d.joined = StateConnecting, ErrNone, m.joins, false, false
	return doJoin{target: d.target, join: m.joins}
}

// recompute: running while any destination runs; failure, with the first
// destination's error, when none does.
func (m *model) recompute() noteState {
	first := ErrNone
	for _, d := range m.dests {
		if d.state == StateRunning {
			return noteState{StateRunning, ErrNone}
		}
		if first == ErrNone {
			first = d.err
		}
	}
	if first == ErrNone {
		first = ErrFailedJoinDest
	}
	return noteState{StateFailure, first}
}

// setState changes the relay's state; a change is a notification.
func (m *model) setState(out []effect, s noteState) []effect {
	if s.state == m.state && s.err == m.err {
		return out
	}
	m.state, m.err = s.state, s.err
	return append(out, s)
}

// stop leaves every destination the relay is in: state idle, the end.
func (m *model) stop(out []effect) []effect {
	if m.stopped {
		return out
	}
	for i := range m.dests {
		d := &m.dests[i]
		if d.joined {
			out = append(out, doLeave{d.target.Room})
			d.joined, d.state, d.err = false, StateIdle, ErrNone
		}
	}
	out = m.setState(out, noteState{StateIdle, ErrNone})
	m.stopped = true
	return append(out, doEnd{})
}

// sameSet reports whether targets name the rooms and identities the relay
// already has (a fresh token for the same identity is the same destination;
// one that fixes a failed destination is not). A token that does not
// verify names no identity: it is the same destination only as the very
// token that destination already failed with (sent again, it fails again).
func (m *model) sameSet(targets []Target, ids []resolved) bool {
	if len(targets) != len(m.dests) || len(ids) != len(targets) {
		return false
	}
	type key struct{ room, identity string }
	have := map[key]bool{}
	failedToken := map[string]string{} // room -> the token it failed with
	for _, d := range m.dests {
		have[key{d.target.Room, d.identity}] = true
		if d.identity == "" && !d.joined {
			failedToken[d.target.Room] = d.target.Token
		}
	}
	for i, t := range targets {
		if ids[i].ok && have[key{t.Room, ids[i].identity}] {
			continue
		}
		if tok, ok := failedToken[t.Room]; ids[i].ok || !ok || tok != t.Token {
			return false
		}
	}
	return true
}

// update replaces the destination set: destinations no longer wanted are
// left, new ones joined (events 3, later 4), failed ones joined again with
// their new target, and a running one whose target names another identity
// is left and joined as that one; then event 7 and the state. The pause is
// kept.
func (m *model) update(out []effect, targets []Target, ids []resolved) []effect {
	wanted := map[string]bool{}
	for _, t := range targets {
		wanted[t.Room] = true
	}
	old := map[string]destModel{}
	for _, d := range m.dests {
		old[d.target.Room] = d
		if !wanted[d.target.Room] && d.joined {
			out = append(out, doLeave{d.target.Room})
		}
	}
	next := make([]destModel, 0, len(targets))
	var joins []int
	for i, t := range targets {
		d, ok := old[t.Room]
		switch {
		case !ok:
			d = destModel{target: t, identity: t.Identity}
			joins = append(joins, len(next))
		case d.state != StateRunning || (i < len(ids) && ids[i].ok && ids[i].identity != d.identity):
			if d.joined {
				out = append(out, doLeave{t.Room})
			}
			d.target, d.identity = t, t.Identity
			joins = append(joins, len(next))
		}
		next = append(next, d)
	}
	m.dests = next
	for _, i := range joins {
		out = append(out, m.startJoin(i))
	}
	return append(out, noteEvent{EventUpdateDestChannel, ""}, then{reqSettle{}})
}
