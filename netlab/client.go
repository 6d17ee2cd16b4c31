package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Node is one namespace of a lab.
type Node struct {
	ns string
}

// NS is the namespace's name, as `ip netns` knows it.
func (n *Node) NS() string { return n.ns }

// Client is one client namespace and the network between it and the server.
// Its state is guarded by its lab's mu.
type Client struct {
	Node
	lab   *Lab
	index int // i of 198.18.i.k, 1-based

	profile Profile
	cut     bool
	links   []int // live link numbers k, oldest first; the last is preferred
	nextK   int   // the last link number used
}

// Index is the client's number, 1-based.
func (c *Client) Index() int { return c.index }

// Profile is the client's current profile.
func (c *Client) Profile() Profile {
	c.lab.mu.Lock()
	defer c.lab.mu.Unlock()
	return c.profile
}

// Addr is the client's preferred address: the newest link's, the source of
// new connections.
func (c *Client) Addr() netip.Addr {
	c.lab.mu.Lock()
	defer c.lab.mu.Unlock()
	return clientAddr(c.index, c.links[len(c.links)-1])
}

// Addrs are the addresses of all the client's live links, oldest first.
func (c *Client) Addrs() []netip.Addr {
	c.lab.mu.Lock()
	defer c.lab.mu.Unlock()
	var as []netip.Addr
	for _, k := range c.links {
		as = append(as, clientAddr(c.index, k))
	}
	return as
}

// lock takes the lab's lock, failing once the lab is closed.
func (c *Client) lock() error {
	c.lab.mu.Lock()
	if c.lab.closed {
		c.lab.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// SetProfile changes the client's caps, loss and firewall at run time
// (lifting a cap is SetProfile with that direction 0). Connections stay up.
// On error the client keeps its old profile on record, though some of the
// new one may already be in force.
func (c *Client) SetProfile(ctx context.Context, p Profile) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("netlab: client %d profile: %w", c.index, err)
	}
	if err := c.lock(); err != nil {
		return err
	}
	defer c.lab.mu.Unlock()
	old := c.profile
	c.profile = p
	err := c.applyFirewallLocked(ctx)
	for _, k := range c.links {
		if err != nil {
			break
		}
		err = c.shapeLinkLocked(ctx, k, old)
	}
	if err != nil {
		c.profile = old
		return fmt.Errorf("netlab: client %d profile %s: %w", c.index, p, err)
	}
	c.lab.log.Info("netlab: profile set", "client", c.index, "profile", p.String())
	return nil
}

// Cut drops every packet between the client and the server, both ways,
// silently (senders see no error, as when a radio link fades), until
// Restore. Sockets and connections stay open.
func (c *Client) Cut(ctx context.Context) error { return c.setCut(ctx, true) }

// Restore undoes Cut; the client's profile is in force again.
func (c *Client) Restore(ctx context.Context) error { return c.setCut(ctx, false) }

func (c *Client) setCut(ctx context.Context, cut bool) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.lab.mu.Unlock()
	old := c.cut
	c.cut = cut
	if err := c.applyFirewallLocked(ctx); err != nil {
		c.cut = old
		return fmt.Errorf("netlab: client %d cut=%v: %w", c.index, cut, err)
	}
	c.lab.log.Info("netlab: link cut", "client", c.index, "cut", cut)
	return nil
}

// AddLink gives the client a further link to the server (a new veth pair)
// with a new address, 198.18.<i>.<k>, shaped by the client's profile, and
// makes it the preferred one: new connections leave from it, while sockets
// bound to an older address keep working until RemoveLink. It returns the
// new address.
func (c *Client) AddLink(ctx context.Context) (netip.Addr, error) {
	if err := c.lock(); err != nil {
		return netip.Addr{}, err
	}
	defer c.lab.mu.Unlock()
	a, err := c.addLinkLocked(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netlab: client %d: %w", c.index, err)
	}
	c.lab.log.Info("netlab: link added", "client", c.index, "addr", a)
	return a, nil
}

// RemoveLink removes the client's link with address a; traffic from or to
// that address goes nowhere from then on. The client's last link cannot be
// removed (use Cut for "no network").
func (c *Client) RemoveLink(ctx context.Context, a netip.Addr) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.lab.mu.Unlock()
	if err := c.removeLinkLocked(ctx, a); err != nil {
		return fmt.Errorf("netlab: client %d: %w", c.index, err)
	}
	c.lab.log.Info("netlab: link removed", "client", c.index, "addr", a)
	return nil
}

// Handover moves the client to a new link with a new address, as a phone
// moving from Wi-Fi to cellular: the new link comes up (AddLink), then
// every older link goes. It returns the new address.
func (c *Client) Handover(ctx context.Context) (netip.Addr, error) {
	if err := c.lock(); err != nil {
		return netip.Addr{}, err
	}
	defer c.lab.mu.Unlock()
	a, err := c.addLinkLocked(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netlab: client %d handover: %w", c.index, err)
	}
	for _, k := range slices.Clone(c.links[:len(c.links)-1]) {
		if err := c.removeLinkLocked(ctx, clientAddr(c.index, k)); err != nil {
			return netip.Addr{}, fmt.Errorf("netlab: client %d handover: %w", c.index, err)
		}
	}
	c.lab.log.Info("netlab: handover", "client", c.index, "addr", a)
	return a, nil
}

