package netlab

// The pure half of the lab: names, addresses, and the tc and iptables
// configurations a profile turns into. lab.go only runs what these return.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Addressing (all inside 198.18.0.0/15, the range RFC 2544 sets aside for
// benchmarks): the server is 198.18.0.1/16; client i (1..MaxClients)
// gets 198.18.i.k on its k-th link (k counts up on each AddLink/Handover,
// 1..maxLinks, never reused), so 198.18.i.0/24 is "everything client i ever
// sends from", which is what the server's per-client firewall chain matches.
const (
	MaxClients = 250
	maxLinks   = 250
	prefixLen  = 16
)

// MaxLinks is how many links a client can have over its life.
const MaxLinks = maxLinks

// ServerAddr is where every client reaches the server namespace.
func ServerAddr() netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, 1}) }

// labNet is the lab's one subnet, 198.18.0.0/16.
func labNet() netip.Prefix { return netip.PrefixFrom(ServerAddr(), prefixLen).Masked() }

// Net is the lab's one subnet, 198.18.0.0/16: every address of every lab is
// in it. Programs inside a lab filter their ICE candidates with it.
func Net() netip.Prefix { return labNet() }

// clientAddr is client i's address on its link k.
func clientAddr(i, k int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(i), byte(k)})
}

// clientNet is the /24 that all of client i's addresses come from.
func clientNet(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24)
}

// Interface names live inside the lab's own namespaces, so they only need to
// be unique there; Linux allows 15 characters. The server's one link to the
// router is "s0" (server side) and "r0" (router side); in the router
// namespace the end of client i's link k is "c<i>l<k>" (at most "c250l250",
// 8); in the client namespace it is "eth<k>".
const (
	serverLink = "s0"
	routerLink = "r0"
)

// routerAddr is the router's own address, on r0: only the source of its
// ARP requests to the clients (it has no other use, and no client has it).
func routerAddr() netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 255, 254}) }

func serverIf(i, k int) string { return fmt.Sprintf("c%dl%d", i, k) }
func clientIf(k int) string    { return "eth" + strconv.Itoa(k) }

// Namespace names: "rlab<pid>x<n>" is one lab (pid of the process that made
// it, n its sequence number in that process), "-s" its server, "-r" its
// router, "-c<i>" its clients. The pid lets Cleanup tell a dead process's lab from a live one.
const labPrefix = "rlab"

func labName(pid int, n uint64) string { return fmt.Sprintf("%s%dx%d", labPrefix, pid, n) }
func serverNS(lab string) string       { return lab + "-s" }
func routerNS(lab string) string       { return lab + "-r" }
func clientNS(lab string, i int) string {
	return lab + "-c" + strconv.Itoa(i)
}

// labPID reads the pid out of a namespace name made by labName; ok is false
// for a name that is not ours.
func labPID(ns string) (pid int, ok bool) {
	rest, found := strings.CutPrefix(ns, labPrefix)
	if !found {
		return 0, false
	}
	digits, rest, found := strings.Cut(rest, "x")
	if !found || digits == "" {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != digits {
		return 0, false
	}
	seq, _, found := strings.Cut(rest, "-")
	if !found || seq == "" || strings.Trim(seq, "0123456789") != "" {
		return 0, false
	}
	return pid, true
}

// tbfArgs is the tc qdisc that caps one direction of a link at r.
//
//   - rate: the cap.
//   - burst (the bucket): how many bytes may leave back to back at veth
//     speed. 10 ms worth of the rate, so that over any window longer than
//     that the link never beats the cap (a video frame every 33 ms is paced,
//     not passed whole); but at least two full Ethernet frames, because tbf
//     drops outright a packet bigger than its bucket.
//   - latency: the queue length, as the longest a packet may wait behind the
//     cap; tc turns it into a byte limit (rate × latency + burst). This is
//     the queueing delay a client sees once its sender exceeds the cap, and
//     past it packets are tail-dropped, as a router's buffer does.
func tbfArgs(r Rate, queue time.Duration) []string {
	burst := max(2*1514, int64(r)/8/100)
	return []string{"tbf",
		"rate", strconv.FormatInt(int64(r), 10) + "bit",
		"burst", strconv.FormatInt(burst, 10),
		"latency", strconv.FormatInt(queue.Microseconds(), 10) + "us",
	}
}

// Every drop is made on the receiving side of the link: client-bound
// traffic in the client namespace's INPUT chain, server-bound traffic in
// the server namespace's INPUT chain (a chain per client, matched on the
// client's /24). Dropping in an OUTPUT chain instead would make the
// sender's sendto() fail with EPERM, which no real network does: a real
// lossy or firewalled link loses packets silently.
//
// Loopback is never filtered: programs in a namespace (a browser and its
// driver, say) talk to themselves over lo.

// dropRules is the rule bodies (after "-A <chain> ") that drop what p and
// cut say should not reach this side. peerPortFlag is the TCP flag that
// names the server's port in this direction: --dport for traffic to the
// server, --sport for traffic from it.
func dropRules(p Profile, cut bool, loss float64, peerPortFlag string) []string {
	if cut {
		return []string{"-j DROP"}
	}
	var r []string
	if p.UDPBlocked {
		r = append(r, "-p udp -j DROP")
	}
	switch {
	case p.OnlyTCPPort != 0 && p.OnlyTCPAlso != 0:
		r = append(r,
			"! -p tcp -j DROP",
			fmt.Sprintf("-p tcp -m multiport ! %ss %d,%d -j DROP", peerPortFlag, p.OnlyTCPPort, p.OnlyTCPAlso))
	case p.OnlyTCPPort != 0:
		r = append(r,
			"! -p tcp -j DROP",
			fmt.Sprintf("-p tcp -m tcp ! %s %d -j DROP", peerPortFlag, p.OnlyTCPPort))
	}
	switch {
	case loss >= 100:
		r = append(r, "-j DROP")
	case loss > 0:
		r = append(r, "-m statistic --mode random --probability "+
			strconv.FormatFloat(loss/100, 'f', -1, 64)+" -j DROP")
	}
	return r
}

// clientRuleset is the whole filter table of client namespace, for
// iptables-restore (which replaces it in one transaction).
func clientRuleset(p Profile, cut bool) string {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	b.WriteString("-A INPUT -i lo -j ACCEPT\n")
	for _, r := range dropRules(p, cut, p.LossDown, "--sport") {
		b.WriteString("-A INPUT " + r + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// clientChain is the server namespace's chain for client i's traffic.
func clientChain(i int) string { return "client" + strconv.Itoa(i) }

// serverChainRuleset replaces client i's chain in the server namespace, for
// iptables-restore --noflush (declaring a chain flushes it; the rest of the
// table is left alone).
func serverChainRuleset(i int, p Profile, cut bool) string {
	var b strings.Builder
	c := clientChain(i)
	b.WriteString("*filter\n:" + c + " - [0:0]\n")
	for _, r := range dropRules(p, cut, p.LossUp, "--dport") {
		b.WriteString("-A " + c + " " + r + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// serverRuleset is the server namespace's filter table at setup: an empty
// chain per client and the jump to it from INPUT for that client's /24.
func serverRuleset(clients int) string {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for i := 1; i <= clients; i++ {
		b.WriteString(":" + clientChain(i) + " - [0:0]\n")
	}
	for i := 1; i <= clients; i++ {
		b.WriteString("-A INPUT -s " + clientNet(i).String() + " -j " + clientChain(i) + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
