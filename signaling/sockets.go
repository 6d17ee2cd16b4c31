package signaling

import (
	"sync"
	"time"
)

// Socket admission: each WebSocket must join within a deadline, and one
// identity may hold only so many sockets at once. Without them a token
// opened any number of sockets that never joined and stayed open forever
// (1,000 sockets: 2,000 goroutines).
const (
	// DefaultJoinDeadline is how long a socket has, from the upgrade, to
	// send join (Params.JoinDeadline). A client sends join right after
	// the socket opens; 10s covers a slow mobile link's round trips.
	DefaultJoinDeadline = 10 * time.Second
	// closeJoinDeadline is the close code of a socket that did not join
	// in time: the contract's 4009 (conflict: "before join only join is
	// served").
	closeJoinDeadline = CodeConflict
)

// socketCounter counts the live WebSockets of each identity (token sub):
// room sessions, user sessions and bridged sockets alike. A socket counts
// from before its upgrade until its session starts closing (a close is
// queued) or its connection ends, whichever comes first, so a session
// being replaced frees its place at once. Safe for concurrent use.
type socketCounter struct {
	max int // 0: no cap

	mu   sync.Mutex
	live map[string]map[*socketSlot]bool // guarded by mu: identity -> its sockets
}

// socketSlot is one socket's place in its identity's count.
type socketSlot struct {
	c        *socketCounter
	identity string
	room     string // "" for a user session
	once     sync.Once
}

func newSocketCounter(max int) *socketCounter {
	return &socketCounter{max: max, live: map[string]map[*socketSlot]bool{}}
}

// acquire takes a place for a socket of identity for room ("": a user
// session), or reports false when the identity is at its cap.
func (c *socketCounter) acquire(identity, room string) (*socketSlot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.live[identity]
	rooms := make([]string, 0, len(set))
	for s := range set {
		rooms = append(rooms, s.room)
	}
	if !admitSocket(c.max, rooms, room) {
		return nil, false
	}
	if set == nil {
		set = map[*socketSlot]bool{}
		c.live[identity] = set
	}
	s := &socketSlot{c: c, identity: identity, room: room}
	set[s] = true
	return s, true
}

// count returns identity's live sockets.
func (c *socketCounter) count(identity string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.live[identity])
}

// release gives the place back; calls after the first do nothing, and a
// nil slot is fine.
func (s *socketSlot) release() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		c := s.c
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.live[s.identity], s)
		if len(c.live[s.identity]) == 0 {
			delete(c.live, s.identity)
		}
	})
}

// admitSocket decides whether an identity whose live sockets are for rooms
// ("" for a user session) may open one more, for room, under max (0: no
// cap).
//
// At the cap, a socket for a room where the identity has exactly one
// socket is still let in: its join replaces (and closes) that session, as
// a client reconnecting after a network change does while the server has
// not yet noticed its old socket is dead. One such socket per room, so an
// identity never holds more than twice max.
func admitSocket(max int, rooms []string, room string) bool {
	if max <= 0 || len(rooms) < max {
		return true
	}
	if room == "" {
		return false // user sessions do not replace one another
	}
	same := 0
	for _, r := range rooms {
		if r == room {
			same++
		}
	}
	return same == 1
}
