package relay

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaysfu/relayd/sfu"
)

// Info is the contract's relay object.
type Info struct {
	ID           string     `json:"id"`
	Source       SourceInfo `json:"source"`
	State        string     `json:"state"`
	Code         int        `json:"code"`
	Error        string     `json:"error"`
	ErrorCode    int        `json:"errorCode"`
	Paused       bool       `json:"paused"`
	Destinations []DestInfo `json:"destinations"`
}

// SourceInfo names the relayed participant.
type SourceInfo struct {
	Room     string `json:"room"`
	Identity string `json:"identity"`
}

// DestInfo is one destination of a relay object.
type DestInfo struct {
	Room      string `json:"room"`
	Identity  string `json:"identity"`
	State     string `json:"state"`
	Code      int    `json:"code"`
	Error     string `json:"error"`
	ErrorCode int    `json:"errorCode"`
}

// StateParams are the params of a relay.state notification.
type StateParams struct {
	Relay     string `json:"relay"`
	State     string `json:"state"`
	Code      int    `json:"code"`
	Error     string `json:"error"`
	ErrorCode int    `json:"errorCode"`
}

// EventParams are the params of a relay.event notification.
type EventParams struct {
	Relay string `json:"relay"`
	Event string `json:"event"`
	Code  int    `json:"code"`
	Room  string `json:"room,omitempty"`
}

// Notify sends a notification to the source's session. It must not block.
type Notify func(method string, params any)

// Target is one requested destination: a room and either a token for it
// (signaling: its sub is the identity the stream takes there) or, from the
// admin HTTP API, the identity itself.
type Target struct {
	Room     string
	Token    string
	Identity string
}

// destination is one room a relay sends into. Guarded by Relay.mu.
type destination struct {
	target   Target
	identity string
	state    State
	err      Error
	p        *sfu.Participant         // the relay participant in that room (local)
	remote   RemoteDest               // the relay participant in that room (another node)
	joins    uint64                   // remote joins so far: tells a stale ended() apart
	egress   map[*sfu.UpTrack]*egress // by source track
	since    time.Time                // join started: for the start latency
	sent     bool                     // event 4 sent
	sink     *destSink
}

// Relay relays one participant's tracks into its destinations.
//
// Locking: mu serialises every change (API calls and the loop's events).
// The egress sinks run in the source tracks' reader goroutines and never
// take mu: they post to events.
//
// Goroutines: loop (started by Begin, stopped by stop).
type Relay struct {
	id     string
	m      *Manager
	src    *sfu.Participant
	room   string
	notify Notify
	log    *slog.Logger

	mu      sync.Mutex
	state   State
	err     Error
	paused  bool
	dests   []*destination
	stopped bool
	begun   bool // Begin has run: track changes are followed
	started time.Time

	events chan any
	done   chan struct{}
	wg     sync.WaitGroup
}

// loop events
type (
	firstPacket struct{ d *destination }
	// destEnded: the room ended or the relay participant was removed
	// there. join is the remote join it concerns (0: a local one).
	destEnded struct {
		d    *destination
		join uint64
	}
	// destLost: the link to a remote destination's node died.
	destLost struct {
		d    *destination
		join uint64
	}
	trackChange struct {
		up        *sfu.UpTrack
		published bool
	}
)

// post hands an event to the loop without blocking (the callers are the
// source's reader goroutines and rooms holding their locks). The buffer
// holds far more than the few events a relay sees at once.
func (r *Relay) post(ev any) {
	select {
	case r.events <- ev:
	default:
		r.log.Warn("relay event dropped", "event", ev)
	}
}

// ID returns the relay id.
func (r *Relay) ID() string { return r.id }

// Info returns the relay object.
func (r *Relay) Info() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.infoLocked()
}

func (r *Relay) infoLocked() Info {
	info := Info{
		ID: r.id, Source: SourceInfo{Room: r.room, Identity: r.src.Identity()},
		State: r.state.String(), Code: int(r.state), Error: r.err.String(), ErrorCode: int(r.err),
		Paused: r.paused, Destinations: []DestInfo{},
	}
	for _, d := range r.dests {
		info.Destinations = append(info.Destinations, DestInfo{
			Room: d.target.Room, Identity: d.identity, State: d.state.String(), Code: int(d.state),
			Error: d.err.String(), ErrorCode: int(d.err),
		})
	}
	return info
}

func (r *Relay) event(ev Event, room string) {
	r.notify("relay.event", EventParams{Relay: r.id, Event: ev.String(), Code: int(ev), Room: room})
}

// setStateLocked changes the relay's state and tells the source.
func (r *Relay) setStateLocked(s State, e Error) {
	if s == r.state && e == r.err {
		return
	}
	g := r.m.cfg.Metrics.Relays
	g.WithLabelValues(r.state.String()).Dec()
	if s != StateIdle {
		g.WithLabelValues(s.String()).Inc()
	}
	r.state, r.err = s, e
	r.notify("relay.state", StateParams{Relay: r.id, State: s.String(), Code: int(s), Error: e.String(), ErrorCode: int(e)})
}

