package sfu

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fingerprintOf is cert's SHA-256 fingerprint as fingerprints() reads it
// from an SDP.
func fingerprintOf(t *testing.T, c *certs) string {
	t.Helper()
	cert, err := c.shared()
	if err != nil {
		t.Fatal(err)
	}
	fps, err := cert.GetFingerprints()
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(fps[0].Algorithm + " " + fps[0].Value)
}

// lastOffer is the fingerprint of the last subscriber offer c got.
func (c *peer) lastOfferFingerprint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.events) - 1; i >= 0; i-- {
		if o, ok := c.events[i].(SubscriberOffer); ok {
			return fingerprints(o.SDP)
		}
	}
	return ""
}

// The server's PCs share one DTLS certificate (the same a=fingerprint in
// every viewer's offer), which a week later gives way to a new one for the
// PCs made from then on.
func TestSharedCertRotates(t *testing.T) {
	s := newLoopbackSFU(t, Config{})
	c := s.cfg.API.certs
	var mu sync.Mutex
	now := time.Now()
	c.mu.Lock()
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c.mu.Unlock()
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	r, err := s.CreateRoom("r", "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	host := newPeer(t, 0)
	hp := host.join(r, ParticipantParams{Identity: "alice", Role: RoleHost})
	host.publishVP8(hp)
	waitLong(t, "the host's track", func() bool { return len(hp.PublishedTracks()) == 1 })

	viewer := func(i int) string {
		v := newPeer(t, 0)
		v.join(r, ParticipantParams{Identity: fmt.Sprintf("viewer%d", i), Role: RoleViewer})
		waitLong(t, fmt.Sprintf("media on viewer %d", i), func() bool { return v.received.Load() >= 5 })
		return v.lastOfferFingerprint()
	}
	first := fingerprintOf(t, c)
	for i := range 2 {
		if fp := viewer(i); fp != first {
			t.Errorf("viewer %d: offer's fingerprint %q, want the shared %q", i, fp, first)
		}
	}
	advance(certRotation - time.Minute)
	if fp := viewer(2); fp != first {
		t.Errorf("a week less a minute on: fingerprint %q, want still %q", fp, first)
	}
	advance(time.Minute)
	second := fingerprintOf(t, c)
	if second == first {
		t.Fatalf("a week on: still the first certificate")
	}
	if fp := viewer(3); fp != second {
		t.Errorf("a week on: viewer's fingerprint %q, want the new %q", fp, second)
	}
	cert, _ := c.shared()
	if exp := cert.Expires(); !exp.After(now.Add(certRotation)) {
		t.Errorf("the new certificate expires %v, before the end of its week", exp)
	}
}
