package sfu

import (
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/relaysfu/relayd/internal/ids"
	"github.com/relaysfu/relayd/metrics"
)

// Errors the sfu returns; signaling maps them to protocol codes.
var (
	ErrRoomExists   = errors.New("room exists")
	ErrRoomNotFound = errors.New("room not found")
	ErrRoomEnded    = errors.New("room ended")
	ErrForbidden    = errors.New("forbidden")
	ErrBadSDP       = errors.New("bad sdp")
	ErrBadCandidate = errors.New("bad candidate")
	ErrWrongState   = errors.New("wrong state")
	ErrClosed       = errors.New("closed")
)

// Config is the sfu's configuration.
type Config struct {
	API            APIs          // built once by NewAPI
	ReconnectGrace time.Duration // how long a room waits for its vanished host
	Logger         *slog.Logger
	Metrics        *metrics.Metrics
	// IsCohost reports whether identity holds an accepted invitation in
	// room; the publish gate asks it for relays (invitations hook here),
	// with no sfu lock held.
	IsCohost func(room, identity string) bool
	// Observer, when set, is told of every room change (observer.go):
	// status, participants joining and leaving, tracks published and
	// unpublished. It is the sfu's one way out for the layer that owns
	// the rooms' rules.
	Observer Observer
}

// SFU is the room registry.
type SFU struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	rooms  map[string]*Room // guarded by mu; ended rooms stay (their status can be read) until Forget
	closed bool             // guarded by mu
}

// New makes an SFU.
func New(cfg Config) *SFU {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.ReconnectGrace <= 0 {
		cfg.ReconnectGrace = 30 * time.Second
	}
	return &SFU{cfg: cfg, log: cfg.Logger, rooms: map[string]*Room{}}
}

// Metrics returns the metrics the sfu counts into.
func (s *SFU) Metrics() *metrics.Metrics { return s.cfg.Metrics }

// Room returns the named room, or nil.
func (s *SFU) Room(name string) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[name]
}

// CreateRoom creates an idle room. It returns ErrRoomExists (and the room)
// when the name is taken by a room that has not ended; an ended room of
// that name is replaced.
func (s *SFU) CreateRoom(name, host, title, metadata string) (*Room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if r := s.rooms[name]; r != nil && !r.Status().Ended() {
		return r, ErrRoomExists
	}
	r := newRoom(s, name, host, title, metadata)
	s.rooms[name] = r
	return r, nil
}

// RestoreRoom registers a room known from the store (after a restart) with
// its recorded status and times; a room that was live or waiting for its
// host cannot be live any more and is restored as ended. An existing room
// of that name is left alone.
func (s *SFU) RestoreRoom(info RoomInfo) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[info.Name]; r != nil {
		return r
	}
	r := newRoom(s, info.Name, info.Host, info.Title, string(info.Metadata))
	r.createdAt, r.startedAt, r.endedAt = info.CreatedAt, info.StartedAt, info.EndedAt
	r.restoreBroadcast(info)
	if info.Status != StatusIdle {
		if r.endedAt == nil {
			now := time.Now().UTC()
			r.endedAt = &now
		}
		r.endReason = restoredEndReason(info)
		st := StatusEnded
		if info.Status == StatusRecorded {
			st = StatusRecorded
		}
		r.setStatusLocked(st)
	}
	s.rooms[info.Name] = r
	return r
}

// Forget takes r out of the registry, if it is still the room of its
// name and has ended: the retention sweeper purges ended rooms this way,
// and the name is free again (Room returns nil, CreateRoom makes a new
// room). It reports whether r was removed; a room that is not ended, or
// that was replaced by a new room of the same name, stays.
func (s *SFU) Forget(r *Room) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.name] != r || !r.Status().Ended() {
		return false
	}
	delete(s.rooms, r.name)
	return true
}

// restoredEndReason is the end reason of a room restored with info: the
// stored one, or, for a room that was live or waiting for its host when the
// server stopped without ending it, server_shutdown. A room that ended
// before reasons were stored, or with a reason this version does not know,
// has none.
func restoredEndReason(info RoomInfo) EndReason {
	switch {
	case info.Status.Ended():
		if !info.EndReason.Valid() {
			return "" // not ours (a damaged record): no reason rather than a wrong one
		}
		return info.EndReason
	case info.Status == StatusIdle:
		return ""
	}
	return EndServerShutdown
}

// Rooms returns the rooms sorted by name.
func (s *SFU) Rooms() []*Room {
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	sort.Slice(rooms, func(i, j int) bool { return rooms[i].name < rooms[j].name })
	return rooms
}

// Close ends every room (server_shutdown) and refuses new ones. It returns
// when every room's End has returned: its effects ran and every
// participant's PeerConnections are closed.
func (s *SFU) Close() {
	s.mu.Lock()
	s.closed = true
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	// All at once: a room's End waits for its participants' PCs to close
	// and for its hooks (stores, webhooks), which need not wait for the
	// other rooms'.
	var wg sync.WaitGroup
	for _, r := range rooms {
		wg.Go(func() { r.End(EndServerShutdown) })
	}
	wg.Wait()
}

// NewID returns a random id with a prefix: "TR_" tracks, "RL_" relays.
// 12 base62 characters are 71 bits: no collision in any room's lifetime.
func NewID(prefix string) string { return ids.New(prefix, 12) }

// PacketsForwarded returns how many RTP packets have been written to
// subscribers so far (what relayd_packets_out_total counts, both kinds),
// for the load a cluster node reports.
func (s *SFU) PacketsForwarded() uint64 { return s.cfg.Metrics.Forwarded.Load() }
