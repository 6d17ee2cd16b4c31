// Package rooms is the one home of the rooms' business rules: a room's
// lifecycle (created by a host's join or the HTTP API, restored after a
// restart, ended with a reason and every effect of its end), roles and the
// publish gate's inputs, invitations' effects on participants, bans and
// kicks, chat, relays, recording policy, retention, a dead node's rooms and
// the webhook events. It builds and owns the sfu (the media plane: it is
// the sfu's one Observer), the invitations Manager and the relay Manager.
//
// It knows nothing of JSON-RPC, WebSockets, HTTP or tokens: the transport
// (signaling) hands it identities, roles and names, and gets back results
// and typed errors (errors.go). Everything a member's client must be told
// reaches it through the member's Sink, in order (events.go).
//
// Imports point one way: rooms uses sfu, invitations, chat, relay,
// recorder and webhooks; signaling, app and cluster use rooms.
package rooms

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/relay"
	"github.com/relaysfu/relayd/sfu"
)

// Config lists the dependencies and the rules' settings.
type Config struct {
	// Media configures the sfu that Rooms builds; its Observer and
	// IsCohost are Rooms' own (whatever is set there is replaced). Its
	// Logger and Metrics are Rooms' too (defaults: discard, a new set).
	Media sfu.Config
	// Invitations configures the invitations Manager that Rooms builds
	// (its OnChange is Rooms' own). Its Store keeps the room records too.
	Invitations invitations.Config
	// Chat keeps the rooms' chat history.
	Chat chat.Store
	// Webhooks receives the events webhooks tell; nil: none.
	Webhooks Emitter
	// Cluster is cluster mode's placement and invitation channel; nil on
	// one node.
	Cluster Cluster
	// Links, in cluster mode, configures the node-to-node relay links
	// Rooms builds (its SFU is Rooms' own); nil on one node.
	Links *relay.LinkConfig
	// AuthorizeRelay checks a relay destination (a token is the
	// transport's business): the identity the stream takes there, or the
	// relay error. Required.
	AuthorizeRelay func(relay.Target) (identity string, failure relay.Error)
	// MaxRelayDestinations is --max-relay-destinations (0: relay's
	// default, 4).
	MaxRelayDestinations int
	// DataDir holds the recordings (DataDir/recordings); without one the
	// server records nothing (HasRecorder).
	DataDir string
	// RecordAll records every room (--record); otherwise rooms are
	// recorded on request (SetRecording).
	RecordAll bool
	// Retention is how long an ended room is kept (retention.go); 0:
	// forever.
	Retention time.Duration
	// RoomCreateRate is --room-create-rate: rooms one identity may create
	// a minute (ratelimit.go); 0: no limit.
	RoomCreateRate int
	// Now is the rate limits' clock (tests); nil: time.Now.
	Now func() time.Time
	// IsCohost, when set, stands in for the invitations in the relay
	// publish gate (tests that relay without inviting).
	IsCohost func(room, identity string) bool
}

// Emitter is where webhook events go: the outbox, which delivers them.
// Emit must not block for long (it stores the event and returns).
type Emitter interface {
	Emit(typ, room string, data any)
}

// Cluster is what rooms needs of cluster mode.
type Cluster interface {
	// Release drops room's placement if it names this node: the room has
	// ended here and no longer counts as this node's load.
	Release(ctx context.Context, room string) error
	// Elsewhere reports whether a live node other than this one holds
	// room.
	Elsewhere(ctx context.Context, room string) (bool, error)
	// PublishInvitation tells the other nodes of a change made here;
	// they pass it to their Rooms.InvitationChanged.
	PublishInvitation(invitations.Invitation)
}

// clusterTimeout bounds one placement lookup or release (a Redis round
// trip).
const clusterTimeout = 3 * time.Second

// Rooms owns the rooms of this node and their rules. Its methods are safe
// for concurrent use.
//
// Goroutines: Run's (the retention sweeper and the invitation sweeper),
// and one per room whose recordings are being finalized (waited for by
// Close).
type Rooms struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Metrics
	sfu     *sfu.SFU
	inv     *invitations.Manager
	store   invitations.Store
	chat    chat.Store
	relays  *relay.Manager
	links   *relay.Links // cluster mode only
	rec     *recordings  // nil: no recorder (no data directory)
	ret     *retention
	creates *createLimiter // nil: no limit
	streams *streams       // track.stream (streams.go)

	// muteMu orders mutes (mute.go): a track's flag and the notices of
	// its change, in its room and its relayed copies' rooms, go together.
	// It is held while calling the sfu's UpTrack.SetMuted and
	// Room.TellMuted, which call nothing back.
	muteMu sync.Mutex

	// lifeMu orders the writes of a room's record (persist) against the
	// start of its next broadcast. It is held over a store write and a
	// read of the sfu's registry, never while calling anything else.
	lifeMu sync.Mutex

	// Locking: no lock of rooms is held while calling into the sfu, the
	// invitations or the relays, or while a member is told anything.
	mu         sync.Mutex
	byPart     map[*sfu.Participant]*Member // guarded by mu: members in a room
	byIdentity map[string]map[*Member]bool  // guarded by mu: every member, user sessions too
	chats      map[string]*roomChat         // guarded by mu: by room
	started    map[string]bool              // guarded by mu: broadcasts that told room.started
	// banMu is apart: the sfu's publish gate (relayGate) reads the bans
	// with its room lock held. Nothing is called with it held.
	banMu sync.Mutex
	bans  map[string]map[string]bool // guarded by banMu: room -> banned identities
}

