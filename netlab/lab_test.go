package netlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	registerTestFuncs()
	MaybeRunChild() // a re-executed child never returns from here
	goleak.VerifyTestMain(checkLeftovers{m})
}

// checkLeftovers runs the tests, then fails the run if any namespace of
// this process is left: `ip netns list` must show nothing of ours after.
type checkLeftovers struct{ m *testing.M }

func (e checkLeftovers) Run() int {
	code := e.m.Run()
	if Available() != nil {
		return code
	}
	left, err := ourNamespaces()
	if err != nil || len(left) > 0 {
		fmt.Fprintf(os.Stderr, "netlab: namespaces left after the tests: %v %v\n", left, err)
		return 1
	}
	return code
}

// ourNamespaces lists the namespaces named after this process.
func ourNamespaces() ([]string, error) {
	all, err := namespaces(context.Background())
	var ours []string
	for _, ns := range all {
		if pid, ok := labPID(ns); ok && pid == os.Getpid() {
			ours = append(ours, ns)
		}
	}
	return ours, err
}

// newLab makes a lab for one test, removed at its end, or skips the test
// when labs cannot be made here.
func newLab(t *testing.T, profiles ...string) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	var spec Spec
	for _, s := range profiles {
		p, err := ParseProfile(s)
		if err != nil {
			t.Fatal(err)
		}
		spec.Clients = append(spec.Clients, p)
	}
	spec.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	l, err := New(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// testWriter sends the lab's log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// Ports the serve child listens on at the server address.
var (
	udpAddr  = ServerAddr().String() + ":9000"
	tcpAddr  = ServerAddr().String() + ":8080"
	tcpAddr2 = ServerAddr().String() + ":8443"
)

func startServer(t *testing.T, l *Lab) *child {
	t.Helper()
	s := startChild(t, l.Server(), "serve", udpAddr, tcpAddr, tcpAddr2)
	if got := s.line(); got != "ready" {
		t.Fatalf("server said %q, want ready", got)
	}
	return s
}

// expectOK runs a probe that should succeed, retrying twice: a loaded
// machine can make a probe time out, but nothing can make one succeed that
// should fail. It returns the answer after "ok ".
func expectOK(t *testing.T, c *child, command string) string {
	t.Helper()
	var got string
	for range 3 {
		got = c.do(command)
		if out, ok := strings.CutPrefix(got, "ok "); ok {
			return out
		}
	}
	t.Fatalf("%s: %q, want ok", command, got)
	return ""
}

// expectFail runs a probe that should fail and returns the error text.
func expectFail(t *testing.T, c *child, command string) string {
	t.Helper()
	got := c.do(command)
	out, ok := strings.CutPrefix(got, "fail ")
	if !ok {
		t.Fatalf("%s: %q, want fail", command, got)
	}
	return out
}

// seenHost is the host part of an address a serve child reported.
func seenHost(t *testing.T, hostport string) netip.Addr {
	t.Helper()
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		t.Fatalf("server saw %q: %v", hostport, err)
	}
	return ap.Addr()
}

func TestEcho(t *testing.T) {
	l := newLab(t, "none")
	c := l.Client(1)
	startServer(t, l)
	cl := startChild(t, &c.Node, "client")
	for _, probe := range []string{"udp " + udpAddr, "tcp " + tcpAddr} {
		if got := seenHost(t, expectOK(t, cl, probe)); got != c.Addr() {
			t.Errorf("%s: server saw %s, want the client's %s", probe, got, c.Addr())
		}
	}
	if want := netip.MustParseAddr("198.18.1.1"); c.Addr() != want {
		t.Errorf("client 1 address %s, want %s", c.Addr(), want)
	}
}

// measured is a transfer's rate in bits per second from a client's
// "<bytes> <seconds>" answer.
func measured(t *testing.T, answer string) float64 {
	t.Helper()
	f := strings.Fields(answer)
	if len(f) != 2 {
		t.Fatalf("transfer answered %q", answer)
	}
	bytes, err1 := strconv.ParseFloat(f[0], 64)
	secs, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || secs <= 0 {
		t.Fatalf("transfer answered %q", answer)
	}
	return bytes * 8 / secs
}

