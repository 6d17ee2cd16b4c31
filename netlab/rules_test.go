package netlab

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLabPID(t *testing.T) {
	tests := []struct {
		ns     string
		pid    int
		wantOK bool
	}{
		{"rlab1234x1-s", 1234, true},
		{"rlab1234x17-c250", 1234, true},
		{"rlab99x0-probe", 99, true},
		{labName(4321, 3) + "-c2", 4321, true},
		{"rlab1234x1", 0, false}, // no "-" part: not a name we make
		{"rlab1234-s", 0, false},
		{"rlabx1-s", 0, false},
		{"rlab0x1-s", 0, false},
		{"rlab012x1-s", 0, false},
		{"rlab12ax1-s", 0, false},
		{"rlab12x-s", 0, false},
		{"rlab12x1a-s", 0, false},
		{"other12x1-s", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		pid, ok := labPID(tt.ns)
		if ok != tt.wantOK || pid != tt.pid {
			t.Errorf("labPID(%q) = %d, %v; want %d, %v", tt.ns, pid, ok, tt.pid, tt.wantOK)
		}
	}
}

func TestNamesAndAddresses(t *testing.T) {
	// Interface names fit Linux's 15 characters at the limits.
	for _, name := range []string{serverIf(MaxClients, maxLinks), clientIf(maxLinks), serverLink, routerLink} {
		if len(name) > 15 {
			t.Errorf("interface name %q is longer than 15", name)
		}
	}
	bench := netip.MustParsePrefix("198.18.0.0/15")
	for _, a := range []netip.Addr{ServerAddr(), clientAddr(1, 1), clientAddr(MaxClients, maxLinks)} {
		if !bench.Contains(a) {
			t.Errorf("%s is outside %s", a, bench)
		}
	}
	if got := clientAddr(3, 2).String(); got != "198.18.3.2" {
		t.Errorf("clientAddr(3, 2) = %s", got)
	}
	if !clientNet(3).Contains(clientAddr(3, maxLinks)) || clientNet(3).Contains(clientAddr(4, 1)) {
		t.Errorf("clientNet(3) = %s does not hold exactly client 3's addresses", clientNet(3))
	}
	if clientNet(1).Contains(ServerAddr()) {
		t.Errorf("clientNet(1) holds the server's address")
	}
}

func TestTBFArgs(t *testing.T) {
	tests := []struct {
		rate  Rate
		queue time.Duration
		want  string
	}{
		// Low rates: the bucket is two full frames.
		{600_000, 200 * time.Millisecond, "tbf rate 600000bit burst 3028 latency 200000us"},
		// High rates: 10 ms of the rate (100 Mbit/s = 12.5 MB/s → 125 kB).
		{100_000_000, 50 * time.Millisecond, "tbf rate 100000000bit burst 125000 latency 50000us"},
	}
	for _, tt := range tests {
		if got := strings.Join(tbfArgs(tt.rate, tt.queue), " "); got != tt.want {
			t.Errorf("tbfArgs(%v, %v) = %q, want %q", tt.rate, tt.queue, got, tt.want)
		}
	}
}

func TestDropRules(t *testing.T) {
	tests := []struct {
		name string
		p    Profile
		cut  bool
		loss float64
		flag string
		want []string
	}{
		{"perfect", Profile{}, false, 0, "--sport", nil},
		{"cut wins over everything", Profile{UDPBlocked: true, LossDown: 5}, true, 5, "--sport", []string{"-j DROP"}},
		{"udp blocked", Profile{UDPBlocked: true}, false, 0, "--dport", []string{"-p udp -j DROP"}},
		{"only tcp to the server's 443, server-bound", Profile{OnlyTCPPort: 443}, false, 0, "--dport",
			[]string{"! -p tcp -j DROP", "-p tcp -m tcp ! --dport 443 -j DROP"}},
		{"only tcp from the server's 443, client-bound", Profile{OnlyTCPPort: 443}, false, 0, "--sport",
			[]string{"! -p tcp -j DROP", "-p tcp -m tcp ! --sport 443 -j DROP"}},
		{"only tcp to the server's 443 and 8800, server-bound", Profile{OnlyTCPPort: 443, OnlyTCPAlso: 8800}, false, 0, "--dport",
			[]string{"! -p tcp -j DROP", "-p tcp -m multiport ! --dports 443,8800 -j DROP"}},
		{"only tcp from the server's 443 and 8800, client-bound", Profile{OnlyTCPPort: 443, OnlyTCPAlso: 8800}, false, 0, "--sport",
			[]string{"! -p tcp -j DROP", "-p tcp -m multiport ! --sports 443,8800 -j DROP"}},
		{"loss", Profile{}, false, 2, "--sport",
			[]string{"-m statistic --mode random --probability 0.02 -j DROP"}},
		{"total loss", Profile{}, false, 100, "--sport", []string{"-j DROP"}},
		{"firewall before loss", Profile{UDPBlocked: true}, false, 0.5, "--sport",
			[]string{"-p udp -j DROP", "-m statistic --mode random --probability 0.005 -j DROP"}},
	}
	for _, tt := range tests {
		got := dropRules(tt.p, tt.cut, tt.loss, tt.flag)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: dropRules = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRulesets(t *testing.T) {
	p := Profile{LossDown: 2, LossUp: 10, UDPBlocked: true}
	client := clientRuleset(p, false)
	wantClient := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
		"-A INPUT -i lo -j ACCEPT\n" +
		"-A INPUT -p udp -j DROP\n" +
		"-A INPUT -m statistic --mode random --probability 0.02 -j DROP\n" +
		"COMMIT\n"
	if client != wantClient {
		t.Errorf("clientRuleset:\n%s\nwant:\n%s", client, wantClient)
	}
	// Nothing is ever dropped on the way out of a namespace (that would be
	// an EPERM to the sender, not a loss).
	for _, rs := range []string{client, clientRuleset(p, true), serverChainRuleset(2, p, true), serverRuleset(3)} {
		if strings.Contains(rs, "-A OUTPUT") || strings.Contains(rs, "-A FORWARD") {
			t.Errorf("ruleset filters OUTPUT or FORWARD:\n%s", rs)
		}
	}
	chain := serverChainRuleset(2, p, false)
	wantChain := "*filter\n:client2 - [0:0]\n" +
		"-A client2 -p udp -j DROP\n" +
		"-A client2 -m statistic --mode random --probability 0.1 -j DROP\n" +
		"COMMIT\n"
	if chain != wantChain {
		t.Errorf("serverChainRuleset:\n%s\nwant:\n%s", chain, wantChain)
	}
	server := serverRuleset(2)
	for _, line := range []string{":client1 - [0:0]", ":client2 - [0:0]",
		"-A INPUT -s 198.18.1.0/24 -j client1", "-A INPUT -s 198.18.2.0/24 -j client2"} {
		if !strings.Contains(server, line+"\n") {
			t.Errorf("serverRuleset lacks %q:\n%s", line, server)
		}
	}
}
