package bench

// --relays N: each room's host relays its tracks into the N next rooms
// (room i into i+1 ... i+N, modulo the room count). The contract requires
// the relay's identity (here: the source host's own) to be invited into
// each destination: that room's host invites it, and the source host
// accepts from a user session. Measured: relay.start -> the first relayed
// packet at a viewer of the destination, and, in the window, the share of
// the source's packets each destination's viewers received.

import (
	"context"
	"fmt"
	"time"

	"github.com/relaysfu/relayd/client"
)

// relayLink is one (source room, destination room) pair.
type relayLink struct {
	src, dst *room
	startAt  time.Time
	state    string // the destination's state in relay.start's result
	errWord  string // the destination's error in relay.start's result
}

// lastRelayState returns the state of the last relay.state notification
// the host of r received ("" when none), consuming them.
func lastRelayState(r *room) string {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // only what already arrived
	last := ""
	for {
		n, err := r.host.c.WaitNotification(ctx, client.NotifyRelayState, nil)
		if err != nil {
			return last
		}
		var ev client.RelayStateEvent
		if n.Decode(&ev) == nil {
			last = ev.State
		}
	}
}

// firstPacket returns relay.start -> first relayed packet at a destination
// viewer (false when none arrived).
func (l *relayLink) firstPacket() (time.Duration, bool) {
	f := l.dst.firstPacketFrom(l.src.host.identity)
	if f.IsZero() {
		return 0, false
	}
	return f.Sub(l.startAt), true
}

// startRelays starts every room's relay and waits (up to relayWait) for
// the first relayed packets at the destinations' viewers.
func (sc *runner) startRelays(ctx context.Context) error {
	n := sc.cfg.Relays
	for _, s := range sc.rooms {
		id := s.host.identity
		user, err := sc.dialSession(ctx, id, "", "")
		if err != nil {
			return fmt.Errorf("user session for %s (to accept relay invitations): %w", id, err)
		}
		var targets []client.RelayTarget
		var links []*relayLink
		for k := 1; k <= n; k++ {
			d := sc.rooms[(s.idx+k)%len(sc.rooms)]
			inv, err := d.host.c.CreateInvitation(ctx, id)
			if err != nil {
				_ = user.Close()
				return unsupported(err, "relays (relay destinations need invitations)", "invitation.create")
			}
			if _, err := user.AcceptInvitation(ctx, inv.ID); err != nil {
				_ = user.Close()
				return unsupported(err, "relays (relay destinations need invitations)", "invitation.accept")
			}
			tok, err := sc.tgt.mint.token(ctx, id, d.name, "viewer")
			if err != nil {
				_ = user.Close()
				return err
			}
			targets = append(targets, client.RelayTarget{Room: d.name, Token: tok})
			links = append(links, &relayLink{src: s, dst: d})
			d.addSource(id, &source{pub: s.host, relayed: true})
		}
		_ = user.Close()
		start := time.Now()
		rel, err := s.host.c.StartRelay(ctx, targets)
		if err != nil {
			return unsupported(err, "relays", "relay.start")
		}
		for _, l := range links {
			l.startAt = start
			for _, d := range rel.Destinations {
				if d.Room == l.dst.name {
					l.state, l.errWord = d.State, d.Error
				}
			}
		}
		sc.relays = append(sc.relays, links...)
	}

	// Wait for the first relayed packet in every destination that has
	// viewers.
	deadline := time.Now().Add(relayWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pending := 0
		for _, l := range sc.relays {
			if _, ok := l.firstPacket(); !ok && len(l.dst.viewerList()) > 0 {
				pending++
			}
		}
		sc.prog.setPhase(fmt.Sprintf("relays: %d/%d destinations receiving", len(sc.relays)-pending, len(sc.relays)))
		if pending == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ctx.Err()
}

// relayWait bounds the wait for relayed media before the window opens.
const relayWait = 15 * time.Second
