package client

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func TestFilterICEServers(t *testing.T) {
	join := []ICEServer{{
		URLs:     []string{"turn:h:3478?transport=udp", "turn:h:3478?transport=tcp", "turns:h:443?transport=tcp"},
		Username: "1:alice", Credential: "c",
	}}
	for _, tc := range []struct {
		name string
		keep func(string) bool
		want []string
	}{
		{"all", func(string) bool { return true }, join[0].URLs},
		{"turns only", func(u string) bool { return strings.HasPrefix(u, "turns:") }, []string{"turns:h:443?transport=tcp"}},
		{"none", func(string) bool { return false }, nil},
	} {
		got := FilterICEServers(join, tc.keep)
		if tc.want == nil {
			if len(got) != 0 {
				t.Errorf("%s: %+v, want no server", tc.name, got)
			}
			continue
		}
		if len(got) != 1 || strings.Join(got[0].URLs, " ") != strings.Join(tc.want, " ") ||
			got[0].Username != "1:alice" || got[0].Credential != "c" {
			t.Errorf("%s: %+v, want %q with the credential", tc.name, got, tc.want)
		}
	}
	if got := AllICEServers(nil); len(got) != 0 {
		t.Errorf("AllICEServers(nil) = %+v", got)
	}
}

func TestICEStateConfiguration(t *testing.T) {
	// Without Options.ICEServers: no servers, no wait for the join.
	s := newICEState(Options{})
	start := time.Now()
	if cfg := s.configuration(nil); len(cfg.ICEServers) != 0 || time.Since(start) > time.Second {
		t.Errorf("without ICEServers: %+v after %v", cfg, time.Since(start))
	}

	// With it: the configuration waits for the join result's servers.
	s = newICEState(Options{ICEServers: AllICEServers, ICETransportPolicy: webrtc.ICETransportPolicyRelay})
	got := make(chan webrtc.Configuration, 1)
	go func() { got <- s.configuration(nil) }()
	select {
	case cfg := <-got:
		t.Fatalf("configuration before the join: %+v", cfg)
	case <-time.After(50 * time.Millisecond):
	}
	s.setJoin([]ICEServer{{URLs: []string{"turn:h:1?transport=udp"}, Username: "u", Credential: "p"}})
	cfg := <-got
	if len(cfg.ICEServers) != 1 || cfg.ICEServers[0].URLs[0] != "turn:h:1?transport=udp" || cfg.ICETransportPolicy != webrtc.ICETransportPolicyRelay {
		t.Errorf("after the join: %+v", cfg)
	}

	// A closed client does not wait.
	s = newICEState(Options{ICEServers: AllICEServers})
	done := make(chan struct{})
	close(done)
	if cfg := s.configuration(done); len(cfg.ICEServers) != 0 {
		t.Errorf("closed before the join: %+v", cfg)
	}
}
