package rooms

// Relays (PROTOCOL.md "Relay"): the relay package runs them; here are who
// may start one, from where to where, and where its notifications go.

import (
	"sync/atomic"

	"github.com/relaysfu/relayd/relay"
	"github.com/relaysfu/relayd/sfu"
)

// checkDestinations refuses a destination set that names a room twice or
// the source room itself (ErrInvalid): the params' own faults, answered
// before who may relay is looked at. (Emptiness and the limit are the
// relay's to judge: they come with relay events.)
func checkDestinations(srcRoom string, ts []relay.Target) error {
	seen := map[string]bool{}
	for _, t := range ts {
		if srcRoom != "" && t.Room == srcRoom {
			return errorf(ErrInvalid, "invalid params: %s is the source room", t.Room)
		}
		if seen[t.Room] {
			return errorf(ErrInvalid, "invalid params: room %s given twice", t.Room)
		}
		seen[t.Room] = true
	}
	return nil
}

// relayNotify sends a relay's notifications to its source member (and
// relay.state to the webhooks, as an event of the source room's
// broadcast). A relay.state carries the destinations of the relay, which
// the caller sets in rl once Start has made it (the relay tells its
// notifications with no lock of its own held, so its Info may be read).
func (r *Rooms) relayNotify(m *Member, rl *atomic.Pointer[relay.Relay]) relay.Notify {
	bc := m.p.Room().BroadcastID()
	return func(_ string, params any) {
		switch p := params.(type) {
		case relay.StateParams:
			dests := []relay.DestInfo{}
			if rel := rl.Load(); rel != nil {
				dests = rel.Info().Destinations
			}
			m.deliver(RelayState{StateParams: p, Destinations: dests})
			r.emit("relay.state", m.room, withBroadcast(map[string]any{
				"relay": p.Relay, "state": p.State, "code": p.Code, "error": p.Error, "errorCode": p.ErrorCode,
			}, bc))
		case relay.EventParams:
			m.deliver(RelayEvent{p})
			switch relay.Event(p.Code) {
			case relay.EventJoinedDestChannel, relay.EventPauseSuccess, relay.EventResumeSuccess:
				r.syncRelayPause(p.Relay)
			}
		}
	}
}

// syncRelayPause makes the destinations of relay id (those of this node;
// those of another node are told over the relay's link, and
// relayCopyPaused runs there) follow its pause (PROTOCOL.md 1.1 §8). It
// runs after each pause, resume and destination joined (one joined while
// paused starts paused). Called with no lock held, as a relay tells its
// notifications.
func (r *Rooms) syncRelayPause(id string) {
	rl := r.relays.Get(id)
	if rl == nil {
		return
	}
	info := rl.Info()
	for _, d := range info.Destinations {
		room := r.sfu.Room(d.Room)
		if room == nil || d.Identity == "" {
			continue // failed, or on another node
		}
		for _, p := range relaysOf(room, d.Identity) {
			if from := p.Info().RelayFrom; from == nil || from.Room != info.Source.Room {
				continue
			}
			r.relayCopyPaused(p, info.Paused)
		}
	}
}

// relayCopyPaused makes relay participant p's tracks follow its relay's
// pause: while it is paused, every one of them holds relay_paused (1.1
// subscribers are told "paused"); once it resumes, they are told "active"
// with the next packet. It is also the relay links' OnPaused, for a relay
// whose source is on another node.
func (r *Rooms) relayCopyPaused(p *sfu.Participant, paused bool) {
	if !r.streams.setRelayPaused(p, paused) {
		return
	}
	// Set first, listed after: a track published meanwhile is seen by
	// one of the two (trackChanged, or this list).
	for _, up := range p.PublishedTracks() {
		if r.streams.trackCause(up.ID(), CauseRelayPaused, paused) {
			r.streams.armActive(up)
		}
	}
}