// TestCap checks that a cap limits throughput, per direction, and can be
// lifted at run time. The bound that matters is the upper one (a tbf never
// lets more through, however loaded the machine); the lower one is loose,
// since a loaded machine can only make a transfer slower; and an uncapped
// transfer must beat the upper bound, or the test could not fail.
func TestCap(t *testing.T) {
	const down, up = 8_000_000, 4_000_000
	l := newLab(t, "down=8mbit,up=4mbit", "none")
	startServer(t, l)
	capped := startChild(t, &l.Client(1).Node, "client")
	free := startChild(t, &l.Client(2).Node, "client")

	// About a second each at the cap.
	const downBytes, upBytes = 1 << 20, 512 << 10
	check := func(name string, got, cap float64) {
		t.Helper()
		t.Logf("%s: %.2f Mbit/s (cap %.0f Mbit/s)", name, got/1e6, cap/1e6)
		if got > 1.3*cap || got < 0.3*cap {
			t.Errorf("%s: %.2f Mbit/s, want %.1f..%.1f (cap %.0f)", name, got/1e6, 0.3*cap/1e6, 1.3*cap/1e6, cap/1e6)
		}
	}
	check("capped download", measured(t, expectOK(t, capped, fmt.Sprintf("download %s %d", tcpAddr, downBytes))), down)
	check("capped upload", measured(t, expectOK(t, capped, fmt.Sprintf("upload %s %d", tcpAddr, upBytes))), up)

	uncapped := measured(t, expectOK(t, free, fmt.Sprintf("download %s %d", tcpAddr, downBytes)))
	t.Logf("uncapped download: %.0f Mbit/s", uncapped/1e6)
	if uncapped <= 1.3*down {
		t.Errorf("uncapped download %.2f Mbit/s, not above the capped bound %.1f", uncapped/1e6, 1.3*down/1e6)
	}

	// Lift the download cap at run time; the upload cap stays.
	if err := l.Client(1).SetProfile(context.Background(), Profile{Up: up}); err != nil {
		t.Fatal(err)
	}
	if got := measured(t, expectOK(t, capped, fmt.Sprintf("download %s %d", tcpAddr, downBytes))); got <= 1.3*down {
		t.Errorf("download after lifting the cap %.2f Mbit/s, want above %.1f", got/1e6, 1.3*down/1e6)
	}
	check("upload after lifting the download cap", measured(t, expectOK(t, capped, fmt.Sprintf("upload %s %d", tcpAddr, upBytes))), up)
}

// TestLoss sends 2000 datagrams through 20% loss up and 10% down: the
// server's count measures the first, the replies the second. The bounds
// are 6 standard deviations and more wide.
func TestLoss(t *testing.T) {
	l := newLab(t, "loss-up=20%,loss-down=10%")
	srv := startServer(t, l)
	cl := startChild(t, &l.Client(1).Node, "client")
	const n = 2000
	replies, err := strconv.Atoi(expectOK(t, cl, fmt.Sprintf("blast %s %d", udpAddr, n)))
	if err != nil {
		t.Fatal(err)
	}
	var received int
	for _, line := range srv.stop() {
		if v, ok := strings.CutPrefix(line, "udp-count "); ok {
			received, _ = strconv.Atoi(v)
		}
	}
	if received == 0 {
		t.Fatal("server reported no count")
	}
	upLoss := 1 - float64(received)/n
	downLoss := 1 - float64(replies)/float64(received)
	t.Logf("sent %d, server got %d (loss %.1f%%), replies %d (loss %.1f%%)", n, received, 100*upLoss, replies, 100*downLoss)
	if upLoss < 0.12 || upLoss > 0.28 {
		t.Errorf("upload loss %.1f%%, want 20%% (12..28)", 100*upLoss)
	}
	if downLoss < 0.05 || downLoss > 0.15 {
		t.Errorf("download loss %.1f%%, want 10%% (5..15)", 100*downLoss)
	}
}

