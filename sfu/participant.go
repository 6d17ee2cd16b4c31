package sfu

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// ParticipantParams describe a joining participant.
type ParticipantParams struct {
	Identity  string
	Name      string
	Role      Role
	RelayFrom string // for RoleRelay: the source room
	Events    EventSink
}

// maxQueuedCandidates bounds the remote candidates kept before a PC has its
// remote description: a browser sends a handful; more is abuse.
const maxQueuedCandidates = 64

// gatherTimeout bounds the wait for local ICE candidates before an offer or
// answer is sent. With one UDP mux and no STUN, gathering takes well under a
// millisecond; the bound only matters if something is broken.
const gatherTimeout = 2 * time.Second

// Participant is one identity in one room over one signaling session, with
// two PeerConnections: the publisher PC (the client offers) and the
// subscriber PC (the server offers, one negotiation at a time: a change
// during a negotiation waits for the answer and then re-offers, so there is
// never glare).
//
// Goroutines: one per published track (pion's OnTrack goroutine runs the
// UpTrack's reader and then unpublishes it; counted in pubWG), plus each
// DownTrack's. close() stops them all and waits for them.
type Participant struct {
	room      *Room
	identity  string
	name      string
	relayFrom string
	events    EventSink
	log       *slog.Logger

	// guarded by room.mu
	role      Role
	published []*UpTrack
	gone      bool // removed from the room

	mu           sync.Mutex
	closed       bool
	pub, sub     *webrtc.PeerConnection
	down         map[*UpTrack]*downEntry
	subConnected bool
	negotiating  bool // an offer is out, its answer not yet in
	renegotiate  bool // something changed while negotiating
	remoteCands  map[Target][]webrtc.ICECandidateInit

	candMu     sync.Mutex
	localCands map[Target][]*webrtc.ICECandidateInit // held until the description is sent
	delivered  map[Target]bool

	pubWG sync.WaitGroup
}

type downEntry struct {
	dt     *DownTrack
	sender *webrtc.RTPSender
}

func newParticipant(r *Room, pp ParticipantParams) *Participant {
	return &Participant{
		room: r, identity: pp.Identity, name: pp.Name, relayFrom: pp.RelayFrom,
		events: pp.Events, role: pp.Role,
		log:         r.log.With("participant", pp.Identity, "role", string(pp.Role)),
		down:        map[*UpTrack]*downEntry{},
		remoteCands: map[Target][]webrtc.ICECandidateInit{},
		localCands:  map[Target][]*webrtc.ICECandidateInit{},
		delivered:   map[Target]bool{},
	}
}

// key separates a relay participant from a direct one of the same identity.
func key(identity string, role Role) string {
	if role == RoleRelay {
		return "relay:" + identity
	}
	return identity
}

func (p *Participant) key() string { return key(p.identity, p.role) }

// Identity returns the participant's identity.
func (p *Participant) Identity() string { return p.identity }

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
	return TrackInfo{ID: t.ID(), Participant: p.identity, Kind: t.Kind().String(), Codec: CodecName(t.Codec().MimeType)}
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
func (p *Participant) subscribes() bool { return p.role != RoleRelay }