// addLinkLocked makes link k = nextK+1: a veth pair from the router
// (c<i>l<k>, with a /32 route to the client's address) to the client
// (eth<k>, 198.18.i.k/16), shaped by the profile. Its route gets a lower metric than any older link's, and names
// its address as source, so new connections use it. Packets from its
// address leave through it (a rule sends them to its own routing table,
// linkTable(k)), whatever link is preferred: a socket bound to an older
// link's address keeps that link's path and caps.
func (c *Client) addLinkLocked(ctx context.Context) (netip.Addr, error) {
	if c.nextK >= maxLinks {
		return netip.Addr{}, fmt.Errorf("no more than %d links per client", maxLinks)
	}
	k := c.nextK + 1
	rtr, cli := c.lab.router.ns, c.ns
	sif, cif := serverIf(c.index, k), clientIf(k)
	a := clientAddr(c.index, k)
	metric := fmt.Sprint(1000 - k) // newest link: lowest metric
	table := fmt.Sprint(linkTable(k))
	steps := [][]string{
		{"ip", "-n", rtr, "link", "add", sif, "type", "veth", "peer", "name", cif, "netns", cli},
		{"ip", "-n", rtr, "link", "set", sif, "addrgenmode", "none"},
		{"ip", "-n", cli, "link", "set", cif, "addrgenmode", "none"},
		{"ip", "-n", rtr, "link", "set", sif, "up"},
		{"ip", "-n", rtr, "route", "add", a.String() + "/32", "dev", sif},
		{"ip", "-n", cli, "addr", "add", fmt.Sprintf("%s/%d", a, prefixLen), "dev", cif, "noprefixroute"},
		{"ip", "-n", cli, "link", "set", cif, "up"},
		{"ip", "-n", cli, "route", "add", labNet().String(),
			"dev", cif, "src", a.String(), "metric", metric},
		{"ip", "-n", cli, "route", "add", labNet().String(),
			"dev", cif, "src", a.String(), "table", table},
		{"ip", "-n", cli, "rule", "add", "from", a.String(), "lookup", table, "priority", table},
	}
	err := runAll(ctx, steps)
	if err == nil {
		err = c.lab.router.setSysctls(noProxyDelay(sif))
	}
	if err == nil {
		err = c.shapeLinkLocked(ctx, k, Profile{})
	}
	if err != nil {
		// Deleting one end of a veth deletes both; the address and route go
		// with it. Ignore failure: the lab's Close removes it anyway.
		_ = runOne(context.WithoutCancel(ctx), "", "ip", "-n", rtr, "link", "del", sif)
		_ = runOne(context.WithoutCancel(ctx), "", "ip", "-n", cli, "rule", "del", "from", a.String(), "lookup", table)
		return netip.Addr{}, fmt.Errorf("link %d: %w", k, err)
	}
	c.nextK = k
	c.links = append(c.links, k)
	return a, nil
}

func (c *Client) removeLinkLocked(ctx context.Context, a netip.Addr) error {
	at := slices.IndexFunc(c.links, func(k int) bool { return clientAddr(c.index, k) == a })
	switch {
	case at < 0:
		return fmt.Errorf("no link with address %s", a)
	case len(c.links) == 1:
		return fmt.Errorf("%s is the only link (use Cut for no network)", a)
	}
	k := c.links[at]
	if err := runOne(ctx, "", "ip", "-n", c.lab.router.ns, "link", "del", serverIf(c.index, k)); err != nil {
		return err
	}
	c.links = slices.Delete(c.links, at, at+1)
	// The link's table went with its interface; its rule stays until told.
	return runOne(ctx, "", "ip", "-n", c.ns, "rule", "del", "from", a.String(), "lookup", fmt.Sprint(linkTable(k)))
}

// linkTable is link k's routing table (and its rule's priority): 1000+k,
// clear of the kernel's own tables (253-255) and before the main table's
// rule (32766).
func linkTable(k int) int { return 1000 + k }

// applyFirewallLocked loads the client's drop rules into both namespaces:
// its whole table in the client namespace (client-bound traffic) and its
// chain in the server namespace (server-bound traffic).
func (c *Client) applyFirewallLocked(ctx context.Context) error {
	if err := c.lab.restore(ctx, c.ns, clientRuleset(c.profile, c.cut), false); err != nil {
		return err
	}
	return c.lab.restore(ctx, c.lab.server.ns, serverChainRuleset(c.index, c.profile, c.cut), true)
}

// shapeLinkLocked puts link k's caps in line with the profile, given that
// they were last set from old: the download cap on the router's end of the
// veth (its egress is the client's download), the upload cap on the
// client's end. A cap that went to zero has its qdisc deleted.
func (c *Client) shapeLinkLocked(ctx context.Context, k int, old Profile) error {
	p := c.profile
	ends := []struct {
		ns, dev  string
		now, was Rate
	}{
		{c.lab.router.ns, serverIf(c.index, k), p.Down, old.Down},
		{c.ns, clientIf(k), p.Up, old.Up},
	}
	var errs []error
	for _, e := range ends {
		var err error
		switch {
		case e.now != 0:
			args := append([]string{"-n", e.ns, "qdisc", "replace", "dev", e.dev, "root"}, tbfArgs(e.now, p.queue())...)
			err = runOne(ctx, "", "tc", args...)
		case e.was != 0:
			err = runOne(ctx, "", "tc", "-n", e.ns, "qdisc", "del", "dev", e.dev, "root")
			if err != nil && strings.Contains(err.Error(), "handle of zero") {
				err = nil // no qdisc there: an earlier change failed halfway
			}
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