// recomputeLocked: running while any destination runs; failure, with the
// first destination's error, when none does.
func (r *Relay) recomputeLocked() {
	var first Error = ErrNone
	for _, d := range r.dests {
		if d.state == StateRunning {
			r.setStateLocked(StateRunning, ErrNone)
			return
		}
		if first == ErrNone {
			first = d.err
		}
	}
	if first == ErrNone {
		first = ErrFailedJoinDest
	}
	r.setStateLocked(StateFailure, first)
}

// Begin starts the relay: the first relay.state (connecting), event 2, the
// destination joins (event 3 each), then running or failure. The caller
// sends its answer to relay.start first, so the notifications follow it.
func (r *Relay) Begin() {
	r.mu.Lock()
	r.notify("relay.state", StateParams{Relay: r.id, State: StateConnecting.String(), Code: int(StateConnecting), Error: ErrNone.String()})
	r.begun = true // the source's track changes reach the loop from now on (Manager.TrackChanged)
	r.event(EventJoinedSrcChannel, "")
	for _, d := range r.dests {
		r.joinLocked(d)
	}
	r.recomputeLocked()
	r.mu.Unlock()
	r.wg.Add(1)
	go r.loop()
}

func (r *Relay) loop() {
	defer r.wg.Done()
	for {
		select {
		case ev := <-r.events:
			r.handle(ev)
		case <-r.done:
			return
		}
	}
}

func (r *Relay) handle(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	switch e := ev.(type) {
	case firstPacket:
		if !e.d.sent && r.has(e.d) {
			e.d.sent = true
			r.m.cfg.Metrics.RelayStartLatency.Observe(time.Since(e.d.since).Seconds())
			r.event(EventSentToDestChannel, e.d.target.Room)
		}
	case destEnded:
		if !r.has(e.d) || (e.join != 0 && (e.d.remote == nil || e.d.joins != e.join)) {
			return
		}
		r.leaveLocked(e.d)
		r.removeLocked(e.d)
		r.event(EventDisconnect, e.d.target.Room)
		if len(r.dests) == 0 {
			r.stopLocked()
			return
		}
		r.recomputeLocked()
	case destLost:
		d := e.d
		if !r.has(d) || d.remote == nil || d.joins != e.join {
			return
		}
		r.log.Warn("relay destination's node lost", "dest", d.target.Room)
		r.leaveLocked(d) // removes the egress sinks; the link is gone already
		d.state, d.err = StateFailure, ErrServerConnectionLost
		// As when a destination room ends: event 0 (disconnect) names the
		// room; the destination stays listed, failure with code 8, and
		// relay.state follows when no destination runs any more.
		r.event(EventDisconnect, d.target.Room)
		r.recomputeLocked()
	case trackChange:
		for _, d := range r.dests {
			if d.state != StateRunning {
				continue
			}
			if e.published {
				r.addTrackLocked(d, e.up)
			} else {
				r.removeTrackLocked(d, e.up)
			}
		}
	}
}

func (r *Relay) has(d *destination) bool {
	for _, x := range r.dests {
		if x == d {
			return true
		}
	}
	return false
}

func (r *Relay) removeLocked(d *destination) {
	for i, x := range r.dests {
		if x == d {
			r.dests = append(r.dests[:i:i], r.dests[i+1:]...)
			r.m.cfg.Metrics.RelayDestinations.Dec()
			return
		}
	}
}

// joinLocked joins one destination: gate, relay participant, tracks.
func (r *Relay) joinLocked(d *destination) {
	d.since = time.Now()
	identity, fail := r.m.cfg.Authorize(d.target)
	if fail != ErrNone {
		d.state, d.err = StateFailure, fail
		return
	}
	d.identity = identity
	room := r.m.cfg.SFU.Room(d.target.Room)
	if rm := r.m.cfg.Remote; room == nil && rm != nil && rm.Has(d.target.Room) {
		r.joinRemoteLocked(d, rm)
		return
	}
	if room == nil || !room.MayPublishAs(identity, sfu.RoleRelay) {
		d.state, d.err = StateFailure, ErrFailedJoinDest
		return
	}
	d.sink = &destSink{r: r, d: d}
	p, _, err := room.Join(sfu.ParticipantParams{
		Identity: identity, Name: r.src.Name(), Role: sfu.RoleRelay, RelayFrom: r.room, Events: d.sink,
	})
	if err != nil {
		d.state, d.err = StateFailure, ErrFailedJoinDest
		return
	}
	d.p, d.state, d.err = p, StateRunning, ErrNone
	d.egress = map[*sfu.UpTrack]*egress{}
	r.event(EventJoinedDestChannel, d.target.Room)
	for _, up := range r.src.PublishedTracks() {
		r.addTrackLocked(d, up)
	}
}