// RelayStart relays the member's published tracks into ts. It returns the
// relay object (state connecting) and what begins it, to run once the
// transport has answered, so that its notifications follow the answer.
func (m *Member) RelayStart(ts []relay.Target) (relay.Info, func(), error) {
	if err := checkDestinations(m.room, ts); err != nil {
		return relay.Info{}, nil, err
	}
	if err := m.inRoom(); err != nil {
		return relay.Info{}, nil, err
	}
	var started atomic.Pointer[relay.Relay]
	rl, err := m.r.relays.Start(m.p, ts, m.r.relayNotify(m, &started))
	if err != nil {
		return relay.Info{}, nil, fromRelay(err)
	}
	started.Store(rl)
	return rl.Info(), rl.Begin, nil
}

// myRelay returns the member's relay (ErrNotFound when none runs).
func (m *Member) myRelay() (*relay.Relay, error) {
	if err := m.inRoom(); err != nil {
		return nil, err
	}
	rl := m.r.relays.Of(m.p)
	if rl == nil {
		return nil, errorf(ErrNotFound, "no relay of yours is running")
	}
	return rl, nil
}

// RelayUpdate replaces the destinations of the member's relay.
func (m *Member) RelayUpdate(ts []relay.Target) (relay.Info, error) {
	if err := checkDestinations(m.room, ts); err != nil {
		return relay.Info{}, err
	}
	rl, err := m.myRelay()
	if err != nil {
		return relay.Info{}, err
	}
	info, err := rl.Update(ts)
	return info, fromRelay(err)
}

// RelayStop stops the member's relay.
func (m *Member) RelayStop() (relay.Info, error) {
	rl, err := m.myRelay()
	if err != nil {
		return relay.Info{}, err
	}
	return rl.Stop(), nil
}

// RelayPause pauses the member's relay.
func (m *Member) RelayPause() (relay.Info, error) {
	rl, err := m.myRelay()
	if err != nil {
		return relay.Info{}, err
	}
	info, err := rl.Pause()
	return info, fromRelay(err)
}

// RelayResume resumes the member's relay.
func (m *Member) RelayResume() (relay.Info, error) {
	rl, err := m.myRelay()
	if err != nil {
		return relay.Info{}, err
	}
	info, err := rl.Resume()
	return info, fromRelay(err)
}

// ListRelays returns every relay of this node, sorted by id.
func (r *Rooms) ListRelays() []relay.Info { return r.relays.List() }

// HasRelay reports whether relay id runs on this node.
func (r *Rooms) HasRelay(id string) bool { return r.relays.Get(id) != nil }

// StartRelay starts a relay for the HTTP API: identity's tracks in room
// into ts (admin targets: each names its identity). The source must be
// connected there; its session gets the relay's notifications.
func (r *Rooms) StartRelay(room, identity string, ts []relay.Target) (relay.Info, error) {
	if err := checkDestinations(room, ts); err != nil {
		return relay.Info{}, err
	}
	rm := r.sfu.Room(room)
	if rm == nil {
		return relay.Info{}, errorf(ErrNotFound, "room %s not found", room)
	}
	m := r.memberOf(rm.Participant(identity))
	if m == nil {
		return relay.Info{}, errorf(ErrNotFound, "%s is not connected to room %s", identity, room)
	}
	var started atomic.Pointer[relay.Relay]
	rl, err := r.relays.Start(m.p, ts, r.relayNotify(m, &started))
	if err != nil {
		return relay.Info{}, fromRelay(err)
	}
	started.Store(rl)
	rl.Begin()
	return rl.Info(), nil
}

// relay returns relay id (ErrNotFound when it does not run here).
func (r *Rooms) relay(id string) (*relay.Relay, error) {
	rl := r.relays.Get(id)
	if rl == nil {
		return nil, errorf(ErrNotFound, "relay %s not found", id)
	}
	return rl, nil
}

// UpdateRelay replaces relay id's destinations for the HTTP API.
func (r *Rooms) UpdateRelay(id string, ts []relay.Target) (relay.Info, error) {
	rl, err := r.relay(id)
	if err != nil {
		return relay.Info{}, err
	}
	info, err := rl.Update(ts)
	return info, fromRelay(err)
}

// StopRelay stops relay id for the HTTP API.
func (r *Rooms) StopRelay(id string) (relay.Info, error) {
	rl, err := r.relay(id)
	if err != nil {
		return relay.Info{}, err
	}
	return rl.Stop(), nil
}
