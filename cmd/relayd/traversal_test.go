package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
)

func TestConfigTraversal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		check   func(Config) bool
	}{
		{name: "defaults: ICE-TCP on the UDP port's number, TURN off", args: nil,
			check: func(c Config) bool { return c.TCPPort == -1 && c.TURNPort == 0 && c.TURNTLSPort == 0 }},
		{name: "ICE-TCP off", args: []string{"--tcp-port", "0"}, check: func(c Config) bool { return c.TCPPort == 0 }},
		{name: "TURN on", args: []string{"--turn-port", "3478", "--turn-host", "turn.example.com"},
			check: func(c Config) bool { return c.TURNPort == 3478 && c.TURNHost == "turn.example.com" }},
		{name: "TURN over TLS", args: []string{"--turn-tls-port", "443", "--turn-cert", "c.pem", "--turn-key", "k.pem"},
			check: func(c Config) bool { return c.TURNTLSPort == 443 && c.TURNCert == "c.pem" }},
		{name: "tcp port too big", args: []string{"--tcp-port", "65536"}, wantErr: "--tcp-port"},
		{name: "tcp port below -1", args: []string{"--tcp-port", "-2"}, wantErr: "--tcp-port"},
		{name: "negative turn port", args: []string{"--turn-port", "-1"}, wantErr: "--turn-port"},
		{name: "TLS without a certificate", args: []string{"--turn-tls-port", "443"}, wantErr: "--turn-cert"},
		{name: "TLS on the TURN port", args: []string{"--turn-port", "3478", "--turn-tls-port", "3478", "--turn-cert", "c", "--turn-key", "k"},
			wantErr: "the same TCP port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(append([]string{"--secret", "s"}, tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
	if _, err := load([]string{"--secret", "s"}, "RELAYD_TURN_PORT=3478", "RELAYD_TCP_PORT=0"); err != nil {
		t.Errorf("environment: %v", err)
	}
}

// freeTCPPort is a port number free for TCP now (and, very likely, UDP).
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relayd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// A server with ICE-TCP and TURN on loopback: every join result (1.0 and
// 1.1) carries the TURN URLs and a credential outliving the token by the
// reconnect grace; a publisher forced through TURN over UDP, a viewer
// forced through TURN over TCP and one that can only do TCP (ICE-TCP) all
// get media, and /metrics counts each transport.
func TestTraversalEndToEnd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // the TURN server and the ICE-TCP mux stop with run
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	turnPort, tlsPort := freeTCPPort(t), freeTCPPort(t)
	cfg, err := load([]string{
		"--secret", "traversal-test-secret", "--listen", "127.0.0.1:0", "--udp-port", "0", "--data-dir", dir,
		"--turn-port", strconv.Itoa(turnPort), "--turn-tls-port", strconv.Itoa(tlsPort),
		"--turn-cert", certFile, "--turn-key", keyFile, "--reconnect-grace", "45s",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- run(ctx, cfg, io.Discard, runHooks{ready: func(a string) { addrc <- a }}) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	var clients []*client.Client
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	tokens := signaling.NewTokens([]byte(cfg.Secret))
	tctx, tcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer tcancel()
	wantURLs := []string{
		fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", turnPort),
		fmt.Sprintf("turn:127.0.0.1:%d?transport=tcp", turnPort),
		fmt.Sprintf("turns:127.0.0.1:%d?transport=tcp", tlsPort),
	}
	dial := func(identity, role, version string, opts client.Options) *client.Client {
		t.Helper()
		tok, err := tokens.Issue(signaling.TokenSpec{Identity: identity, Room: "r", Role: role, TTL: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		claims, err := tokens.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(tctx, "http://"+addr, tok, opts)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		r, err := c.JoinWith(tctx, client.JoinParams{Version: version})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.ICEServers) != 1 || strings.Join(r.ICEServers[0].URLs, " ") != strings.Join(wantURLs, " ") {
			t.Fatalf("%s (%q): iceServers %+v, want one server with %q", identity, version, r.ICEServers, wantURLs)
		}
		exp, name, _ := strings.Cut(r.ICEServers[0].Username, ":")
		e, _ := strconv.ParseInt(exp, 10, 64)
		if name != identity || e < claims.ExpiresAt.Unix()+45 {
			t.Errorf("%s: username %q, want <exp ≥ %d>:%s", identity, r.ICEServers[0].Username, claims.ExpiresAt.Unix()+45, identity)
		}
		if r.ICEServers[0].Credential == "" {
			t.Errorf("%s: no credential", identity)
		}
		return c
	}
	only := func(prefix string) func([]client.ICEServer) []webrtc.ICEServer {
		return func(l []client.ICEServer) []webrtc.ICEServer {
			return client.FilterICEServers(l, func(u string) bool { return strings.HasPrefix(u, prefix) })
		}
	}
	host := dial("alice", "host", "1.1", client.Options{
		ICEServers: only("turn:127.0.0.1:" + strconv.Itoa(turnPort) + "?transport=udp"), ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	})
	pub, err := client.NewSyntheticPublisher(client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Publish(tctx, pub.Tracks()...); err != nil {
		t.Fatal(err)
	}
	pub.Start()
	defer pub.Stop()

	tcpOnly := client.LoopbackSettingEngine()
	tcpOnly.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	viewers := []*client.Client{
		dial("bob", "viewer", "", client.Options{ // a 1.0 session
			ICEServers: only("turn:127.0.0.1:" + strconv.Itoa(turnPort) + "?transport=tcp"), ICETransportPolicy: webrtc.ICETransportPolicyRelay,
		}),
		dial("carol", "viewer", "1.1", client.Options{SettingEngine: &tcpOnly}),
	}
	for i, v := range viewers {
		rt, err := v.WaitTrack(tctx, "video", nil)
		if err != nil {
			t.Fatalf("viewer %d: no video: %v", i, err)
		}
		for rt.Packets() < 20 {
			if tctx.Err() != nil {
				t.Fatalf("viewer %d: %d video packets", i, rt.Packets())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want := map[string]float64{"turn_udp": 1, "turn_tcp": 1, "tcp": 1, "udp": 0}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := scrapeConnections(t, "http://"+addr+"/metrics")
		ok := true
		for tr, n := range want {
			if got[tr] != n {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relayd_ice_connections_total %v, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var connLine = regexp.MustCompile(`(?m)^relayd_ice_connections_total\{transport="([a-z_]+)"\} ([0-9.e+]+)$`)

func scrapeConnections(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // a test on loopback
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, m := range connLine.FindAllStringSubmatch(string(b), -1) {
		f, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] = f
	}
	return out
}