// joinRemoteLocked joins a destination on another node: the gate is
// checked there; event 3 once its relay participant is in.
func (r *Relay) joinRemoteLocked(d *destination, rm Remote) {
	d.joins++
	join := d.joins
	ended := func(e Error) {
		if e == ErrNone {
			r.post(destEnded{d, join})
			return
		}
		r.post(destLost{d, join})
	}
	rd, fail := rm.Join(d.target.Room, d.identity, r.src.Name(), r.room, ended)
	if fail != ErrNone {
		d.state, d.err = StateFailure, fail
		return
	}
	d.remote, d.state, d.err = rd, StateRunning, ErrNone
	d.egress = map[*sfu.UpTrack]*egress{}
	d.sent = false // a join after a lost link gets its event 4 again
	r.event(EventJoinedDestChannel, d.target.Room)
	for _, up := range r.src.PublishedTracks() {
		r.addTrackLocked(d, up)
	}
}

// publish and unpublish put a relayed track into d's room, here or on
// another node.
func (d *destination) publish(dst *sfu.UpTrack) error {
	if d.remote != nil {
		return d.remote.Publish(dst)
	}
	return d.p.PublishTrack(dst)
}

func (d *destination) unpublish(dst *sfu.UpTrack) {
	if d.remote != nil {
		d.remote.Unpublish(dst)
		return
	}
	d.p.UnpublishTrack(dst)
}

// addTrackLocked publishes a relayed copy of up in d, fed by an egress.
func (r *Relay) addTrackLocked(d *destination, up *sfu.UpTrack) {
	if up.Relayed() || d.egress[up] != nil {
		return // a relayed track is never relayed again: no loops
	}
	dst := sfu.NewRelayedUpTrack(up, sfu.UpTrackParams{
		ID: sfu.NewID("TR_"), Participant: d.identity, Logger: r.log, Metrics: r.m.cfg.Metrics,
	})
	if err := d.publish(dst); err != nil {
		r.log.Info("relay track refused in destination", "room", d.target.Room, "err", err)
		return
	}
	e := &egress{
		r: r, d: d, dst: dst, video: up.Kind().String() == "video",
		packets: r.m.cfg.Metrics.RelayPackets,
	}
	e.paused.Store(r.paused)
	if !up.AddSink(e) {
		d.unpublish(dst) // the source track ended meanwhile
		return
	}
	d.egress[up] = e
	up.RequestKeyframe()
}

func (r *Relay) removeTrackLocked(d *destination, up *sfu.UpTrack) {
	e := d.egress[up]
	if e == nil {
		return
	}
	delete(d.egress, up)
	up.RemoveSink(e)
	d.unpublish(e.dst)
}

// leaveLocked takes the relay out of d: track.unpublished for each track,
// then participant.left, in that room.
func (r *Relay) leaveLocked(d *destination) {
	if d.p == nil && d.remote == nil {
		return
	}
	for up := range d.egress {
		r.removeTrackLocked(d, up)
	}
	if d.remote != nil {
		d.remote.Leave()
	} else {
		d.p.Leave()
	}
	d.p, d.remote = nil, nil
	d.state, d.err = StateIdle, ErrNone
}

// stopLocked leaves every destination and ends the relay: state idle.
func (r *Relay) stopLocked() {
	if r.stopped {
		return
	}
	for _, d := range r.dests {
		r.leaveLocked(d)
	}
	r.m.cfg.Metrics.RelayDestinations.Sub(float64(len(r.dests)))
	r.setStateLocked(StateIdle, ErrNone)
	r.stopped = true
	close(r.done)
	r.m.forget(r)
}

// egress is the relay's Sink on a source track: it feeds the relayed up
// track of one destination from the source's reader goroutine.
type egress struct {
	r       *Relay
	d       *destination
	dst     *sfu.UpTrack
	video   bool
	paused  atomic.Bool
	resync  atomic.Bool // set on resume: restart at a keyframe, no gap
	sent    atomic.Bool
	pkt     sfu.Packet // reader-owned copy for the resync packet
	packets prometheus.Counter
}

// WriteRTP implements sfu.Sink.
func (e *egress) WriteRTP(p *sfu.Packet) {
	if e.paused.Load() {
		return
	}
	if e.resync.Load() {
		if e.video && !p.Keyframe {
			return
		}
		e.resync.Store(false)
		e.pkt = *p
		e.pkt.Discontinuity = true
		p = &e.pkt
	}
	e.dst.Forward(p)
	e.packets.Inc()
	if !e.sent.Load() {
		e.sent.Store(true)
		e.r.post(firstPacket{e.d})
	}
}

// Close implements sfu.Sink: the source track ended; the relay's track
// observer unpublishes its copies.
func (e *egress) Close() {}

// destSink receives the relay participant's events in a destination: the
// room ending (or the relay being replaced there) drops the destination.
type destSink struct {
	r *Relay
	d *destination
}

func (s *destSink) Notify(ev sfu.Event) {
	if _, ok := ev.(sfu.SessionEnded); ok {
		s.r.post(destEnded{d: s.d})
	}
}

var (
	_ sfu.Sink      = (*egress)(nil)
	_ sfu.EventSink = (*destSink)(nil)
)
