package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/sfu"
)

// Errors the API returns; signaling maps them to protocol codes.
var (
	ErrNotFound  = errors.New("relay not found")       // 4004
	ErrConflict  = errors.New("relay state conflict")  // 4009
	ErrTooMany   = errors.New("too many destinations") // 4013
	ErrInvalid   = errors.New("invalid destinations")  // -32602
	ErrForbidden = errors.New("may not relay")         // 4003
)

// Config lists a Manager's dependencies.
type Config struct {
	SFU             *sfu.SFU
	MaxDestinations int // default 4
	// Authorize checks a Target and returns the identity the stream takes
	// in that room, or ErrFailedJoinDest / ErrDestTokenExpired. Targets of
	// the admin API carry an Identity and no Token.
	Authorize func(t Target) (identity string, failure Error)
	Logger    *slog.Logger
	Metrics   *metrics.Metrics
	// Remote reaches destination rooms on other nodes (cluster mode);
	// nil on a single node.
	Remote Remote
}

// Manager holds the running relays: at most one per source participant.
type Manager struct {
	cfg Config

	mu       sync.Mutex
	byID     map[string]*Relay
	bySource map[*sfu.Participant]*Relay
}

// NewManager makes a Manager.
func NewManager(c Config) *Manager {
	if c.MaxDestinations <= 0 {
		c.MaxDestinations = 4
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: c, byID: map[string]*Relay{}, bySource: map[*sfu.Participant]*Relay{}}
}

// checkTargets validates a destination set against the source room.
func (m *Manager) checkTargets(src *sfu.Participant, ts []Target) error {
	if len(ts) == 0 {
		return fmt.Errorf("%w: destinations must not be empty", ErrInvalid)
	}
	if len(ts) > m.cfg.MaxDestinations {
		return fmt.Errorf("%w: at most %d destinations", ErrTooMany, m.cfg.MaxDestinations)
	}
	seen := map[string]bool{}
	for _, t := range ts {
		if t.Room == src.Room().Name() {
			return fmt.Errorf("%w: %s is the source room", ErrInvalid, t.Room)
		}
		if seen[t.Room] {
			return fmt.Errorf("%w: room %s given twice", ErrInvalid, t.Room)
		}
		seen[t.Room] = true
	}
	return nil
}

// Start creates a relay of src's tracks into targets. The caller answers
// its request with the returned relay's Info (state connecting), then
// calls Begin. More targets than the limit: ErrTooMany and event 8.
func (m *Manager) Start(src *sfu.Participant, targets []Target, notify Notify) (*Relay, error) {
	if role := src.Role(); role != sfu.RoleHost && role != sfu.RoleCohost {
		return nil, fmt.Errorf("%w: only a publisher (host or co-host) relays its tracks", ErrForbidden)
	}
	if err := m.checkTargets(src, targets); err != nil {
		if errors.Is(err, ErrTooMany) {
			notify("relay.event", EventParams{Event: EventUpdateDestChannelRefused.String(), Code: int(EventUpdateDestChannelRefused)})
		}
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bySource[src] != nil {
		return nil, fmt.Errorf("%w: a relay of yours runs; call relay.update or relay.stop", ErrConflict)
	}
	r := &Relay{
		id: sfu.NewID("RL_"), m: m, src: src, room: src.Room().Name(), notify: notify,
		state: StateConnecting, started: time.Now(),
		events: make(chan any, 256), done: make(chan struct{}),
	}
	r.log = m.cfg.Logger.With("relay", r.id, "room", r.room, "participant", src.Identity())
	for _, t := range targets {
		r.dests = append(r.dests, &destination{target: t, identity: t.Identity, state: StateConnecting})
	}
	m.cfg.Metrics.Relays.WithLabelValues(StateConnecting.String()).Inc()
	m.cfg.Metrics.RelayDestinations.Add(float64(len(targets)))
	m.byID[r.id] = r
	m.bySource[src] = r
	return r, nil
}

func (m *Manager) forget(r *Relay) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byID, r.id)
	if m.bySource[r.src] == r {
		delete(m.bySource, r.src)
	}
}

// Of returns src's relay, or nil.
func (m *Manager) Of(src *sfu.Participant) *Relay {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bySource[src]
}

// Get returns the relay with id, or nil.
func (m *Manager) Get(id string) *Relay {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byID[id]
}

