package sfu

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// TestDTLSKeysMatchPion runs real DTLS handshakes on loopback, relayd's
// dtlsKeys hooked into the server side, and checks that a packet the
// context derived from them encrypts is decrypted by the client with the
// keys pion's own exporter gives (the way pion's DTLSTransport keys its
// SRTP session), and the client's SRTCP is decrypted by the other context
// derived, for each cipher suite and SRTP profile pion offers.
func TestDTLSKeysMatchPion(t *testing.T) {
	suites := []dtls.CipherSuiteID{
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	profiles := []dtls.SRTPProtectionProfile{
		dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM,
	}
	for _, suite := range suites {
		for _, profile := range profiles {
			k, client := dtlsHandshake(t, suite, profile)
			ctx, remote, err := k.contexts()
			if err != nil {
				t.Fatalf("suite %v profile %v: derive: %v", suite, profile, err)
			}
			st, ok := client.ConnectionState()
			if !ok {
				t.Fatal("no client connection state")
			}
			cfg := srtp.Config{Profile: srtp.ProtectionProfile(profile)}
			if err := cfg.ExtractSessionKeysFromDTLS(&st, true); err != nil {
				t.Fatal(err)
			}
			dec, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile)
			if err != nil {
				t.Fatal(err)
			}
			h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 65535, Timestamp: 9, SSRC: 42}
			plain, _ := (&rtp.Packet{Header: h, Payload: []byte("relayd direct")}).Marshal()
			enc, err := ctx.EncryptRTP(nil, plain, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dec.DecryptRTP(nil, enc, nil)
			if err != nil {
				t.Fatalf("suite %v profile %v: the client cannot decrypt: %v", suite, profile, err)
			}
			if string(got[12:]) != "relayd direct" {
				t.Fatalf("suite %v profile %v: decrypted %q", suite, profile, got[12:])
			}
			// And the other way: the client's SRTCP (a PLI), encrypted
			// with the keys pion's exporter gives it, decrypts with ours.
			cenc, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile)
			if err != nil {
				t.Fatal(err)
			}
			pli, _ := (&rtcp.PictureLossIndication{SenderSSRC: 7, MediaSSRC: 42}).Marshal()
			sr, err := cenc.EncryptRTCP(nil, pli, nil)
			if err != nil {
				t.Fatal(err)
			}
			back, err := remote.DecryptRTCP(nil, sr, nil)
			if err != nil || string(back) != string(pli) {
				t.Fatalf("suite %v profile %v: the client's RTCP does not decrypt: %v", suite, profile, err)
			}
			_ = client.Close()
		}
	}
}

// TestDTLSKeysIncomplete: before the handshake, or without a ServerHello
// (relayd the DTLS client), there are no keys and no context.
func TestDTLSKeysIncomplete(t *testing.T) {
	var k dtlsKeys
	if _, _, err := k.contexts(); err == nil {
		t.Fatal("a context from nothing")
	}
	_, _ = k.Write([]byte("CLIENT_RANDOM 0011 2233\n"))
	if _, _, err := k.contexts(); err == nil {
		t.Fatal("a context without a ServerHello")
	}
	_, _ = k.Write([]byte("garbage line\n"))
	_, _ = k.Write([]byte("CLIENT_RANDOM zz yy\n"))
	if _, _, err := k.contexts(); err == nil {
		t.Fatal("a context from garbage")
	}
}

// dtlsHandshake completes one DTLS handshake on loopback UDP with the given
// suite and profile; it returns the server's dtlsKeys and the client.
func dtlsHandshake(t *testing.T, suite dtls.CipherSuiteID, profile dtls.SRTPProtectionProfile) (*dtlsKeys, *dtls.Conn) {
	t.Helper()
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	k := &dtlsKeys{}
	srv, err := dtls.ServerWithOptions(a, b.LocalAddr(),
		dtls.WithCertificates(cert), dtls.WithCipherSuites(suite), dtls.WithSRTPProtectionProfiles(profile),
		dtls.WithInsecureSkipVerify(true), dtls.WithKeyLogWriter(k),
		dtls.WithServerHelloMessageHook(k.serverHello), dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := dtls.ClientWithOptions(b, a.LocalAddr(),
		dtls.WithCertificates(cert), dtls.WithCipherSuites(suite), dtls.WithSRTPProtectionProfiles(profile),
		dtls.WithInsecureSkipVerify(true), dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(); _ = cli.Close(); _ = a.Close(); _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.HandshakeContext(ctx) }()
	if err := cli.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return k, cli
}
