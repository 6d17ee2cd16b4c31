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

// Notify sends a notification to the source's session. The relay calls it
// with no lock held, one notification at a time, in order; it should not
// block for long (the next notifications wait for it).
type Notify func(method string, params any)

// Target is one requested destination: a room and either a token for it
// (signaling: its sub is the identity the stream takes there) or, from the
// admin HTTP API, the identity itself.
type Target struct {
	Room     string
	Token    string
	Identity string
}

// Relay relays one participant's tracks into its destinations.
//
// Its decisions are decide's (decide.go); a Relay applies them. Every
// change is one step under mu: decide, then the effects in order (the
// actions performed, the requests they lead to decided at once), then the
// notifications sent, in order, after mu is released.
//
// Locking: mu guards model and live. A step's notifications go, still
// under mu, into the outbox (a mailbox: unbounded, in order), which is
// sent outside mu by whoever finds no one sending; so Notify runs with no
// relay lock held, and may even call the relay. The egress sinks run in
// the source tracks' reader goroutines and never take mu: they post to
// the queue, as do the destinations' events and the source's track
// changes.
//
// Goroutines: loop (started by Start, ends with doEnd).
type Relay struct {
	id     string
	m      *Manager
	src    *sfu.Participant
	room   string
	notify Notify
	log    *slog.Logger

	mu    sync.Mutex
	model model
	live  map[string]*destination // joined destinations, by room

	omu      sync.Mutex
	outbox   []effect
	draining bool

	// queue is unbounded: a state change is never dropped. Each source
	// track posts at most one first packet per join, each destination
	// one end; the rest are API calls' pace.
	qmu   sync.Mutex
	queue []request
	wake  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup
}

// destination is what a joined destination holds: the relay participant
// there (local, or on another node) and the egress of each source track.
type destination struct {
	room     string
	join     uint64
	identity string                   // the stream's identity there
	p        *sfu.Participant         // the relay participant (local)
	remote   RemoteDest               // the relay participant (another node)
	egress   map[*sfu.UpTrack]*egress // by source track
	since    time.Time                // the join started: for the start latency
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
	m := r.model
	info := Info{
		ID: r.id, Source: SourceInfo{Room: r.room, Identity: r.src.Identity()},
		State: m.state.String(), Code: int(m.state), Error: m.err.String(), ErrorCode: int(m.err),
		Paused: m.paused, Destinations: []DestInfo{},
	}
	for _, d := range m.dests {
		info.Destinations = append(info.Destinations, DestInfo{
			Room: d.target.Room, Identity: d.identity, State: d.state.String(), Code: int(d.state),
			Error: d.err.String(), ErrorCode: int(d.err),
		})
	}
	return info
}

// run decides req, then goes through its effects in order: a notification
// goes to note, an action to exec, and the request an action leads to (a
// join's outcome; then's) is run at once, depth first. It returns the
// final model.
func run(m model, req request, exec func(model, effect) request, note func(effect)) (model, error) {
	m, effs, err := decide(m, req)
	for _, e := range effs {
		var next request
		switch e := e.(type) {
		case noteState, noteEvent:
			note(e)
		case then:
			next = e.req
		default:
			next = exec(m, e)
		}
		if next != nil {
			m, _ = run(m, next, exec, note)
		}
	}
	return m, err
}

// step applies one request: see Relay.
func (r *Relay) step(req request) (Info, error) {
	r.mu.Lock()
	var notes []effect
	before := r.model
	m, err := run(r.model, req, r.exec, func(e effect) {
		if ev, ok := e.(noteEvent); ok && ev.event == EventSentToDestChannel {
			if d := r.live[ev.room]; d != nil {
				r.m.cfg.Metrics.RelayStartLatency.Observe(time.Since(d.since).Seconds())
			}
		}
		notes = append(notes, e)
	})
	r.model = m
	r.account(before, m)
	info := r.infoLocked()
	r.omu.Lock()
	r.outbox = append(r.outbox, notes...)
	r.omu.Unlock()
	r.mu.Unlock()
	r.drain()
	return info, err
}

