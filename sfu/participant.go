package sfu

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// ParticipantParams describe a joining participant.
type ParticipantParams struct {
	Identity  string
	Name      string
	Role      Role
	RelayFrom string // for RoleRelay: the source room
	Events    EventSink
	// V11: the session speaks protocol 1.1: its video may be paused for
	// bandwidth (1.0 sessions keep the lowest layer).
	V11 bool
}

// Participant is one identity in one room over one signaling session, with
// two PeerConnections: the publisher PC (the client offers) and the
// subscriber PC (the server offers, one negotiation at a time: a change
// during a negotiation waits for the answer and then re-offers, so there is
// never glare).
//
// Its PeerConnection work runs on its op queue (ops.go), one op at a time
// in the order asked, with no lock held: answering the publisher's offers
// (publisher.go), the subscriber PC's changes, offers and answers
// (subscriber.go), remote candidates (peerconn.go), closing. Its events go
// through its mailbox (mailbox.go): posted in order, even under the room's
// lock, and handed to its EventSink with no lock held.
//
// Locking, by field group below. room.mu guards role, published and gone:
// they change together with the room's participant map and are read with
// it (the state a joiner gets, the publish gate, the events of a change).
// p.mu guards what the op goroutine shares with pion's callbacks and with
// the room. The op goroutine owns the rest. Lock order: room.mu, then p.mu;
// neither is held across a PeerConnection call or a callback.
//
// Goroutines: the op queue's (started when the participant is made, ended
// and waited for by close); the mailbox's delivery (only while events
// wait); for each published track, pion's OnTrack goroutine (it runs the
// UpTrack's reader, then unpublishes it) and an RTCP reader, both counted
// in pubWG and their publisherPC's readers, which close waits for; each
// DownTrack's RTCP reader (it ends when its RTPSender stops).
type Participant struct {
	// Set when made, never changed.
	room      *Room
	identity  string
	name      string
	relayFrom string
	relay     bool // RoleRelay: its key and what it receives (nothing) follow
	v11       bool
	log       *slog.Logger
	ops       *opQueue
	inbox     *mailbox

	// Guarded by room.mu.
	role      Role
	published []*UpTrack
	gone      bool // removed from the room

	// Guarded by mu: shared by the op goroutine with pion's callbacks
	// (onTrack, local candidates) and with the room (subscriptions).
	mu         sync.Mutex
	closed     bool                                  // close has begun: no new track, no new op
	pub        *publisherPC                          // written by ops under mu; ops read it without
	subChanges []subChange                           // subscriptions for syncSubscriber to apply
	syncQueued bool                                  // a syncSubscriber op is queued
	localCands map[Target][]*webrtc.ICECandidateInit // held until the description is sent
	delivered  map[Target]bool                       // the description was sent: trickle at once
	restartAt  map[Target]time.Time                  // ICE restarts not yet settled (icerestart.go)
	settings   map[string]LayerSettings              // track.settings by track id (adapt.go)
	downs      map[*DownTrack]bool                   // the down tracks, for the adapter
	adapt      *adapter                              // made with the first down track; nil after close
	bwe        *bwe                                  // the subscriber PC's estimator (bwe.go); set when made
	dynaDone   chan struct{}                         // ends the dynacast loop (dynacast.go); nil: not running
	pubHeld    bool                                  // reloadpc.go: the session is held
	pubKeep    bool                                  // reloadpc.go: its tracks outlive their publisher PC
	keepTimer  *time.Timer                           // reloadpc.go: ends pubKeep after a resume

	// Owned by the op goroutine.
	sub          *webrtc.PeerConnection
	direct       *directSender // sub's direct send path (directsend.go); nil: off
	down         map[*UpTrack]*downEntry
	subConnected bool
	negotiating  bool // an offer is out, its answer not yet in
	renegotiate  bool // the subscriber PC changed since the last offer
	offerRetries int  // offers the client refused in a row (subscriber.go)
	retryPending bool // a refused offer will be sent again
	retryTimer   *time.Timer
	remoteCands  map[Target][]webrtc.ICECandidateInit
	// icerestart.go: the session is held (no offers), and an ICE restart
	// waits for the answer to the offer that was out.
	subHeld        bool
	restartPending bool

	pubWG  sync.WaitGroup // every publisher PC's track goroutines
	dynaWG sync.WaitGroup // the dynacast loop
}

type downEntry struct {
	dt     *DownTrack
	sender *webrtc.RTPSender
}

// newParticipant makes a participant and starts its op queue; the caller
// closes it (close) if it never joins.
func newParticipant(r *Room, pp ParticipantParams) *Participant {
	return &Participant{
		room: r, identity: pp.Identity, name: pp.Name, relayFrom: pp.RelayFrom,
		relay: pp.Role == RoleRelay, role: pp.Role, v11: pp.V11,
		log:         r.log.With("participant", pp.Identity, "role", string(pp.Role)),
		ops:         newOpQueue(),
		inbox:       newMailbox(pp.Events),
		down:        map[*UpTrack]*downEntry{},
		remoteCands: map[Target][]webrtc.ICECandidateInit{},
		localCands:  map[Target][]*webrtc.ICECandidateInit{},
		delivered:   map[Target]bool{},
		bwe:         subscriberBWE(pp.Role),
	}
}

// subscriberBWE is a participant's estimator: every participant but a
// relay (which receives nothing) has one.
func subscriberBWE(role Role) *bwe {
	if role == RoleRelay {
		return nil
	}
	return newBWE()
}

// key separates a relay participant from a direct one of the same identity.
func key(identity string, role Role) string {
	if role == RoleRelay {
		return "relay:" + identity
	}
	return identity
}

func (p *Participant) key() string {
	if p.relay {
		return key(p.identity, RoleRelay)
	}
	return p.identity
}

