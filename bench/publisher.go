package bench

// Rooms and their publishers: the host (whose first join creates the room)
// and co-hosts, who get on stage through an invitation the host creates and
// they accept. Each publishes a client.SyntheticPublisher: VP8 at the asked
// bitrate and frame rate, a keyframe every 2 s and on every PLI, NACKs
// answered by pion's responder, Opus every 20 ms, send times in payloads.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaysfu/relayd/client"
)

// room is one room of the scenario.
type room struct {
	idx  int
	name string
	host *publisher

	mu      sync.Mutex
	pubs    []*publisher       // publishing participants of this room (host first)
	sources map[string]*source // by msid stream id in this room
	viewers []*viewer          // stable viewers, in join order
	extras  []*client.Client   // other sessions to close (co-hosts waiting for the stage)
}

// source is something viewers of a room receive: a publisher of the room,
// or one relayed in from another room.
type source struct {
	pub     *publisher
	relayed bool
}

func (r *room) addSource(streamID string, s *source) {
	r.mu.Lock()
	r.sources[streamID] = s
	r.mu.Unlock()
}

func (r *room) sourceOf(streamID string) *source {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sources[streamID]
}

func (r *room) viewerList() []*viewer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*viewer(nil), r.viewers...)
}

// firstPacketFrom returns when the room's first viewer received a packet
// from streamID (zero if none has).
func (r *room) firstPacketFrom(streamID string) time.Time {
	var first int64
	for _, v := range r.viewerList() {
		if v.light != nil {
			if f := v.light.firstFrom(streamID); f != 0 && (first == 0 || f < first) {
				first = f
			}
		}
		for _, t := range v.trackList() {
			if t.streamID != streamID {
				continue
			}
			if f := t.firstAt.Load(); f != 0 && (first == 0 || f < first) {
				first = f
			}
		}
	}
	if first == 0 {
		return time.Time{}
	}
	return time.Unix(0, first)
}

// publisher is one publishing participant.
type publisher struct {
	identity string
	room     *room
	c        *client.Client
	sp       atomic.Pointer[client.SyntheticPublisher] // set once publishing
}

func (p *publisher) close() {
	if sp := p.sp.Load(); sp != nil {
		sp.Stop()
	}
	if p.c != nil {
		_ = p.c.Close()
	}
}

// UnsupportedError is returned when the scenario needs a feature the
// server answers -32601 (method not found) to.
type UnsupportedError struct {
	Feature string // "co-hosts (invitations)", "relays"
	Method  string // the method that was refused
	Err     error
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("server does not support %s yet (%s answered -32601)", e.Feature, e.Method)
}

func (e *UnsupportedError) Unwrap() error { return e.Err }

// unsupported turns a -32601 answer into an *UnsupportedError.
func unsupported(err error, feature, method string) error {
	if client.ErrorCode(err) == client.CodeMethodNotFound {
		return &UnsupportedError{Feature: feature, Method: method, Err: err}
	}
	return fmt.Errorf("%s: %w", method, err)
}

// dialSession opens and joins a session (a user session when room is "").
func (sc *runner) dialSession(ctx context.Context, identity, roomName, role string) (*client.Client, error) {
	tok, err := sc.tgt.mint.token(ctx, identity, roomName, role)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(ctx, sc.tgt.baseURL, tok, client.Options{TrackReader: drainTrack})
	if err != nil {
		return nil, err
	}
	if _, err := c.Join(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("join %s as %s: %w", roomName, identity, err)
	}
	return c, nil
}

// startPublishing publishes a synthetic source on c and starts it.
func (sc *runner) startPublishing(ctx context.Context, p *publisher) error {
	sp, err := client.NewSyntheticPublisher(client.PublisherOptions{
		StreamID:   p.identity,
		NoAudio:    !sc.cfg.Audio,
		FPS:        sc.cfg.FPS,
		BitrateBps: sc.cfg.VideoBitrate,
	})
	if err != nil {
		return err
	}
	if err := p.c.Publish(ctx, sp.Tracks()...); err != nil {
		return fmt.Errorf("publish as %s: %w", p.identity, err)
	}
	sp.Start()
	p.sp.Store(sp)
	return nil
}

// startHost joins room r as its host (creating it) and publishes.
func (sc *runner) startHost(ctx context.Context, r *room) error {
	id := r.name + "-host"
	c, err := sc.dialSession(ctx, id, r.name, "host")
	if err != nil {
		return err
	}
	p := &publisher{identity: id, room: r, c: c}
	if err := sc.startPublishing(ctx, p); err != nil {
		p.close()
		return err
	}
	r.mu.Lock()
	r.host = p
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
	r.addSource(id, &source{pub: p})
	return nil
}

// joinCohost joins room r as a viewer who will go on stage.
func (sc *runner) joinCohost(ctx context.Context, r *room, id string) (*publisher, error) {
	c, err := sc.dialSession(ctx, id, r.name, "viewer")
	if err != nil {
		return nil, err
	}
	return &publisher{identity: id, room: r, c: c}, nil
}

// putOnStage: the host invites p, p accepts, p publishes.
func (sc *runner) putOnStage(ctx context.Context, p *publisher) error {
	r := p.room
	inv, err := r.host.c.CreateInvitation(ctx, p.identity)
	if err != nil {
		return unsupported(err, "co-hosts (invitations)", "invitation.create")
	}
	if _, err := p.c.AcceptInvitation(ctx, inv.ID); err != nil {
		return unsupported(err, "co-hosts (invitations)", "invitation.accept")
	}
	if err := sc.startPublishing(ctx, p); err != nil {
		return err
	}
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
	return nil
}

// probe fails early, with a clear message, when the scenario needs methods
// the server does not implement: invitations for co-hosts (and for relays,
// whose identity must be invited into each destination), relay.* for relays.
func (sc *runner) probe(ctx context.Context) error {
	needInvites := sc.cfg.Publishers > 1 || sc.cfg.Cohosts > 0 || sc.cfg.Relays > 0
	if len(sc.rooms) == 0 || (!needInvites && sc.cfg.Relays == 0) {
		return nil
	}
	host := sc.rooms[0].host.c
	if needInvites {
		feature := "co-hosts (invitations)"
		if sc.cfg.Publishers == 1 && sc.cfg.Cohosts == 0 {
			feature = "relays (relay destinations need invitations)"
		}
		if _, err := host.ListInvitations(ctx, ""); client.ErrorCode(err) == client.CodeMethodNotFound {
			return unsupported(err, feature, "invitation.list")
		}
	}
	if sc.cfg.Relays > 0 {
		// relay.stop without a relay is harmless: idle, or "not found".
		if _, err := host.StopRelay(ctx); client.ErrorCode(err) == client.CodeMethodNotFound {
			return unsupported(err, "relays", "relay.stop")
		}
	}
	return nil
}
