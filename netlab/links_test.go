package netlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	Register("udpfrom", udpFrom)
	Register("flood", flood)
}

// flood (args: dst n) sends n datagrams of 1200 bytes to dst as fast as it
// can and prints "ok <the most bytes its socket held unsent>" (SIOCOUTQ:
// the send buffer in use).
func flood(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errors.New("usage: flood dst n")
	}
	n, _ := strconv.Atoi(args[1])
	dst, err := net.ResolveUDPAddr("udp4", args[0])
	if err != nil {
		return err
	}
	// Unconnected: the client's port unreachable answers are not errors.
	c, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	most := 0
	buf := make([]byte, 1200)
	for range n {
		if _, err := c.WriteToUDP(buf, dst); err != nil {
			return err
		}
		_ = raw.Control(func(fd uintptr) {
			if q, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
				most = max(most, q)
			}
		})
	}
	fmt.Println("ok", most)
	return nil
}

// udpFrom (args: src dst n) sends n datagrams from a socket bound to src
// to dst and prints "ok <replies> <the first reply>".
func udpFrom(ctx context.Context, args []string) error {
	if len(args) != 3 {
		return errors.New("usage: udpfrom src dst n")
	}
	n, _ := strconv.Atoi(args[2])
	c, err := net.ListenPacket("udp4", net.JoinHostPort(args[0], "0"))
	if err != nil {
		return err
	}
	defer c.Close()
	dst, err := net.ResolveUDPAddr("udp4", args[1])
	if err != nil {
		return err
	}
	for range n {
		if _, err := c.WriteTo([]byte("probe"), dst); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	replies, first := 0, ""
	buf := make([]byte, 256)
	for replies < n {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		k, _, err := c.ReadFrom(buf)
		if err != nil {
			break
		}
		if replies == 0 {
			first = string(buf[:k])
		}
		replies++
	}
	fmt.Println("ok", replies, first)
	return nil
}

// linkPackets reads an interface's rx and tx packet counters.
func linkPackets(t *testing.T, ns, dev string) (rx, tx int64) {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev).Output()
	if err != nil {
		t.Fatalf("ip -s link show %s in %s: %v", dev, ns, err)
	}
	var links []struct {
		Stats struct {
			RX struct{ Packets int64 } `json:"rx"`
			TX struct{ Packets int64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j link: %q: %v", out, err)
	}
	return links[0].Stats.RX.Packets, links[0].Stats.TX.Packets
}

// TestLinksAreSeparatePaths gives a client two links and sends from each
// address in turn: the datagrams and their replies cross that address's
// own link (the router's end of it counts them), not the other one, and
// the server sees that address. This is what lets one client namespace
// hold several participants, each behind its own link and caps.
func TestLinksAreSeparatePaths(t *testing.T) {
	l := newLab(t, "none")
	c := l.Client(1)
	startServer(t, l)
	if _, err := c.AddLink(context.Background()); err != nil {
		t.Fatal(err)
	}
	addrs := c.Addrs()
	const n = 100
	for k, a := range addrs {
		own, other := serverIf(1, k+1), serverIf(1, 2-k)
		ownRX0, ownTX0 := linkPackets(t, l.router.NS(), own)
		otherRX0, otherTX0 := linkPackets(t, l.router.NS(), other)
		out := startChild(t, &c.Node, "udpfrom", a.String(), udpAddr, strconv.Itoa(n)).wait()
		if len(out) != 1 {
			t.Fatalf("udpfrom %s: %q", a, out)
		}
		f := strings.Fields(out[0])
		if len(f) != 3 || f[0] != "ok" || f[1] != strconv.Itoa(n) {
			t.Fatalf("from %s: %q, want ok %d <address>", a, out[0], n)
		}
		if got := seenHost(t, f[2]); got != a {
			t.Errorf("from %s: the server saw %s", a, got)
		}
		ownRX, ownTX := linkPackets(t, l.router.NS(), own)
		otherRX, otherTX := linkPackets(t, l.router.NS(), other)
		if ownRX-ownRX0 < n || ownTX-ownTX0 < n {
			t.Errorf("from %s: its link %s carried %d up and %d down, want at least %d each", a, own, ownRX-ownRX0, ownTX-ownTX0, n)
		}
		// ARP may cross the other link; the datagrams must not.
		if otherRX-otherRX0 >= n/10 || otherTX-otherTX0 >= n/10 {
			t.Errorf("from %s: the other link %s carried %d up and %d down", a, other, otherRX-otherRX0, otherTX-otherTX0)
		}
	}
	// Removing a link removes its routing rule too.
	if err := c.RemoveLink(context.Background(), addrs[0]); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-n", c.NS(), "rule", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "from "+addrs[0].String()+" ") || !strings.Contains(string(out), "from "+addrs[1].String()+" ") {
		t.Errorf("rules after removing %s:\n%s", addrs[0], out)
	}
}

// TestCapQueueIsNotTheSenders: a server flooding a capped client (1 Mbit/s,
// a 2 s queue: 250 KB) does not find that queue in its own socket's send
// buffer. The queue is in the router, as on a real network; with the caps
// on the server's side of a bridge (netlab's first design) the socket held
// all of it (over 200 KB) and its sends blocked.
func TestCapQueueIsNotTheSenders(t *testing.T) {
	l := newLab(t, "cap=1mbit,queue=2s")
	out := startChild(t, l.Server(), "flood", l.Client(1).Addr().String()+":9", "2000").wait()
	if len(out) != 1 {
		t.Fatalf("flood: %q", out)
	}
	most, err := strconv.Atoi(strings.TrimPrefix(out[0], "ok "))
	if err != nil {
		t.Fatalf("flood: %q", out[0])
	}
	// A few packets may sit there between the send and the router.
	if most > 32<<10 {
		t.Errorf("the sender's socket held up to %d bytes unsent: the capped link's queue counts against it", most)
	}
	t.Logf("the sender's socket held at most %d bytes", most)
}