// Identity returns the participant's identity.
func (p *Participant) Identity() string { return p.identity }

// Name returns the participant's display name.
func (p *Participant) Name() string { return p.name }

// Room returns the participant's room.
func (p *Participant) Room() *Room { return p.room }

// Role returns the participant's current role.
func (p *Participant) Role() Role {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.role
}

// Info returns the participant object.
func (p *Participant) Info() ParticipantInfo {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.infoLocked()
}

// infoLocked is Info; the caller holds room.mu.
func (p *Participant) infoLocked() ParticipantInfo {
	info := ParticipantInfo{Identity: p.identity, Name: p.name, Role: p.role, Tracks: []TrackInfo{}}
	for _, t := range p.published {
		info.Tracks = append(info.Tracks, p.trackInfo(t))
	}
	if p.relayFrom != "" {
		info.RelayFrom = &RelayFrom{Room: p.relayFrom}
	}
	return info
}

func (p *Participant) trackInfo(t *UpTrack) TrackInfo {
	return TrackInfo{ID: t.ID(), Participant: p.identity, Kind: t.Kind().String(), Codec: CodecName(t.Codec().MimeType), Muted: t.Muted(), Layers: t.Layers()}
}

// CodecName is a MIME type's codec part: "VP8", "opus", "H264", "VP9".
func CodecName(mime string) string {
	if i := strings.IndexByte(mime, '/'); i >= 0 {
		return mime[i+1:]
	}
	return mime
}

// subscribes reports whether the participant receives the room's tracks:
// everyone but relays, whose session is the relay itself.
func (p *Participant) subscribes() bool { return !p.relay }

// close closes both PCs and every down track, and waits for the
// participant's goroutines: its op queue runs close's op after the op in
// progress (queued ops are dropped), then the track readers end (their
// tracks are unpublished from the room on the way). Never call it from an
// op.
func (p *Participant) close() {
	p.mu.Lock()
	p.closed = true
	p.subChanges = nil
	p.mu.Unlock()
	p.releaseKeep(true) // its tracks end with the PC (no hold after closed)
	p.ops.stop(p.closeOp)
	p.stopAdapter()
	p.stopDynacast()
	p.pubWG.Wait()
}

// closeOp is the participant's last op.
func (p *Participant) closeOp() {
	p.mu.Lock()
	pub := p.pub
	p.pub = nil
	p.mu.Unlock()
	if p.retryTimer != nil {
		p.retryTimer.Stop()
	}
	if pub != nil {
		_ = pub.pc.GracefulClose()
	}
	for _, e := range p.down {
		e.dt.Close()
	}
	clear(p.down)
	if p.sub != nil {
		_ = p.sub.GracefulClose()
	}
}

// isClosed reports whether close has begun.
func (p *Participant) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Leave takes the participant out of the room: its tracks are unpublished
// on every subscriber first, then the others get participant.left. A host
// leaving puts the room in waiting_reconnect.
func (p *Participant) Leave() { p.leave(true) }

func (p *Participant) leave(hostLeft bool) {
	p.close()
	// Tracks fed by someone else (a relay's) have no reader to end them.
	for _, t := range p.PublishedTracks() {
		p.UnpublishTrack(t)
	}
	p.room.remove(p, hostLeft)
}

// replaced ends a participant whose identity joined again in a newer
// session: it leaves (a host without putting the room in
// waiting_reconnect), then its session is told SessionEnded. It returns
// once the session has been told.
func (p *Participant) replaced() {
	p.leave(false)
	p.inbox.post(SessionEnded{Code: 1000, Reason: "replaced by a newer session"})
	p.inbox.flush()
}

// PublishTrack publishes an up track the participant does not read itself:
// a relay's (NewRelayedUpTrack). ErrForbidden when it may not publish.
func (p *Participant) PublishTrack(up *UpTrack) error {
	if !p.room.publish(p, up) {
		return ErrForbidden
	}
	return nil
}

// UnpublishTrack ends a track published with PublishTrack: every
// subscriber gets track.unpublished.
func (p *Participant) UnpublishTrack(up *UpTrack) {
	up.Close()
	p.room.unpublish(p, up)
}

// PublishedTracks returns the participant's published tracks.
func (p *Participant) PublishedTracks() []*UpTrack {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return append([]*UpTrack(nil), p.published...)
}

// SetRole changes the participant's role live (an accepted invitation makes
// a viewer a co-host; removal or leaving the stage makes it a viewer
// again): everyone in the room gets participant.updated. A participant
// that may no longer publish has its publisher PC closed first, so its
// tracks are unpublished on every subscriber at once (track.unpublished),
// and the participant.updated that follows shows a viewer without tracks;
// SetRole returns after that (so, as ClosePublisher, it is not for the
// goroutines reading p's tracks). Hosts and relays keep their role, and no
// one becomes a relay (a relay is a session of its own).
func (p *Participant) SetRole(role Role) {
	r := p.room
	r.mu.Lock()
	if p.gone || p.role == role || p.relay || p.role == RoleHost || role == RoleRelay {
		r.mu.Unlock()
		return
	}
	m := r.sfu.cfg.Metrics.Participants
	m.WithLabelValues(string(p.role)).Dec()
	m.WithLabelValues(string(role)).Inc()
	p.role = role
	mayPublish := r.mayPublishLocked(p, true) // not a relay
	if !mayPublish {
		r.mu.Unlock()
		p.ClosePublisher()
		r.mu.Lock()
		if p.gone {
			r.mu.Unlock()
			return
		}
	}
	info := p.infoLocked() // the role now (another change may have come meanwhile: this tells it too)
	for _, q := range r.sortedLocked() {
		q.inbox.post(ParticipantUpdated{Participant: info})
	}
	r.mu.Unlock()
}