// ValidateCandidate reports whether c is a candidate line pion accepts;
// the empty candidate (end of candidates) is valid.
func ValidateCandidate(c webrtc.ICECandidateInit) error {
	if c.Candidate == "" {
		return nil
	}
	if _, err := ice.UnmarshalCandidate(c.Candidate); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

// HandleOffer answers the client's publisher-PC offer. deliver is called
// with the answer before any server candidate for that PC is sent, so the
// client gets its answer first.
func (p *Participant) HandleOffer(offer string, deliver func(answer string)) error {
	if err := ValidateSDP(offer); err != nil {
		return err
	}
	if !p.room.MayPublish(p) {
		return ErrForbidden
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	created := false
	if p.pub == nil {
		pc, err := p.newPC(TargetPublisher)
		if err != nil {
			return err
		}
		pc.OnTrack(p.onTrack)
		p.pub, created = pc, true
	}
	fail := func(err error) error {
		if created {
			_ = p.pub.Close()
			p.pub = nil
		}
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	if err := p.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(err)
	}
	answer, err := p.pub.CreateAnswer(nil)
	if err != nil {
		return fail(err)
	}
	if err := p.pub.SetLocalDescription(answer); err != nil {
		return fail(err)
	}
	p.applyCandidatesLocked(TargetPublisher)
	waitGathering(p.pub)
	deliver(p.pub.LocalDescription().SDP)
	p.flushCandidates(TargetPublisher)
	return nil
}

// newPC makes one of the participant's PeerConnections; called with p.mu.
func (p *Participant) newPC(t Target) (*webrtc.PeerConnection, error) {
	api := p.room.sfu.cfg.API.Subscriber
	if t == TargetPublisher {
		api = p.room.sfu.cfg.API.Publisher
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { p.onLocalCandidate(t, c) })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.log.Debug("peer connection state", "pc", string(t), "state", s.String())
		if t == TargetSubscriber && s == webrtc.PeerConnectionStateConnected {
			p.subscriberConnected()
		}
	})
	return pc, nil
}

func waitGathering(pc *webrtc.PeerConnection) {
	select {
	case <-webrtc.GatheringCompletePromise(pc):
	case <-time.After(gatherTimeout):
	}
}

// onTrack runs in pion's goroutine for each track the publisher sends: it
// publishes the track, reads it until the PC closes, then unpublishes it.
func (p *Participant) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.closed || p.pub == nil {
		p.mu.Unlock()
		return
	}
	pc := p.pub
	p.pubWG.Add(2)
	p.mu.Unlock()
	defer p.pubWG.Done()
	go func() {
		// Read the publisher's RTCP (sender reports) so the receiver
		// report interceptor sees it; ends when the PC closes.
		defer p.pubWG.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := recv.Read(buf); err != nil {
				return
			}
		}
	}()
	up := NewUpTrack(UpTrackParams{
		ID:          NewID("TR_"),
		Participant: p.identity,
		Kind:        tr.Kind(),
		Codec:       tr.Codec().RTPCodecCapability,
		Source:      &remoteSource{track: tr, pc: pc},
		Logger:      p.log,
		Metrics:     p.room.sfu.cfg.Metrics,
		Flush:       p.room.sfu.cfg.API.Flush,
	})
	if !p.room.publish(p, up) {
		return // may not publish (any more): the PC is being closed
	}
	up.Run()
	p.room.unpublish(p, up)
}

// remoteSource is a publisher's WebRTC track as an UpTrack Source.
type remoteSource struct {
	track *webrtc.TrackRemote
	pc    *webrtc.PeerConnection
}

func (s *remoteSource) ReadRTP(buf []byte) (int, error) {
	n, _, err := s.track.Read(buf)
	return n, err
}

func (s *remoteSource) RequestKeyframe() error {
	return s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(s.track.SSRC())}})
}

// subscribe adds down tracks of ups to the subscriber PC and renegotiates
// once.
func (p *Participant) subscribe(ups []*UpTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if p.sub == nil {
		pc, err := p.newPC(TargetSubscriber)
		if err != nil {
			p.log.Error("subscriber pc", "err", err)
			return
		}
		p.sub = pc
	}
	added := false
	for _, up := range ups {
		if p.down[up] != nil {
			continue
		}
		dt := NewDownTrack(DownTrackParams{
			Up: up, StreamID: up.Participant(), Logger: p.log, Metrics: p.room.sfu.cfg.Metrics,
		})
		if !up.AddDownTrack(dt) {
			dt.Close() // the track ended meanwhile
			continue
		}
		sender, err := p.sub.AddTrack(dt)
		if err != nil {
			dt.Close()
			p.log.Warn("add track", "err", err)
			continue
		}
		for _, tr := range p.sub.GetTransceivers() {
			if tr.Sender() == sender {
				if err := tr.SetCodecPreferences(codecPreference(up.Codec(), up.Kind() == webrtc.RTPCodecTypeVideo)); err != nil {
					p.log.Warn("codec preferences", "err", err)
				}
			}
		}
		dt.AttachSender(sender)
		if p.subConnected {
			dt.SetReady()
		}
		p.down[up] = &downEntry{dt: dt, sender: sender}
		added = true
		up.keyframeForNewSubscriber() // the new subscriber starts at a keyframe
	}
	if added {
		p.negotiateLocked()
	}
}