// drain sends the outbox, unless another goroutine is at it (it then
// sends what was added, too).
func (r *Relay) drain() {
	r.omu.Lock()
	if r.draining {
		r.omu.Unlock()
		return
	}
	r.draining = true
	for len(r.outbox) > 0 {
		batch := r.outbox
		r.outbox = nil
		r.omu.Unlock()
		for _, n := range batch {
			switch n := n.(type) {
			case noteState:
				r.notify("relay.state", StateParams{Relay: r.id, State: n.state.String(), Code: int(n.state), Error: n.err.String(), ErrorCode: int(n.err)})
			case noteEvent:
				r.notify("relay.event", EventParams{Relay: r.id, Event: n.event.String(), Code: int(n.event), Room: n.room})
			}
		}
		r.omu.Lock()
	}
	r.draining = false
	r.omu.Unlock()
}

// account keeps the relay gauges: relays by state, destinations held.
func (r *Relay) account(before, after model) {
	if before.state != after.state {
		g := r.m.cfg.Metrics.Relays
		if before.state != StateIdle {
			g.WithLabelValues(before.state.String()).Dec()
		}
		if after.state != StateIdle {
			g.WithLabelValues(after.state.String()).Inc()
		}
	}
	if n := after.live() - before.live(); n != 0 {
		r.m.cfg.Metrics.RelayDestinations.Add(float64(n))
	}
}

// exec performs one action (under mu); m is the model as decided.
func (r *Relay) exec(m model, e effect) request {
	switch e := e.(type) {
	case doJoin:
		return r.join(m, e)
	case doLeave:
		r.leave(e.room)
	case doTrack:
		if d := r.live[e.room]; d != nil {
			if e.published {
				r.addTrack(d, e.up, m.paused)
			} else {
				r.removeTrack(d, e.up)
			}
		}
	case doPause:
		for _, d := range r.live {
			for _, eg := range d.egress {
				eg.paused.Store(true)
			}
			if d.remote != nil {
				d.remote.SetPaused(true)
			}
		}
	case doResume:
		for _, d := range r.live {
			if d.remote != nil {
				d.remote.SetPaused(false)
			}
			for up, eg := range d.egress {
				eg.resync.Store(^uint32(0))
				eg.paused.Store(false)
				up.RequestKeyframe()
			}
		}
	case doEnd:
		close(r.done)
		r.m.forget(r)
	}
	return nil
}

// post hands a request to the loop; it never blocks and never drops.
func (r *Relay) post(q request) {
	r.qmu.Lock()
	r.queue = append(r.queue, q)
	r.qmu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Relay) loop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case <-r.wake:
			r.qmu.Lock()
			q := r.queue
			r.queue = nil
			r.qmu.Unlock()
			for _, req := range q {
				_, _ = r.step(req)
			}
		}
	}
}

// join joins one destination: the gate, the relay participant, the
// source's tracks. Its outcome is decided next.
func (r *Relay) join(m model, j doJoin) request {
	t := j.target
	res := reqJoined{room: t.Room, join: j.join, identity: t.Identity}
	since := time.Now()
	identity, fail := r.m.cfg.Authorize(t)
	if fail != ErrNone {
		res.fail = fail
		return res
	}
	res.identity = identity
	d := &destination{room: t.Room, join: j.join, identity: identity, egress: map[*sfu.UpTrack]*egress{}, since: since}
	room := r.m.cfg.SFU.Room(t.Room)
	if rm := r.m.cfg.Remote; room == nil && rm != nil && rm.Has(t.Room) {
		// On another node: the gate is checked there; a lost link is
		// not the room ending.
		ended := func(e Error) {
			if e == ErrNone {
				r.post(reqDestEnded{t.Room, j.join})
				return
			}
			r.post(reqDestLost{t.Room, j.join})
		}
		if d.remote, res.fail = rm.Join(t.Room, identity, r.src.Name(), r.room, ended); res.fail != ErrNone {
			return res
		}
		if m.paused {
			d.remote.SetPaused(true) // before its tracks: they start paused
		}
	} else {
		if room == nil || !room.MayPublishAs(identity, sfu.RoleRelay) {
			res.fail = ErrFailedJoinDest
			return res
		}
		p, _, err := room.Join(sfu.ParticipantParams{
			Identity: identity, Name: r.src.Name(), Role: sfu.RoleRelay, RelayFrom: r.room,
			Events: &destSink{r: r, room: t.Room, join: j.join},
		})
		if err != nil {
			res.fail = ErrFailedJoinDest
			return res
		}
		d.p = p
	}
	r.live[t.Room] = d
	for _, up := range r.src.PublishedTracks() {
		r.addTrack(d, up, m.paused)
	}
	return res
}

