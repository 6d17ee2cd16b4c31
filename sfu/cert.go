package sfu

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// certRotation is how long one DTLS certificate serves new
// PeerConnections. pion's certificates are valid a month (NotAfter: a
// month less a day), checked when a PC is made; so a certificate handed
// out last at the end of its week still has three weeks on a PC made
// then. A week bounds how long one key signs the server's handshakes.
const certRotation = 7 * 24 * time.Hour

// certs is the DTLS certificate all the server's PeerConnections share
// (webrtc.Configuration.Certificates), made anew every certRotation.
// pion's default makes a key and a self-signed certificate per PC (a
// P-256 key generation and a signature, and the parsed x509 kept for the
// PC's life: 3.1 KiB per PC, BenchmarkViewerMemory's profile). Sharing
// it is safe: a DTLS
// handshake derives its SRTP keys from ephemeral ECDHE, so one
// session's keys say nothing of another's; the certificate only says
// that the answerer of this SDP is the server (mediasoup likewise has
// one certificate per worker).
//
// The one thing a PC's own certificate said: that it is a new PC. The
// protocol (docs/protocol.md, "a reloaded page") has a client whose
// subscriber PC gets an offer with another a=fingerprint answer it on a
// new PC, because the server replaced its own; the Go and JS clients do
// so (client/peer.go newCertificate, web/sdk dtlsFingerprint). A PC that
// replaces another (replaceSubscriber) therefore gets a certificate of
// its own (fresh), never the shared one; see Participant.ownCert.
type certs struct {
	now func() time.Time // time.Now; tests set it

	mu   sync.Mutex
	cur  webrtc.Certificate // guarded by mu
	made time.Time          // guarded by mu; zero: none yet
}

func newCerts() *certs { return &certs{now: time.Now} }

// shared returns the current shared certificate, made anew when it is
// older than certRotation.
func (c *certs) shared() (webrtc.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.made.IsZero() || now.Sub(c.made) >= certRotation {
		cert, err := newCertificate()
		if err != nil {
			return webrtc.Certificate{}, err
		}
		c.cur, c.made = cert, now
	}
	return c.cur, nil
}

// newCertificate makes a certificate as pion does for a PC without one:
// a P-256 key, self-signed, valid a month.
func newCertificate() (webrtc.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return webrtc.Certificate{}, fmt.Errorf("dtls key: %w", err)
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return webrtc.Certificate{}, fmt.Errorf("dtls certificate: %w", err)
	}
	return *cert, nil
}
