// Package netlab makes network labs out of Linux network namespaces: a
// server namespace and N client namespaces, each client behind its own
// profile of bandwidth caps (tbf), random loss and firewall (iptables), all
// changeable at run time, and runs commands or registered Go functions
// inside them. It is how relayd is measured on networks worse than loopback.
//
// Topology (docs/netlab.md has the diagram): the server namespace has
// 198.18.0.1/16 on one veth to a router namespace; each client namespace is
// joined to the router by a veth pair per link and has 198.18.<i>.<k>/16.
// The router forwards between them (so a capped link's queue is in the
// router, as on a real network, not charged to the server's sockets).
// Nothing is addressed outside 198.18.0.0/15, nothing is made in the root
// namespace, and nothing is routed anywhere else. A lab is removed by Close,
// on a failed New, and (if its process died first) by the next New's
// Cleanup.
//
// netem is not in this kernel, so a lab has no delay or reordering of its
// own: a capped link's queue adds real queueing delay, and a fixed delay
// belongs in the user-space socket wrapper of whoever needs it.
//
// Making a lab needs root (Available says whether it can be made).
package netlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by a change to a lab after Close.
var ErrClosed = errors.New("netlab: lab closed")

// Spec describes a lab to make.
type Spec struct {
	// Clients has one profile per client namespace (1..MaxClients of them);
	// Lab.Client(i) is the one made from Clients[i-1].
	Clients []Profile
	// Logger gets a line when the lab is made or removed and on each change
	// of a client's network; nil discards them.
	Logger *slog.Logger
}

// Lab is one server namespace and its client namespaces. Its methods are
// safe for concurrent use; changes are serialised. It starts no goroutines.
type Lab struct {
	name     string // rlab<pid>x<n>; every namespace of the lab starts with it
	iptables string // the iptables-restore backend Available chose
	log      *slog.Logger
	server   *Node
	router   *Node // between the server and the clients: the clients' download caps
	clients  []*Client

	// mu serialises every change to the lab's namespaces, so that two
	// changes never interleave their commands; it guards closed and the
	// state of every Client.
	mu     sync.Mutex
	closed bool
}

// labSeq numbers the labs of this process.
var labSeq atomic.Uint64

// commandTimeout bounds each ip/tc/iptables command a lab runs; they take
// milliseconds, so this only matters when the system is wedged.
const commandTimeout = 30 * time.Second

// New makes a lab: it first removes stale labs of dead processes (Cleanup),
// then the server namespace, then a client namespace per profile in spec.
// If any step fails, whatever was made is removed and the error returned.
func New(ctx context.Context, spec Spec) (*Lab, error) {
	if n := len(spec.Clients); n < 1 || n > MaxClients {
		return nil, fmt.Errorf("netlab: %d clients, want 1..%d", n, MaxClients)
	}
	for i, p := range spec.Clients {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("netlab: client %d profile: %w", i+1, err)
		}
	}
	backend, err := available()
	if err != nil {
		return nil, err
	}
	log := spec.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if removed, err := Cleanup(ctx); err != nil {
		log.Warn("netlab: removing stale labs", "err", err)
	} else if len(removed) > 0 {
		log.Info("netlab: removed stale labs", "namespaces", removed)
	}
	name := labName(os.Getpid(), labSeq.Add(1))
	l := &Lab{
		name:     name,
		iptables: backend,
		log:      log.With("lab", name),
		server:   &Node{ns: serverNS(name)},
		router:   &Node{ns: routerNS(name)},
	}
	start := time.Now()
	if err := l.setup(ctx, spec.Clients); err != nil {
		if cerr := l.remove(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, fmt.Errorf("netlab: making lab %s: %w", name, err)
	}
	l.log.Info("netlab: lab made", "clients", len(l.clients), "took", time.Since(start))
	return l, nil
}

// setup makes the namespaces; on error the caller removes them.
func (l *Lab) setup(ctx context.Context, profiles []Profile) error {
	srv, rtr := l.server.ns, l.router.ns
	for _, ns := range []string{srv, rtr} {
		if err := l.addNS(ctx, ns); err != nil {
			return err
		}
	}
	if err := l.router.setSysctls(routerSysctls); err != nil {
		return fmt.Errorf("sysctls of %s: %w", rtr, err)
	}
	steps := [][]string{
		{"ip", "-n", srv, "link", "add", serverLink, "type", "veth", "peer", "name", routerLink, "netns", rtr},
		// No IPv6 link-local addresses: they would carry traffic around the
		// IPv4-only firewall rules. Set before the links come up.
		{"ip", "-n", srv, "link", "set", serverLink, "addrgenmode", "none"},
		{"ip", "-n", rtr, "link", "set", routerLink, "addrgenmode", "none"},
		// The server sees the whole lab on-link (the router answers ARP for
		// every client: proxy_arp).
		{"ip", "-n", srv, "addr", "add", fmt.Sprintf("%s/%d", ServerAddr(), prefixLen), "dev", serverLink},
		{"ip", "-n", srv, "link", "set", serverLink, "up"},
		{"ip", "-n", rtr, "addr", "add", routerAddr().String() + "/32", "dev", routerLink},
		{"ip", "-n", rtr, "link", "set", routerLink, "up"},
		{"ip", "-n", rtr, "route", "add", ServerAddr().String() + "/32", "dev", routerLink},
	}
	if err := runAll(ctx, steps); err != nil {
		return err
	}
	if err := l.router.setSysctls(noProxyDelay(routerLink)); err != nil {
		return fmt.Errorf("sysctls of %s: %w", rtr, err)
	}
	if err := l.restore(ctx, srv, serverRuleset(len(profiles)), false); err != nil {
		return err
	}
	for idx, p := range profiles {
		// The lab is not shared yet, so the …Locked helpers run unlocked.
		c := &Client{Node: Node{ns: clientNS(l.name, idx+1)}, lab: l, index: idx + 1, profile: p}
		l.clients = append(l.clients, c)
		if err := l.addNS(ctx, c.ns); err != nil {
			return err
		}
		if err := c.setSysctls(clientSysctls); err != nil {
			return fmt.Errorf("sysctls of %s: %w", c.ns, err)
		}
		if _, err := c.addLinkLocked(ctx); err != nil {
			return err
		}
		if err := c.applyFirewallLocked(ctx); err != nil {
			return err
		}
	}
	return nil
}

