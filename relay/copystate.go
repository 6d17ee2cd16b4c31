package relay

// What the destinations on other nodes are told of the state of their
// relayed copies. The rooms layer tells the destinations of this node
// itself (it has their participants); for a destination on another node
// the source's node tells that node over the link, in order with the
// relay's other messages, and the receiving node's LinkConfig hooks do
// the same there:
//   - a held source (protocol 1.1 §5): the subscribers of its copies are
//     told track.stream "paused" publisher_reconnecting, then "active"
//     (OnHeld);
//   - a paused relay (§8): "paused" relay_paused, then "active" (OnPaused);
//   - a muted source track (§7): track.muted with the copy's id, and the
//     copy's track object says muted (OnMuted; a copy published while its
//     source is muted starts muted: the publish says so).

import (
	"github.com/relaysfu/relayd/sfu"
)

// The control messages of a copy's state (wire.T).
const (
	wireHeld     = "held"
	wireUnheld   = "unheld"
	wirePaused   = "paused"
	wireUnpaused = "unpaused"
	wireMuted    = "muted" // wire.Muted and wire.By say how; wire.SSRC names the copy
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

// TrackMuted tells the destinations on other nodes of every relay that
// carries up (a source track whose mute changed: muted, by "publisher" or
// "admin") to mute or unmute their copies. It never blocks.
func (m *Manager) TrackMuted(up *sfu.UpTrack, muted bool, by string) {
	for _, r := range m.all() {
		r.mu.Lock()
		type copyOf struct {
			rd  RemoteDest
			dst *sfu.UpTrack
		}
		var copies []copyOf
		for _, d := range r.live {
			if e := d.egress[up]; e != nil && d.remote != nil {
				copies = append(copies, copyOf{d.remote, e.dst})
			}
		}
		r.mu.Unlock()
		for _, c := range copies {
			c.rd.SetMuted(c.dst, muted, by)
		}
	}
}

// tellState sends the peer a state message of this destination, after what
// was sent for it before (nothing once it has left or ended).
func (rd *remoteDest) tellState(m wire) {
	rd.p.mu.Lock()
	live := rd.live
	rd.p.mu.Unlock()
	if live {
		m.Dest = rd.id
		rd.p.tell(m, "")
	}
}

// SetHeld implements RemoteDest.
func (rd *remoteDest) SetHeld(held bool) {
	t := wireUnheld
	if held {
		t = wireHeld
	}
	rd.tellState(wire{T: t})
}

// SetPaused implements RemoteDest.
func (rd *remoteDest) SetPaused(paused bool) {
	t := wireUnpaused
	if paused {
		t = wirePaused
	}
	rd.tellState(wire{T: t})
}

// SetMuted implements RemoteDest.
func (rd *remoteDest) SetMuted(dst *sfu.UpTrack, muted bool, by string) {
	rd.p.mu.Lock()
	ot := rd.tracks[dst]
	rd.p.mu.Unlock()
	if ot != nil {
		rd.tellState(wire{T: wireMuted, SSRC: ot.ssrc, Muted: muted, By: by})
	}
}

// destParticipant returns the relay participant of our destination dest
// (nil: none), and its copy on SSRC ssrc when ssrc is not 0.
func (p *pipe) destParticipant(dest string, ssrc uint32) (*sfu.Participant, *sfu.UpTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.in[dest]
	if d == nil || d.p == nil {
		return nil, nil
	}
	if ssrc == 0 {
		return d.p, nil
	}
	if ing := d.tracks[ssrc]; ing != nil {
		return d.p, ing.up
	}
	return d.p, nil
}

// onHeld, onPaused and onMuted: the peer says the source of our
// destination dest is held or resumed, its relay paused or resumed, or a
// source track muted or unmuted: the hooks of LinkConfig are told.
func (p *pipe) onHeld(dest string, held bool) {
	if part, _ := p.destParticipant(dest, 0); part != nil && p.l.cfg.OnHeld != nil {
		p.l.cfg.OnHeld(part, held)
	}
}

func (p *pipe) onPaused(dest string, paused bool) {
	if part, _ := p.destParticipant(dest, 0); part != nil && p.l.cfg.OnPaused != nil {
		p.l.cfg.OnPaused(part, paused)
	}
}

func (p *pipe) onMuted(m wire) {
	if m.By != "publisher" && m.By != "admin" {
		return
	}
	if part, up := p.destParticipant(m.Dest, m.SSRC); up != nil && p.l.cfg.OnMuted != nil {
		p.l.cfg.OnMuted(part, up, m.Muted, m.By)
	}
}