// List returns every running relay's object, sorted by id.
func (m *Manager) List() []Info {
	m.mu.Lock()
	rs := make([]*Relay, 0, len(m.byID))
	for _, r := range m.byID {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	out := make([]Info, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TrackChanged follows a relay's source: a track it publishes (or
// unpublishes) after the relay began is added to (or taken from) every
// destination. The owner of the sfu's Observer calls it for every
// sfu.TrackChanged.
func (m *Manager) TrackChanged(src *sfu.Participant, up *sfu.UpTrack, published bool) {
	r := m.Of(src)
	if r == nil {
		return
	}
	r.mu.Lock()
	follow := r.begun && !r.stopped
	r.mu.Unlock()
	if follow {
		r.post(trackChange{up, published})
	}
}

// SourceGone stops src's relay, if any, because the source left or its
// room ended: state idle and event disconnect.
func (m *Manager) SourceGone(src *sfu.Participant) {
	r := m.Of(src)
	if r == nil {
		return
	}
	r.mu.Lock()
	if !r.stopped {
		r.event(EventDisconnect, "")
		r.stopLocked()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Close stops every relay.
func (m *Manager) Close() {
	m.mu.Lock()
	rs := make([]*Relay, 0, len(m.byID))
	for _, r := range m.byID {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	for _, r := range rs {
		r.Stop()
	}
}

// Stop leaves every destination: state idle.
func (r *Relay) Stop() Info {
	r.mu.Lock()
	r.stopLocked()
	info := r.infoLocked()
	r.mu.Unlock()
	r.wg.Wait()
	return info
}

// Update replaces the destination set. Empty: ErrInvalid and event 10;
// over the limit: ErrTooMany and event 8; the same set: unchanged and event
// 9. Otherwise destinations no longer wanted are left, new ones joined
// (events 3, later 4), failed ones retried, and event 7. Pause is kept.
func (r *Relay) Update(targets []Target) (Info, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return Info{}, ErrNotFound
	}
	if len(targets) == 0 {
		r.event(EventUpdateDestChannelIsNil, "")
		return Info{}, fmt.Errorf("%w: destinations must not be empty", ErrInvalid)
	}
	if err := r.m.checkTargets(r.src, targets); err != nil {
		if errors.Is(err, ErrTooMany) {
			r.event(EventUpdateDestChannelRefused, "")
		}
		return Info{}, err
	}
	if r.sameSetLocked(targets) {
		r.event(EventUpdateDestChannelNotChange, "")
		return r.infoLocked(), nil
	}
	old := map[string]*destination{}
	for _, d := range r.dests {
		old[d.target.Room] = d
	}
	var next []*destination
	for _, t := range targets {
		if d := old[t.Room]; d != nil {
			delete(old, t.Room)
			if d.state != StateRunning {
				d.target, d.identity = t, t.Identity
				r.joinLocked(d)
			}
			next = append(next, d)
			continue
		}
		d := &destination{target: t, identity: t.Identity, state: StateConnecting}
		r.m.cfg.Metrics.RelayDestinations.Inc()
		next = append(next, d)
	}
	for _, d := range r.dests {
		if old[d.target.Room] == d {
			r.leaveLocked(d)
			r.m.cfg.Metrics.RelayDestinations.Dec()
		}
	}
	r.dests = next
	for _, d := range next {
		if d.state == StateConnecting {
			r.joinLocked(d)
		}
	}
	r.event(EventUpdateDestChannel, "")
	r.recomputeLocked()
	return r.infoLocked(), nil
}

// sameSetLocked reports whether targets name the rooms and identities the
// relay already has (a fresh token for the same identity is the same
// destination; one that fixes a failed destination is not).
func (r *Relay) sameSetLocked(targets []Target) bool {
	if len(targets) != len(r.dests) {
		return false
	}
	type key struct{ room, identity string }
	have := map[key]bool{}
	for _, d := range r.dests {
		have[key{d.target.Room, d.identity}] = true
	}
	for _, t := range targets {
		id := t.Identity
		if t.Token != "" {
			var fail Error
			if id, fail = r.m.cfg.Authorize(t); fail != ErrNone {
				return false
			}
		}
		if !have[key{t.Room, id}] {
			return false
		}
	}
	return true
}

// Pause stops audio and video to every destination without leaving them
// (event 12); already paused: ErrConflict and event 13.
func (r *Relay) Pause() (Info, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return Info{}, ErrNotFound
	}
	if r.paused {
		r.event(EventPauseFailed, "")
		return Info{}, fmt.Errorf("%w: already paused", ErrConflict)
	}
	r.paused = true
	for _, d := range r.dests {
		for _, e := range d.egress {
			e.paused.Store(true)
		}
	}
	r.event(EventPauseSuccess, "")
	return r.infoLocked(), nil
}

// Resume restarts the packets after a keyframe request (event 14); not
// paused: ErrConflict and event 15.
func (r *Relay) Resume() (Info, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return Info{}, ErrNotFound
	}
	if !r.paused {
		r.event(EventResumeFailed, "")
		return Info{}, fmt.Errorf("%w: not paused", ErrConflict)
	}
	r.paused = false
	for _, d := range r.dests {
		for up, e := range d.egress {
			e.resync.Store(true)
			e.paused.Store(false)
			up.RequestKeyframe()
		}
	}
	r.event(EventResumeSuccess, "")
	return r.infoLocked(), nil
}
