package turnsrv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/metrics"
)

// testTURN is a Server on loopback with every listener, and a UDP socket
// standing for relayd's media port (its one peer).
type testTURN struct {
	s      *Server
	m      *metrics.Metrics
	media  net.PacketConn
	secret []byte
	skew   atomic.Int64 // added to the server's clock
}

func newTestTURN(t *testing.T) *testTURN {
	t.Helper()
	return newTestTURNWith(t, nil)
}

// newTestTURNWith is newTestTURN with mod applied to the Config.
func newTestTURNWith(t *testing.T, mod func(c *Config, media netip.AddrPort)) *testTURN {
	t.Helper()
	tt := &testTURN{m: metrics.New(), secret: []byte("turn-test-secret")}
	var err error
	tt.media, err = net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tt.media.Close() })
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsRaw, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	media := tt.media.LocalAddr().(*net.UDPAddr).AddrPort()
	cfg := Config{
		Secret: tt.secret, Host: "127.0.0.1",
		UDP: udp, TCP: tcp, TLS: tls.NewListener(tlsRaw, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}),
		RelayIP: net.IPv4(127, 0, 0, 1),
		Peers:   []netip.AddrPort{media},
		Now:     func() time.Time { return time.Now().Add(time.Duration(tt.skew.Load())) },
		Metrics: tt.m,
	}
	if mod != nil {
		mod(&cfg, media)
	}
	tt.s, err = Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tt.s.Close() })
	return tt
}