// unsubscribe removes the down track of up and renegotiates.
func (p *Participant) unsubscribe(up *UpTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.down[up]
	if e == nil {
		return
	}
	delete(p.down, up)
	e.dt.Close()
	if p.closed || p.sub == nil {
		return
	}
	if err := p.sub.RemoveTrack(e.sender); err != nil {
		p.log.Debug("remove track", "err", err)
	}
	p.negotiateLocked()
}

func (p *Participant) subscriberConnected() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subConnected = true
	for _, e := range p.down {
		e.dt.SetReady()
	}
}

// negotiateLocked sends a new subscriber offer, or, while one is out, notes
// that another is needed once its answer is in.
func (p *Participant) negotiateLocked() {
	if p.closed || p.sub == nil {
		return
	}
	if p.negotiating {
		p.renegotiate = true
		return
	}
	offer, err := p.sub.CreateOffer(nil)
	if err != nil {
		p.log.Error("create offer", "err", err)
		return
	}
	if err := p.sub.SetLocalDescription(offer); err != nil {
		p.log.Error("set local offer", "err", err)
		return
	}
	p.negotiating = true
	p.renegotiate = false
	waitGathering(p.sub)
	p.events.Notify(SubscriberOffer{SDP: p.sub.LocalDescription().SDP})
	p.flushCandidates(TargetSubscriber)
}

// SetSubscriberAnswer applies the client's answer to the last subscriber
// offer. An answer refused before it is applied (ValidateAnswer, or pion
// refusing it whole) gets ErrBadSDP and changes nothing: the offer is
// still out, and a proper answer to it is still taken. An answer pion
// applied in part also gets ErrBadSDP; the server then offers again from
// where the PC stands.
func (p *Participant) SetSubscriberAnswer(answer string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if !p.negotiating || p.sub == nil {
		return ErrWrongState
	}
	if err := ValidateAnswer(answer, p.offeredMediaLocked()); err != nil {
		return err
	}
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		if p.sub.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
			p.negotiating = false
			p.negotiateLocked()
		}
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	p.negotiating = false
	p.applyCandidatesLocked(TargetSubscriber)
	if p.renegotiate {
		p.negotiateLocked()
	}
	return nil
}

// offeredMediaLocked is the number of m-lines of the subscriber offer
// awaiting its answer; called with p.mu.
func (p *Participant) offeredMediaLocked() int {
	ld := p.sub.PendingLocalDescription()
	if ld == nil {
		return 0
	}
	d, err := ld.Unmarshal()
	if err != nil {
		return 0
	}
	return len(d.MediaDescriptions)
}

// SubscriberOfferFailed tells the participant that the client answered the
// subscriber offer with an error (or not at all): roll back and offer again.
func (p *Participant) SubscriberOfferFailed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.negotiating {
		return
	}
	p.abortNegotiationLocked()
}

func (p *Participant) abortNegotiationLocked() {
	if err := p.sub.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
		p.log.Warn("rollback", "err", err)
	}
	p.negotiating = false
	p.negotiateLocked()
}