// leave takes the relay out of a destination: track.unpublished for each
// track, then participant.left, in that room.
func (r *Relay) leave(room string) {
	d := r.live[room]
	if d == nil {
		return
	}
	delete(r.live, room)
	for up := range d.egress {
		r.removeTrack(d, up)
	}
	if d.remote != nil {
		d.remote.Leave()
	} else {
		d.p.Leave()
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

// addTrack publishes a relayed copy of up in d, fed by an egress.
func (r *Relay) addTrack(d *destination, up *sfu.UpTrack, paused bool) {
	if up.Relayed() || d.egress[up] != nil {
		return // a relayed track is never relayed again: no loops
	}
	dst := sfu.NewRelayedUpTrack(up, sfu.UpTrackParams{
		ID: sfu.NewID("TR_"), Participant: d.identity, Logger: r.log, Metrics: r.m.cfg.Metrics,
	})
	if err := d.publish(dst); err != nil {
		r.log.Info("relay track refused in destination", "dest", d.room, "err", err)
		return
	}
	e := &egress{
		r: r, room: d.room, join: d.join, dst: dst, video: up.Kind().String() == "video",
		packets: r.m.cfg.Metrics.RelayPackets,
	}
	e.paused.Store(paused)
	if !up.AddSink(e) {
		d.unpublish(dst) // the source track ended meanwhile
		return
	}
	d.egress[up] = e
	up.RequestKeyframe()
}

func (r *Relay) removeTrack(d *destination, up *sfu.UpTrack) {
	e := d.egress[up]
	if e == nil {
		return
	}
	delete(d.egress, up)
	up.RemoveSink(e)
	d.unpublish(e.dst)
}

// egress is the relay's Sink on a source track: it feeds the relayed up
// track of one destination from the source's reader goroutine.
type egress struct {
	r       *Relay
	room    string
	join    uint64
	dst     *sfu.UpTrack
	video   bool
	paused  atomic.Bool
	resync  atomic.Uint32 // set on resume, a bit per layer: restart each at a keyframe, no gap
	sent    atomic.Bool
	pkt     [sfu.MaxLayers]sfu.Packet // each layer reader's copy for its resync packet
	packets prometheus.Counter
}

// WriteRTP implements sfu.Sink.
func (e *egress) WriteRTP(p *sfu.Packet) {
	if e.paused.Load() {
		return
	}
	if bit := uint32(1) << p.Layer; e.resync.Load()&bit != 0 {
		if e.video && !p.Keyframe {
			return
		}
		e.resync.And(^bit)
		e.pkt[p.Layer%sfu.MaxLayers] = *p
		pk := &e.pkt[p.Layer%sfu.MaxLayers]
		pk.Discontinuity = true
		p = pk
	}
	e.dst.Forward(p)
	e.packets.Inc()
	if !e.sent.Load() {
		e.sent.Store(true)
		e.r.post(reqFirstPacket{e.room, e.join})
	}
}

// Close implements sfu.Sink: the source track ended; the relay's track
// observer unpublishes its copies.
func (e *egress) Close() {}

// NeedsAllLayers implements sfu.AllLayersSink: a running, unpaused relay
// carries every layer of a simulcast track (dynacast).
func (e *egress) NeedsAllLayers() bool { return !e.paused.Load() }

// destSink receives the relay participant's events in a destination: the
// room ending (or the relay being replaced there) drops the destination.
type destSink struct {
	r    *Relay
	room string
	join uint64
}

func (s *destSink) Notify(ev sfu.Event) {
	if _, ok := ev.(sfu.SessionEnded); ok {
		s.r.post(reqDestEnded{s.room, s.join})
	}
}

var (
	_ sfu.Sink          = (*egress)(nil)
	_ sfu.AllLayersSink = (*egress)(nil)
	_ sfu.EventSink     = (*destSink)(nil)
)