// selfSigned is a certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
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
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// client is a TURN client of tt over transport ("udp", "tcp" or "tls").
func (tt *testTURN) client(t *testing.T, transport, user, pass string) *turn.Client {
	t.Helper()
	var conn net.PacketConn
	var server string
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn, server = c, tt.s.cfg.UDP.LocalAddr().String()
	case "tcp":
		server = tt.s.cfg.TCP.Addr().String()
		c, err := net.Dial("tcp4", server)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	case "tls":
		server = tt.s.cfg.TLS.Addr().String()
		c, err := tls.Dial("tcp4", server, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test's own self-signed certificate
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: server, STUNServerAddr: server, Conn: conn,
		Username: user, Password: pass, Realm: Realm,
		RTO:           200 * time.Millisecond,
		LoggerFactory: &logging.DefaultLoggerFactory{Writer: discard{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		conn.Close()
	})
	return c
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (tt *testTURN) refusals(reason string) float64 {
	return testutil.ToFloat64(tt.m.Net.TURNRefusals.WithLabelValues(reason))
}

// exchange sends through relay to the media socket and back. A round may
// be lost while pion's client binds a channel (the server may use the
// channel before the client has read its ChannelBind answer; over TCP the
// first ChannelData after the bind can be lost too): it retries, as media
// does.
func (tt *testTURN) exchange(t *testing.T, relay net.PacketConn) {
	t.Helper()
	buf := make([]byte, 1500)
	var err error
	for range 5 {
		if _, err = relay.WriteTo([]byte("ping"), tt.media.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = tt.media.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, rerr := tt.media.ReadFrom(buf)
		if rerr != nil || string(buf[:n]) != "ping" {
			err = rerr
			continue
		}
		if from.String() != relay.LocalAddr().String() {
			t.Errorf("media got it from %v, want the relay address %v", from, relay.LocalAddr())
		}
		if _, err := tt.media.WriteTo([]byte("pong"), from); err != nil {
			t.Fatal(err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err = relay.ReadFrom(buf)
		if err == nil && string(buf[:n]) == "pong" {
			return
		}
	}
	t.Fatalf("no relayed answer: %v", err)
}

func TestRelaysToMediaOverEveryTransport(t *testing.T) {
	for _, tc := range []struct{ transport, label, alloc string }{
		{"udp", TransportUDP, "udp"}, {"tcp", TransportTCP, "tcp"}, {"tls", TransportTLS, "tls"},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			tt := newTestTURN(t) // a media socket of its own: no late packet of another
			ice := tt.s.ICEServers("alice", time.Now().Add(time.Hour))
			c := tt.client(t, tc.transport, ice[0].Username, ice[0].Credential)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer relay.Close()
			ra := relay.LocalAddr().(*net.UDPAddr)
			if got := tt.s.TransportOf(ra.IP, ra.Port); got != tc.label {
				t.Errorf("TransportOf(relay) = %q, want %q", got, tc.label)
			}
			if got := testutil.ToFloat64(tt.m.Net.TURNAllocations.WithLabelValues(tc.alloc)); got != 1 {
				t.Errorf("relayd_turn_allocations{%s} = %v, want 1", tc.alloc, got)
			}
			tt.exchange(t, relay)
		})
	}
}

func TestICEServers(t *testing.T) {
	tt := newTestTURN(t)
	exp := time.Unix(1800000000, 0)
	got := tt.s.ICEServers("bob", exp)
	if len(got) != 1 {
		t.Fatalf("%d servers, want 1", len(got))
	}
	want := []string{
		"turn:" + tt.s.cfg.UDP.LocalAddr().String() + "?transport=udp",
		"turn:" + tt.s.cfg.TCP.Addr().String() + "?transport=tcp",
		"turns:" + tt.s.cfg.TLS.Addr().String() + "?transport=tcp",
	}
	if len(got[0].URLs) != 3 || got[0].URLs[0] != want[0] || got[0].URLs[1] != want[1] || got[0].URLs[2] != want[2] {
		t.Errorf("urls %q, want %q", got[0].URLs, want)
	}
	if got[0].Username != "1800000000:bob" || got[0].Credential != password(tt.secret, "1800000000:bob") {
		t.Errorf("credential %q/%q", got[0].Username, got[0].Credential)
	}
}

func TestRefusesPeersThatAreNotRelayd(t *testing.T) {
	tt := newTestTURN(t)
	ice := tt.s.ICEServers("mallory", time.Now().Add(time.Hour))
	c := tt.client(t, "udp", ice[0].Username, ice[0].Credential)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	// Another IP: the permission is refused.
	other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 9}
	if err := c.CreatePermission(other); err == nil {
		t.Error("a permission to 127.0.0.2 was granted")
	}
	if got := tt.refusals(reasonPeer); got < 1 {
		t.Errorf("refusals{peer} = %v, want >= 1", got)
	}

	// relayd's IP, another port (a service beside relayd): permitted by
	// IP, but nothing reaches it.
	victim, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	for range 3 {
		if _, err := relay.WriteTo([]byte("attack"), victim.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	_ = victim.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, from, err := victim.ReadFrom(make([]byte, 1500)); err == nil {
		t.Fatalf("a port beside relayd's got %d bytes from %v", n, from)
	}
	waitFor(t, func() bool { return tt.refusals(reasonPeerPort) >= 3 }, "refusals{peer_port} >= 3")

	// And the media port still works for this allocation.
	tt.exchange(t, relay)
}

func TestRefusesExpiredForgedAndMalformedCredentials(t *testing.T) {
	tt := newTestTURN(t)
	for _, tc := range []struct {
		name, user, pass, reason string
	}{
		{"expired", "", "", reasonExpired},
		{"forged", "", "forged", reasonForged},
		{"malformed", "alice", "x", reasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user, pass := tc.user, tc.pass
			switch tc.name {
			case "expired":
				user, pass = Credential(tt.secret, "alice", time.Now().Add(-time.Minute))
			case "forged":
				user, _ = Credential(tt.secret, "alice", time.Now().Add(time.Hour))
				// the right scheme, another secret
				pass = password([]byte("not the secret"), user)
			}
			before := tt.refusals(tc.reason)
			c := tt.client(t, "udp", user, pass)
			if relay, err := c.Allocate(); err == nil {
				relay.Close()
				t.Fatal("allocated")
			}
			if got := tt.refusals(tc.reason); got <= before {
				t.Errorf("refusals{%s} = %v, want > %v", tc.reason, got, before)
			}
		})
	}
}

func TestExpiredCredentialKeepsItsAllocation(t *testing.T) {
	tt := newTestTURN(t)
	user, pass := Credential(tt.secret, "alice", time.Now().Add(time.Minute))
	c := tt.client(t, "udp", user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	tt.skew.Store(int64(time.Hour)) // the credential has expired
	// The allocation's own requests still authenticate...
	if err := c.CreatePermission(tt.media.LocalAddr()); err != nil {
		t.Fatalf("a permission for the live allocation: %v", err)
	}
	tt.exchange(t, relay)
	// ... but nobody allocates with it any more.
	c2 := tt.client(t, "udp", user, pass)
	if r2, err := c2.Allocate(); err == nil {
		r2.Close()
		t.Fatal("a new allocation with an expired credential")
	}
}

func TestPeerVerdict(t *testing.T) {
	media := netip.MustParseAddrPort("198.18.0.1:8801")
	peers := map[netip.AddrPort]bool{media: true}
	ips := map[netip.Addr]bool{media.Addr(): true}
	for _, tc := range []struct {
		addr, want string
	}{
		{"198.18.0.1:8801", ""},
		{"[::ffff:198.18.0.1]:8801", ""},
		{"198.18.0.1:8800", reasonPeerPort},
		{"198.18.0.1:53", reasonPeerPort},
		{"198.18.0.2:8801", reasonPeer},
		{"10.0.0.1:8801", reasonPeer},
	} {
		if got := peerVerdict(peers, ips, netip.MustParseAddrPort(tc.addr)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestMediaAddrs(t *testing.T) {
	ifaces := []netip.Addr{
		netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("198.18.0.1"),
		netip.MustParseAddr("169.254.1.1"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::1"),
	}
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	for _, tc := range []struct {
		name     string
		bound    string
		public   string
		loopback bool
		want     []netip.AddrPort
	}{
		{"bound", "198.18.0.1", "", false, []netip.AddrPort{ap("198.18.0.1:8801")}},
		{"every interface", "0.0.0.0", "", false, []netip.AddrPort{ap("198.18.0.1:8801")}},
		{"every interface with loopback", "", "", true, []netip.AddrPort{ap("127.0.0.1:8801"), ap("198.18.0.1:8801")}},
		{"public ip", "0.0.0.0", "203.0.113.7", false, []netip.AddrPort{ap("198.18.0.1:8801"), ap("203.0.113.7:8801")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bound, public netip.Addr
			if tc.bound != "" {
				bound = netip.MustParseAddr(tc.bound)
			}
			if tc.public != "" {
				public = netip.MustParseAddr(tc.public)
			}
			got := mediaAddrs(bound, 8801, public, tc.loopback, ifaces)
			if len(got) != len(tc.want) {
				t.Fatalf("%v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("%v, want %v", got, tc.want)
				}
			}
		})
	}
	if got := RelayIP(netip.Addr{}, []netip.AddrPort{ap("127.0.0.1:1"), ap("198.18.0.1:1")}); got.String() != "198.18.0.1" {
		t.Errorf("RelayIP = %v, want the first non-loopback media address", got)
	}
	if got := RelayIP(netip.MustParseAddr("203.0.113.7"), nil); got.String() != "203.0.113.7" {
		t.Errorf("RelayIP = %v, want the public IP", got)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAllocationQuotaPerCredential(t *testing.T) {
	tt := newTestTURN(t)
	user, pass := Credential(tt.secret, "alice", time.Now().Add(time.Hour))
	for i := range maxAllocationsPerUser {
		relay, err := tt.client(t, "udp", user, pass).Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
		defer relay.Close()
	}
	if relay, err := tt.client(t, "udp", user, pass).Allocate(); err == nil {
		relay.Close()
		t.Fatalf("allocation %d with one credential", maxAllocationsPerUser+1)
	}
	if got := tt.refusals(reasonQuota); got != 1 {
		t.Errorf("refusals{quota} = %v, want 1", got)
	}
	// Another identity's credential is not held back.
	u2, p2 := Credential(tt.secret, "bob", time.Now().Add(time.Hour))
	relay, err := tt.client(t, "udp", u2, p2).Allocate()
	if err != nil {
		t.Fatalf("bob: %v", err)
	}
	relay.Close()
}

func TestNAT(t *testing.T) {
	pub, loc := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("10.0.0.5")
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name         string
		pub, loc     netip.Addr
		a, out, inTo string
	}{
		{"public to local", pub, loc, "203.0.113.7:8801", "10.0.0.5:8801", "203.0.113.7:8801"},
		{"local back to public", pub, loc, "10.0.0.5:8801", "10.0.0.5:8801", "203.0.113.7:8801"},
		{"another address", pub, loc, "10.0.0.6:8801", "10.0.0.6:8801", "10.0.0.6:8801"},
		{"no NAT", netip.Addr{}, netip.Addr{}, "203.0.113.7:8801", "203.0.113.7:8801", "203.0.113.7:8801"},
		{"mapped form", pub, loc, "[::ffff:203.0.113.7]:1", "10.0.0.5:1", "[::ffff:203.0.113.7]:1"},
	} {
		if got := natOut(ap(tc.a), tc.pub, tc.loc); got != ap(tc.out) {
			t.Errorf("%s: natOut(%s) = %v, want %s", tc.name, tc.a, got, tc.out)
		}
		if got := natIn(ap(tc.a), tc.pub, tc.loc); got != ap(tc.inTo) {
			t.Errorf("%s: natIn(%s) = %v, want %s", tc.name, tc.a, got, tc.inTo)
		}
	}
}

// Behind 1:1 NAT (--public-ip) relayd's candidates and the relayed
// addresses announce the public IP; the client's permission names it, and
// the relay reaches relayd's media port at its local address without a
// hairpin through the NAT (here 127.0.0.2 plays the public address: nothing
// is ever sent to it).
func TestRelaysBehindNAT(t *testing.T) {
	public := netip.MustParseAddr("127.0.0.2")
	tt := newTestTURNWith(t, func(c *Config, media netip.AddrPort) {
		c.PublicIP, c.LocalIP = public, media.Addr()
		c.RelayIP, c.RelayBind = public.AsSlice(), media.Addr().String()
		c.Peers = append(c.Peers, netip.AddrPortFrom(public, media.Port()))
	})
	ice := tt.s.ICEServers("alice", time.Now().Add(time.Hour))
	c := tt.client(t, "udp", ice[0].Username, ice[0].Credential)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	ra := relay.LocalAddr().(*net.UDPAddr)
	if !ra.IP.Equal(public.AsSlice()) {
		t.Fatalf("relayed address %v, want the public IP", ra)
	}
	mediaPublic := &net.UDPAddr{IP: public.AsSlice(), Port: tt.media.LocalAddr().(*net.UDPAddr).Port}
	buf := make([]byte, 1500)
	for range 5 {
		if _, err := relay.WriteTo([]byte("ping"), mediaPublic); err != nil {
			t.Fatal(err)
		}
		_ = tt.media.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := tt.media.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "ping" {
			continue
		}
		fa := from.(*net.UDPAddr)
		if !fa.IP.IsLoopback() || fa.Port != ra.Port {
			t.Fatalf("media got the ping from %v, want the relay socket's local address (port %d)", from, ra.Port)
		}
		if got := tt.s.TransportOf(fa.IP, fa.Port); got != TransportUDP {
			t.Errorf("TransportOf(the relay's local address) = %q, want %q", got, TransportUDP)
		}
		if _, err := tt.media.WriteTo([]byte("pong"), from); err != nil {
			t.Fatal(err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(time.Second))
		n, src, err := relay.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "pong" {
			continue
		}
		if src.String() != mediaPublic.String() {
			t.Errorf("the client got the answer from %v, want relayd's public address %v", src, mediaPublic)
		}
		return
	}
	t.Fatal("no relayed exchange behind the NAT")
}