// AddICECandidate adds a client candidate to one of its PCs, queued until
// that PC has a remote description.
func (p *Participant) AddICECandidate(t Target, c webrtc.ICECandidateInit) error {
	if err := ValidateCandidate(c); err != nil {
		return err
	}
	if c.Candidate == "" {
		return nil // end of candidates: nothing to do with ICE-lite-free pion
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	pc := p.pcLocked(t)
	if pc == nil || pc.RemoteDescription() == nil {
		q := p.remoteCands[t]
		if len(q) >= maxQueuedCandidates {
			q = q[1:]
		}
		p.remoteCands[t] = append(q, c)
		return nil
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

func (p *Participant) pcLocked(t Target) *webrtc.PeerConnection {
	if t == TargetPublisher {
		return p.pub
	}
	return p.sub
}

func (p *Participant) applyCandidatesLocked(t Target) {
	pc := p.pcLocked(t)
	for _, c := range p.remoteCands[t] {
		if err := pc.AddICECandidate(c); err != nil {
			p.log.Debug("queued candidate", "err", err)
		}
	}
	delete(p.remoteCands, t)
}

// onLocalCandidate holds a server candidate until its PC's description has
// been sent (flushCandidates), then trickles it. Candidates are also in
// the description itself: gathering completes before it is sent.
func (p *Participant) onLocalCandidate(t Target, c *webrtc.ICECandidate) {
	var init *webrtc.ICECandidateInit
	if c != nil {
		j := c.ToJSON()
		init = &j
	}
	p.candMu.Lock()
	defer p.candMu.Unlock()
	if !p.delivered[t] {
		p.localCands[t] = append(p.localCands[t], init)
		return
	}
	p.events.Notify(ICECandidate{Target: t, Candidate: init})
}

func (p *Participant) flushCandidates(t Target) {
	p.candMu.Lock()
	defer p.candMu.Unlock()
	if p.delivered[t] {
		return
	}
	p.delivered[t] = true
	for _, c := range p.localCands[t] {
		p.events.Notify(ICECandidate{Target: t, Candidate: c})
	}
	delete(p.localCands, t)
}

// ClosePublisher closes the publisher PC: its tracks are unpublished on
// every subscriber at once. It returns when they are.
func (p *Participant) ClosePublisher() {
	p.mu.Lock()
	pub := p.pub
	p.pub = nil
	delete(p.remoteCands, TargetPublisher)
	p.mu.Unlock()
	p.candMu.Lock()
	p.delivered[TargetPublisher] = false
	delete(p.localCands, TargetPublisher)
	p.candMu.Unlock()
	if pub != nil {
		_ = pub.GracefulClose()
	}
	p.pubWG.Wait()
}

// close closes both PCs and every down track and waits for the
// participant's goroutines. Published tracks are unpublished from the room
// on the way (their readers end when the publisher PC closes).
func (p *Participant) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.pubWG.Wait()
		return
	}
	p.closed = true
	pub, sub := p.pub, p.sub
	down := p.down
	p.down = map[*UpTrack]*downEntry{}
	p.mu.Unlock()
	if pub != nil {
		_ = pub.GracefulClose()
	}
	p.pubWG.Wait()
	for _, e := range down {
		e.dt.Close()
	}
	if sub != nil {
		_ = sub.GracefulClose()
	}
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
// that may no longer publish has its publisher PC closed, so its tracks are
// unpublished on every subscriber at once; SetRole returns after that.
func (p *Participant) SetRole(role Role) {
	r := p.room
	r.mu.Lock()
	if p.gone || p.role == role || p.role == RoleRelay || p.role == RoleHost {
		r.mu.Unlock()
		return
	}
	m := r.sfu.cfg.Metrics.Participants
	m.WithLabelValues(string(p.role)).Dec()
	m.WithLabelValues(string(role)).Inc()
	p.role = role
	info := p.infoLocked()
	for _, q := range r.sortedLocked() {
		q.events.Notify(ParticipantUpdated{Participant: info})
	}
	mayPublish := r.mayPublishLocked(p)
	r.mu.Unlock()
	if !mayPublish {
		p.ClosePublisher()
	}
}

// Name returns the participant's display name.
func (p *Participant) Name() string { return p.name }
