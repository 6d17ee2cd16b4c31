package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

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

// Start creates a relay of src's tracks into targets. The caller answers
// its request with the returned relay's Info (state connecting), then
// calls Begin. More targets than the limit: ErrTooMany and event 8.
func (m *Manager) Start(src *sfu.Participant, targets []Target, notify Notify) (*Relay, error) {
	if role := src.Role(); role != sfu.RoleHost && role != sfu.RoleCohost {
		return nil, fmt.Errorf("%w: only a publisher (host or co-host) relays its tracks", ErrForbidden)
	}
	if err := checkTargets(src.Room().Name(), m.cfg.MaxDestinations, targets); err != nil {
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
		model: model{room: src.Room().Name(), limit: m.cfg.MaxDestinations, state: StateConnecting},
		live:  map[string]*destination{},
		wake:  make(chan struct{}, 1), done: make(chan struct{}),
	}
	r.log = m.cfg.Logger.With("relay", r.id, "room", r.room, "participant", src.Identity())
	for _, t := range targets {
		r.model.dests = append(r.model.dests, destModel{target: t, identity: t.Identity, state: StateConnecting})
	}
	m.cfg.Metrics.Relays.WithLabelValues(StateConnecting.String()).Inc()
	m.cfg.Metrics.RelayDestinations.Add(float64(len(targets)))
	m.byID[r.id] = r
	m.bySource[src] = r
	r.wg.Add(1)
	go r.loop()
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
// sfu.TrackChanged; it never blocks.
func (m *Manager) TrackChanged(src *sfu.Participant, up *sfu.UpTrack, published bool) {
	if r := m.Of(src); r != nil {
		r.post(reqTrack{up, published})
	}
}

// SourceGone stops src's relay, if any, because the source left or its
// room ended: event disconnect and state idle.
func (m *Manager) SourceGone(src *sfu.Participant) {
	if r := m.Of(src); r != nil {
		_, _ = r.step(reqSourceGone{})
		r.wg.Wait()
	}
}

// Close stops every relay.
func (m *Manager) Close() {
	for _, r := range m.all() {
		r.Stop()
	}
}

// all returns the running relays.
func (m *Manager) all() []*Relay {
	m.mu.Lock()
	defer m.mu.Unlock()
	rs := make([]*Relay, 0, len(m.byID))
	for _, r := range m.byID {
		rs = append(rs, r)
	}
	return rs
}

// Begin starts the relay: the first relay.state (connecting), event 2, the
// destination joins (event 3 each), then running or failure. The caller
// sends its answer to relay.start first, so the notifications follow it.
func (r *Relay) Begin() { _, _ = r.step(reqBegin{}) }

// Stop leaves every destination: state idle.
func (r *Relay) Stop() Info {
	info, _ := r.step(reqStop{})
	r.wg.Wait()
	return info
}

// Update replaces the destination set. Empty: ErrInvalid and event 10;
// over the limit: ErrTooMany and event 8; the same set: unchanged and event
// 9. Otherwise destinations no longer wanted are left, new ones joined
// (events 3, later 4), failed ones retried, and event 7. Pause is kept.
func (r *Relay) Update(targets []Target) (Info, error) {
	ids := make([]resolved, len(targets))
	for i, t := range targets {
		ids[i] = resolved{identity: t.Identity, ok: true}
		if t.Token != "" {
			id, fail := r.m.cfg.Authorize(t)
			ids[i] = resolved{identity: id, ok: fail == ErrNone}
		}
	}
	return r.answer(r.step(reqUpdate{targets, ids}))
}

// Pause stops audio and video to every destination without leaving them
// (event 12); already paused: ErrConflict and event 13.
func (r *Relay) Pause() (Info, error) { return r.answer(r.step(reqPause{})) }

// Resume restarts the packets after a keyframe request (event 14); not
// paused: ErrConflict and event 15.
func (r *Relay) Resume() (Info, error) { return r.answer(r.step(reqResume{})) }

// answer is an API call's result: the relay object, or only the error.
func (r *Relay) answer(info Info, err error) (Info, error) {
	if err != nil {
		return Info{}, err
	}
	return info, nil
}
