package relay

// A held source (protocol 1.1 §5): the source's session lost its socket
// and waits for its resume. Its relay runs on, but the subscribers of its
// relayed copies are told track.stream "paused" publisher_reconnecting,
// then "active". The rooms layer does that for the destinations of this
// node; for a destination on another node the source's node tells that
// node over the link (SourceHeld), and the receiving node's
// LinkConfig.OnHeld does the same there.

import "github.com/relaysfu/relayd/sfu"

// The control messages of a held source (wire.T).
const (
	wireHeld   = "held"
	wireUnheld = "unheld"
)

// SourceHeld tells the relay's destinations on other nodes that its
// source is held (true), or resumed (false). Destinations of this node
// are the caller's (it has their participants). It never blocks: the
// messages are queued on each link, in order with the relay's others.
func (r *Relay) SourceHeld(held bool) {
	r.mu.Lock()
	var remotes []RemoteDest
	for _, d := range r.live {
		if d.remote != nil {
			remotes = append(remotes, d.remote)
		}
	}
	r.mu.Unlock()
	for _, rd := range remotes {
		rd.SetHeld(held)
	}
}

// SetHeld implements RemoteDest: the peer is told, after what was sent
// for this destination before.
func (rd *remoteDest) SetHeld(held bool) {
	t := wireUnheld
	if held {
		t = wireHeld
	}
	rd.p.mu.Lock()
	live := rd.live
	rd.p.mu.Unlock()
	if live {
		rd.p.tell(wire{T: t, Dest: rd.id}, "")
	}
}

// onHeld: the peer says the source of our destination dest is held, or
// resumed: the relay participant's tracks go to LinkConfig.OnHeld.
func (p *pipe) onHeld(dest string, held bool) {
	p.mu.Lock()
	d := p.in[dest]
	var part *sfu.Participant
	if d != nil {
		part = d.p
	}
	p.mu.Unlock()
	if part != nil && p.l.cfg.OnHeld != nil {
		p.l.cfg.OnHeld(part, held)
	}
}