// routerSysctls make the router namespace a router that is invisible at
// layer 3: it forwards, answers ARP on each link for the addresses behind
// its other links (proxy_arp: every host of the lab sees all of
// 198.18.0.0/16 on-link), and does not drop what comes in on a link it
// would not route back through (rp_filter off).
//
// Why a router at all, rather than a bridge in the server namespace: a
// packet waiting in a capped link's queue still belongs to the socket that
// sent it until the packet is received at layer 3 (ip_rcv orphans it). With
// the download caps on the server's side of a bridge, every capped viewer's
// queue counted against relayd's one UDP socket's send buffer (212 KB by
// default): ten viewers capped at 1 Mbit/s filled two thirds of it, and more
// made relayd's sends block for everyone, which no real network does (there
// the queue is in a router far from the server). Forwarded by a router, a
// packet is orphaned before it queues.
var routerSysctls = map[string]string{
	"ipv4/ip_forward":              "1",
	"ipv4/conf/all/proxy_arp":      "1",
	"ipv4/conf/default/proxy_arp":  "1",
	"ipv4/conf/all/rp_filter":      "0",
	"ipv4/conf/default/rp_filter":  "0",
	"ipv4/conf/all/send_redirects": "0",
}

// noProxyDelay is the sysctl of a router interface that answers ARP for the
// hosts behind the other interfaces at once: Linux delays a proxy ARP
// answer by up to 0.8 s by default, and the packets queued meanwhile
// overflow the neighbour queue and are lost. (There is no per-namespace
// default to set: it is per interface.)
func noProxyDelay(dev string) map[string]string {
	return map[string]string{"ipv4/neigh/" + dev + "/proxy_delay": "0"}
}

// clientSysctls make each link of a client a path of its own, with its own
// cap, even when a client has several (one per viewer of a group, say):
// only the interface that holds an address answers ARP for it (arp_ignore
// 1; by default Linux answers on every interface, and the server would send
// one link's traffic down another), and ARP requests name the address of
// the interface they leave from (arp_announce 2). Per-link routing tables
// (client.go) do the same for what the client sends.
var clientSysctls = map[string]string{
	"ipv4/conf/all/arp_ignore":   "1",
	"ipv4/conf/all/arp_announce": "2",
}

// addNS makes a namespace with its loopback up.
func (l *Lab) addNS(ctx context.Context, ns string) error {
	return runAll(ctx, [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
	})
}

// restore loads an iptables-restore ruleset into namespace ns.
func (l *Lab) restore(ctx context.Context, ns, rules string, noflush bool) error {
	args := []string{"netns", "exec", ns, l.iptables, "-w", "10"}
	if noflush {
		args = append(args, "--noflush")
	}
	return runOne(ctx, rules, "ip", args...)
}

// runOne runs one command with the lab's per-command timeout.
func runOne(ctx context.Context, stdin, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	return run(ctx, stdin, name, args...)
}

// runAll runs commands in order, stopping at the first failure.
func runAll(ctx context.Context, cmds [][]string) error {
	for _, c := range cmds {
		if err := runOne(ctx, "", c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// Name is the lab's name, the prefix of all its namespaces.
func (l *Lab) Name() string { return l.name }

// Server is the server namespace; clients reach it at ServerAddr().
func (l *Lab) Server() *Node { return l.server }

// Clients returns the clients, Client(1) first.
func (l *Lab) Clients() []*Client { return slices.Clone(l.clients) }

// Client returns client i (1-based, as in the namespace names), or nil.
func (l *Lab) Client(i int) *Client {
	if i < 1 || i > len(l.clients) {
		return nil
	}
	return l.clients[i-1]
}

// Close removes every namespace of the lab (veths, qdiscs and rules go with
// them). Stop the processes running inside first: a namespace lives on,
// unnamed, while a process is still in it. Close is idempotent.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.remove()
	l.log.Info("netlab: lab removed", "err", err)
	return err
}

// remove deletes every namespace whose name starts with the lab's, so it
// also finds those of a setup that failed halfway.
func (l *Lab) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	all, err := namespaces(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range all {
		if strings.HasPrefix(ns, l.name+"-") {
			if err := run(ctx, "", "ip", "netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