// New builds the rooms layer: the sfu, the invitations and relay
// Managers, and on one node restores the stored rooms (in cluster mode a
// room is restored by the node it is placed on, when first asked for).
// Recordings a kill left unfinished are repaired before it returns.
func New(c Config) (*Rooms, error) {
	if c.Media.Logger == nil {
		c.Media.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Media.Metrics == nil {
		c.Media.Metrics = metrics.New()
	}
	if c.Invitations.Logger == nil {
		c.Invitations.Logger = c.Media.Logger
	}
	if c.Invitations.Metrics == nil {
		c.Invitations.Metrics = c.Media.Metrics
	}
	r := &Rooms{
		cfg: c, log: c.Media.Logger, metrics: c.Media.Metrics,
		store: c.Invitations.Store, chat: c.Chat,
		byPart:     map[*sfu.Participant]*Member{},
		byIdentity: map[string]map[*Member]bool{},
		chats:      map[string]*roomChat{},
		bans:       map[string]map[string]bool{},
		started:    map[string]bool{},
		creates:    newCreateLimiter(c.RoomCreateRate, c.Now),
		streams:    newStreams(),
	}
	ic := c.Invitations
	ic.OnChange = func(i invitations.Invitation) { r.invitationChanged(i, true) }
	r.inv = invitations.NewManager(ic)
	media := c.Media
	media.Observer = r
	media.IsCohost = r.relayGate
	r.sfu = sfu.New(media)
	var remote relay.Remote
	if c.Links != nil {
		lc := *c.Links
		lc.SFU = r.sfu
		lc.OnHeld = r.relayCopyHeld
		lc.OnPaused = r.relayCopyPaused
		lc.OnMuted = r.relayCopyMuted
		if lc.Logger == nil {
			lc.Logger = r.log
		}
		if lc.Metrics == nil {
			lc.Metrics = r.metrics
		}
		links, err := relay.NewLinks(lc)
		if err != nil {
			return nil, fmt.Errorf("relay links: %w", err)
		}
		r.links = links
		remote = r.links
	}
	r.relays = relay.NewManager(relay.Config{
		SFU: r.sfu, MaxDestinations: c.MaxRelayDestinations, Authorize: c.AuthorizeRelay, Remote: remote,
		Logger: r.log, Metrics: r.metrics,
	})
	recDir := ""
	if c.DataDir != "" {
		recDir = filepath.Join(c.DataDir, "recordings")
		r.rec = &recordings{
			dir: recDir, all: c.RecordAll, sfu: r.sfu, emit: r.emit, log: r.log,
			bcs: map[*sfu.Room]*broadcastRec{},
		}
	}
	r.ret = &retention{keep: c.Retention, sfu: r.sfu, store: r.store, chat: r.chat, recDir: recDir, log: r.log}
	if c.Cluster == nil {
		if err := r.restore(); err != nil {
			return nil, err
		}
	}
	if r.rec != nil {
		r.rec.repairCut() // before rooms are served
	}
	return r, nil
}

// SFU returns the media plane.
func (r *Rooms) SFU() *sfu.SFU { return r.sfu }

// Invitations returns the invitations Manager.
func (r *Rooms) Invitations() *invitations.Manager { return r.inv }

// Relays returns the relay Manager.
func (r *Rooms) Relays() *relay.Manager { return r.relays }

// Links returns the node-to-node relay links (nil on one node).
func (r *Rooms) Links() *relay.Links { return r.links }

// Run runs the background work until ctx is done: the invitation sweeper
// (expiry) and the retention sweeper.
func (r *Rooms) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.ret.run(ctx) })
	r.inv.Run(ctx)
	wg.Wait()
}

// Close ends every room (server_shutdown) and returns once every end's
// effects have run, the recordings are finalized and every relay is
// stopped. New rooms are refused from then on.
func (r *Rooms) Close() {
	r.sfu.Close()
	if r.rec != nil {
		r.rec.wait()
	}
	r.relays.Close()
}

// Purge runs one retention sweep as if the clock read now (the sweeper
// runs one a minute; tests move the clock) and returns how many rooms it
// purged.
func (r *Rooms) Purge(ctx context.Context, now time.Time) int { return r.ret.sweep(ctx, now) }

// Load is this node's share of the work, as the cluster weighs it.
type Load struct {
	Rooms        int // rooms that have not ended
	Participants int // in those rooms
}

// Load counts the rooms that have not ended and their participants.
func (r *Rooms) Load() Load {
	var l Load
	for _, room := range r.sfu.Rooms() {
		info := room.Info(false)
		if info.Status.Ended() {
			continue
		}
		l.Rooms++
		l.Participants += info.NumParticipants
	}
	return l
}

// emit hands a webhook event to the outbox.
func (r *Rooms) emit(typ, room string, data any) {
	if r.cfg.Webhooks != nil {
		r.cfg.Webhooks.Emit(typ, room, data)
	}
}

// withBroadcast adds broadcastId to a room event's webhook data
// (PROTOCOL.md 1.1 §9), unless bc is "" (a room or an invitation from
// before broadcasts).
func withBroadcast(data map[string]any, bc string) map[string]any {
	if bc != "" {
		data["broadcastId"] = bc
	}
	return data
}

// relayGate answers the sfu's publish gate for a relay participant of
// identity in room, besides the room's host: an accepted invitation there
// (or the test stand-in), and no ban.
func (r *Rooms) relayGate(room, identity string) bool {
	if r.banned(room, identity) {
		return false
	}
	if r.cfg.IsCohost != nil {
		return r.cfg.IsCohost(room, identity)
	}
	return r.isCohost(room, identity)
}

// clusterCtx bounds one call to the cluster.
func clusterCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), clusterTimeout)
}