func TestFirewall(t *testing.T) {
	l := newLab(t, "udp=blocked", "only-tcp=8443", "only-tcp=8443+8080")
	startServer(t, l)
	noUDP := startChild(t, &l.Client(1).Node, "client")
	tcpOnly := startChild(t, &l.Client(2).Node, "client")
	twoPorts := startChild(t, &l.Client(3).Node, "client")

	expectOK(t, twoPorts, "tcp "+tcpAddr2)
	expectOK(t, twoPorts, "tcp "+tcpAddr)
	expectFail(t, twoPorts, "udp "+udpAddr)

	expectFail(t, noUDP, "udp "+udpAddr)
	expectOK(t, noUDP, "tcp "+tcpAddr)

	expectOK(t, tcpOnly, "tcp "+tcpAddr2)
	expectFail(t, tcpOnly, "tcp "+tcpAddr)
	expectFail(t, tcpOnly, "udp "+udpAddr)

	// Unblocking at run time.
	if err := l.Client(1).SetProfile(context.Background(), Profile{}); err != nil {
		t.Fatal(err)
	}
	expectOK(t, noUDP, "udp "+udpAddr)
	if p := l.Client(1).Profile(); p != (Profile{}) {
		t.Errorf("profile after SetProfile = %v", p)
	}
}

// TestCutRestore cuts a client off and back: probes fail silently (a
// timeout, not an error from the sender's own stack), and a TCP connection
// open across the cut carries on after it.
func TestCutRestore(t *testing.T) {
	l := newLab(t, "none")
	c := l.Client(1)
	startServer(t, l)
	cl := startChild(t, &c.Node, "client")
	ctx := context.Background()
	expectOK(t, cl, "open "+tcpAddr)
	if got := expectOK(t, cl, "say before"); got != "before" {
		t.Fatalf("echo %q", got)
	}
	if err := c.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	if got := expectFail(t, cl, "udp "+udpAddr); !strings.Contains(got, "timeout") {
		t.Errorf("udp during a cut: %q, want a timeout (silent drop, no error to the sender)", got)
	}
	expectFail(t, cl, "tcp "+tcpAddr)
	// Said during the cut; TCP retransmits it once the link is back.
	if _, err := fmt.Fprintln(cl.stdin, "say during"); err != nil {
		t.Fatal(err)
	}
	if err := c.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if got := cl.line(); got != "ok during" {
		t.Errorf("echo over the connection held across the cut: %q, want ok during", got)
	}
	expectOK(t, cl, "udp "+udpAddr)
}

func TestHandover(t *testing.T) {
	l := newLab(t, "cap=2mbit")
	c := l.Client(1)
	ctx := context.Background()
	startServer(t, l)
	cl := startChild(t, &c.Node, "client")
	first := c.Addr()
	if got := seenHost(t, expectOK(t, cl, "udp "+udpAddr)); got != first {
		t.Fatalf("server saw %s, want %s", got, first)
	}

	// A second link: new connections leave from it, the old one still works.
	second, err := c.AddLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second == first || c.Addr() != second || !slices.Equal(c.Addrs(), []netip.Addr{first, second}) {
		t.Fatalf("after AddLink: %s, Addr %s, Addrs %v", second, c.Addr(), c.Addrs())
	}
	if got := seenHost(t, expectOK(t, cl, "udp "+udpAddr)); got != second {
		t.Errorf("after AddLink the server saw %s, want %s", got, second)
	}

	third, err := c.Handover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Addrs(), []netip.Addr{third}) {
		t.Fatalf("after Handover: Addrs %v, want [%s]", c.Addrs(), third)
	}
	if got := seenHost(t, expectOK(t, cl, "tcp "+tcpAddr)); got != third {
		t.Errorf("after Handover the server saw %s, want %s", got, third)
	}
	// The new link carries the profile's caps, both ends.
	for _, end := range [][]string{{c.NS(), "eth3"}, {l.router.NS(), "c1l3"}} {
		out, err := exec.Command("tc", "-n", end[0], "qdisc", "show", "dev", end[1]).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "tbf") || !strings.Contains(string(out), "2Mbit") {
			t.Errorf("%s %s: qdisc %q %v, want tbf 2Mbit", end[0], end[1], out, err)
		}
	}
	if err := c.RemoveLink(ctx, third); err == nil {
		t.Error("removing the last link succeeded")
	}
	if err := c.RemoveLink(ctx, first); err == nil {
		t.Error("removing a link already gone succeeded")
	}
}

