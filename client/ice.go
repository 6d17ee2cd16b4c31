package client

// ICE servers from the join result (§8.11 of the protocol reference,
// 1.1 §4): TURN, for clients on networks that block UDP. Opt-in: without
// Options.ICEServers the client gathers host candidates only, as before.

import (
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// joinICEWait bounds how long a PeerConnection waits for the join result's
// iceServers (it is made after the join in practice: the subscriber's
// when the server's first offer comes, which follows the result).
const joinICEWait = 10 * time.Second

// AllICEServers is an Options.ICEServers that uses every ICE server of the
// join result.
func AllICEServers(fromJoin []ICEServer) []webrtc.ICEServer {
	return FilterICEServers(fromJoin, func(string) bool { return true })
}

// FilterICEServers converts the join result's servers, keeping only the
// URLs keep accepts (e.g. those starting "turns:" to force TURN over TLS);
// a server with no URL left is dropped.
func FilterICEServers(fromJoin []ICEServer, keep func(url string) bool) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, s := range fromJoin {
		var urls []string
		for _, u := range s.URLs {
			if keep(u) {
				urls = append(urls, u)
			}
		}
		if len(urls) > 0 {
			out = append(out, webrtc.ICEServer{URLs: urls, Username: s.Username, Credential: s.Credential})
		}
	}
	return out
}

// iceState is the client's ICE configuration and the join result's
// servers once known.
type iceState struct {
	pick   func([]ICEServer) []webrtc.ICEServer // Options.ICEServers
	policy webrtc.ICETransportPolicy            // Options.ICETransportPolicy

	once    sync.Once
	joined  chan struct{} // closed at the first join result
	mu      sync.Mutex
	servers []ICEServer // guarded by mu
}

func newICEState(opts Options) *iceState {
	return &iceState{pick: opts.ICEServers, policy: opts.ICETransportPolicy, joined: make(chan struct{})}
}

// setJoin records a join result's servers (the latest join's win: a
// resume brings fresh credentials).
func (s *iceState) setJoin(list []ICEServer) {
	s.mu.Lock()
	s.servers = list
	s.mu.Unlock()
	s.once.Do(func() { close(s.joined) })
}

// configuration is a new PeerConnection's: the join's servers as
// Options.ICEServers picks them, once the join result is in (at most
// joinICEWait, or until done closes).
func (s *iceState) configuration(done <-chan struct{}) webrtc.Configuration {
	cfg := webrtc.Configuration{ICETransportPolicy: s.policy}
	if s.pick == nil {
		return cfg
	}
	t := time.NewTimer(joinICEWait)
	defer t.Stop()
	select {
	case <-s.joined:
	case <-done:
	case <-t.C:
	}
	s.mu.Lock()
	list := s.servers
	s.mu.Unlock()
	cfg.ICEServers = s.pick(list)
	return cfg
}
