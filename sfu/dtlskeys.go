package sfu

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// dtlsKeys learns one subscriber PC's SRTP keys from its DTLS handshake,
// for the direct send path (directsend.go), through two public hooks of
// pion's SettingEngine, set on the PC's own API (APIs.subscriberAPI):
//
//   - the key log (the NSS "CLIENT_RANDOM <client random> <master secret>"
//     line browsers write for Wireshark): the client random and the
//     master secret;
//   - the ServerHello hook: the server random, the cipher suite (whose
//     hash is the PRF's) and the SRTP protection profile chosen.
//
// From these, RFC 5764 section 4.2's exporter (the TLS PRF with label
// "EXTRACTOR-dtls_srtp" and seed client random + server random) gives the
// same keys pion's DTLSTransport derives for its own SRTP session
// (TestDTLSKeysMatchPion checks it against pion's derivation).
//
// Only the server side is seen: the ServerHello hook runs where the server
// is relayd. relayd offers on subscriber PCs (actpass) and browsers and
// pion answer active, so it is the DTLS server; a PC where it is not has
// no keys here and keeps pion's path.
//
// The hooks run on the handshake's goroutine; the writer asks for the
// context later (context), so the fields are under mu.
type dtlsKeys struct {
	mu           sync.Mutex
	clientRandom []byte // from the key log
	masterSecret []byte
	serverRandom []byte // from the ServerHello
	suite        dtls.CipherSuiteID
	profile      srtp.ProtectionProfile
	hello        bool // a ServerHello was seen
}

// errNoKeys: the handshake did not give what the derivation needs (not
// finished, relayd was the DTLS client, or an unknown cipher suite).
var errNoKeys = errors.New("dtls keys not known")

// Write takes the key log's line (pion writes one, whole, per handshake).
func (k *dtlsKeys) Write(b []byte) (int, error) {
	f := bytes.Fields(b)
	if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
		return len(b), nil
	}
	cr, err1 := hex.DecodeString(string(f[1]))
	ms, err2 := hex.DecodeString(string(f[2]))
	if err1 != nil || err2 != nil {
		return len(b), nil
	}
	k.mu.Lock()
	k.clientRandom, k.masterSecret = cr, ms
	k.mu.Unlock()
	return len(b), nil
}

// serverHello is the ServerHello hook: it records and changes nothing.
func (k *dtlsKeys) serverHello(m handshake.MessageServerHello) handshake.Message {
	r := m.Random.MarshalFixed()
	k.mu.Lock()
	k.serverRandom = r[:]
	k.hello = true
	if m.CipherSuiteID != nil {
		k.suite = dtls.CipherSuiteID(*m.CipherSuiteID)
	}
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) > 0 {
			k.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	k.mu.Unlock()
	return &m
}

// prfHash is the TLS 1.2 PRF's hash of a cipher suite pion implements:
// SHA-384 for the two *_SHA384 suites, SHA-256 for every other (TLS 1.2
// uses SHA-256 for the suites named after SHA-1 too). nil: a suite this
// table does not know (a custom one), whose keys are not guessed.
func prfHash(id dtls.CipherSuiteID) func() hash.Hash {
	switch id {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, dtls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, dtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return sha256.New
	}
	return nil
}

// contexts derives the server's (relayd's) SRTP sending context, and the
// context that decrypts what the client sends (its SRTCP, with pion's
// default replay window of 64 packets).
func (k *dtlsKeys) contexts() (local, remote *srtp.Context, err error) {
	k.mu.Lock()
	cr, ms, sr, suite, profile, hello := k.clientRandom, k.masterSecret, k.serverRandom, k.suite, k.profile, k.hello
	k.mu.Unlock()
	h := prfHash(suite)
	if !hello || len(cr) != 32 || len(sr) != 32 || len(ms) == 0 || h == nil || profile == 0 {
		return nil, nil, errNoKeys
	}
	keyLen, err := profile.KeyLen()
	if err != nil {
		return nil, nil, err
	}
	saltLen, err := profile.SaltLen()
	if err != nil {
		return nil, nil, err
	}
	seed := make([]byte, 0, 19+64)
	seed = append(append(append(seed, "EXTRACTOR-dtls_srtp"...), cr...), sr...)
	// client key, server key, client salt, server salt (RFC 5764 4.2)
	km, err := prf.PHash(ms, seed, 2*keyLen+2*saltLen, h)
	if err != nil {
		return nil, nil, err
	}
	clientKey, serverKey := km[:keyLen], km[keyLen:2*keyLen]
	clientSalt, serverSalt := km[2*keyLen:2*keyLen+saltLen], km[2*keyLen+saltLen:]
	if local, err = srtp.CreateContext(serverKey, serverSalt, profile); err != nil {
		return nil, nil, err
	}
	if remote, err = srtp.CreateContext(clientKey, clientSalt, profile, srtp.SRTCPReplayProtection(64)); err != nil {
		return nil, nil, err
	}
	return local, remote, nil
}