// TestGoFuncSeesOnlyItsNamespace runs a registered function in each kind of
// namespace: it sees that namespace's interfaces, nothing of the root's.
func TestGoFuncSeesOnlyItsNamespace(t *testing.T) {
	l := newLab(t, "none")
	for _, tt := range []struct {
		node *Node
		want []string
	}{
		{&l.Client(1).Node, []string{"lo 127.0.0.1/8 ::1/128", "eth1 198.18.1.1/16"}},
		{l.Server(), []string{"lo 127.0.0.1/8 ::1/128", "s0 198.18.0.1/16"}},
	} {
		got := startChild(t, tt.node, "ifaces").wait()
		if !slices.Equal(got, tt.want) {
			t.Errorf("interfaces in %s: %q, want %q", tt.node.NS(), got, tt.want)
		}
	}
	if _, err := l.Server().GoCommand(context.Background(), "no-such-func"); err == nil {
		t.Error("GoCommand of an unregistered function succeeded")
	}
}

// TestStaleCleanup leaves a namespace named for a dead process and one for
// a live one (the test runner that started us): New removes the first only.
func TestStaleCleanup(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	staleNS := labName(dead.Process.Pid, 1) + "-s"
	liveNS := labName(os.Getppid(), 1) + "-s"
	for _, ns := range []string{staleNS, liveNS} {
		if err := run(context.Background(), "", "ip", "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = run(context.Background(), "", "ip", "netns", "del", ns) })
	}
	newLab(t, "none")
	all, err := namespaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(all, staleNS) {
		t.Errorf("stale %s survived New", staleNS)
	}
	if !slices.Contains(all, liveNS) {
		t.Errorf("%s of a live process was removed", liveNS)
	}
}

// TestNewUndoesFailure makes New fail halfway (the second client's
// namespace name is taken) and checks nothing of the lab is left.
func TestNewUndoesFailure(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	next := labName(os.Getpid(), labSeq.Load()+1)
	if err := run(context.Background(), "", "ip", "netns", "add", clientNS(next, 2)); err != nil {
		t.Fatal(err)
	}
	l, err := New(context.Background(), Spec{Clients: []Profile{{}, {}}})
	if err == nil {
		l.Close()
		t.Fatal("New succeeded with a client namespace name taken")
	}
	if !strings.Contains(err.Error(), "netns add "+clientNS(next, 2)) {
		t.Fatalf("New failed, but not where the test made it fail: %v", err)
	}
	all, err := namespaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range all {
		if strings.HasPrefix(ns, next+"-") {
			t.Errorf("%s left after a failed New", ns)
		}
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	l := newLab(t, "cap=1mbit", "udp=blocked", "none")
	ctx := context.Background()
	if _, err := l.Client(2).Handover(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	all, err := namespaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range all {
		if strings.HasPrefix(ns, l.Name()+"-") {
			t.Errorf("%s left after Close", ns)
		}
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.Client(1).SetProfile(ctx, Profile{}); !errors.Is(err, ErrClosed) {
		t.Errorf("SetProfile after Close: %v, want ErrClosed", err)
	}
	if err := l.Client(1).Cut(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Cut after Close: %v, want ErrClosed", err)
	}
}

func TestNewRejectsBadSpecs(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []Spec{
		{},
		{Clients: make([]Profile, MaxClients+1)},
		{Clients: []Profile{{LossUp: 200}}},
	} {
		if l, err := New(ctx, spec); err == nil {
			l.Close()
			t.Errorf("New(%d clients) succeeded", len(spec.Clients))
		}
	}
}
