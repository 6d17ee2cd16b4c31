package app

// Cluster mode (Options.Redis): the stores move to Redis, the node joins
// the registry, rooms are placed on nodes, signaling bridges requests to a
// room's node, invitation changes reach every node, relays cross nodes
// over node-to-node links, and a dead node's rooms end. docs/cluster.md.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/cluster"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/rooms"
	"github.com/relaysfu/relayd/sfu"
	"github.com/relaysfu/relayd/signaling"
)

// redisPrefix starts every key relayd writes in Redis.
const redisPrefix = "relayd:"

// invitationsChannel carries invitation changes between nodes.
const invitationsChannel = "invitations"

// stores are the persistent state: bbolt files in the data dir on one
// node, Redis in cluster mode.
type stores struct {
	inv  invitations.Store
	chat chat.Store
	rdb  redis.UniversalClient // nil on one node
}

func openStores(o Options, cl *cluster.Cluster) (stores, error) {
	if cl != nil {
		c := cl.Client()
		return stores{inv: invitations.NewRedisStore(c, redisPrefix), chat: chat.NewRedisStore(c, redisPrefix), rdb: c}, nil
	}
	inv, err := invitations.OpenBolt(o.DataDir)
	if err != nil {
		return stores{}, fmt.Errorf("data dir: %w", err)
	}
	ch, err := chat.OpenBolt(o.DataDir)
	if err != nil {
		_ = inv.Close()
		return stores{}, fmt.Errorf("data dir: %w", err)
	}
	return stores{inv: inv, chat: ch}, nil
}

// openCluster joins the registry when Options.Redis is set.
func openCluster(o Options) (*cluster.Cluster, error) {
	if o.Redis == "" {
		return nil, nil
	}
	if o.Advertise == "" {
		return nil, fmt.Errorf("cluster: the node's advertised URL is required with --redis")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := cluster.Open(ctx, cluster.Options{
		URL: o.Redis, Prefix: redisPrefix, NodeID: o.NodeID, Advertise: o.Advertise, Logger: o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return cl, nil
}

// placement is signaling's and rooms' view of the cluster.
type placement struct {
	cl  *cluster.Cluster
	log *slog.Logger
}

func (p placement) NodeID() string { return p.cl.NodeID() }

func (p placement) Route(ctx context.Context, room string, place bool) (string, error) {
	n, ok, err := p.cl.RoomNode(ctx, room)
	if err != nil {
		return "", err
	}
	if !ok {
		if !place {
			return "", nil
		}
		if n, err = p.cl.PlaceRoom(ctx, room); err != nil {
			return "", err
		}
	}
	if n.ID == p.cl.NodeID() {
		return "", nil
	}
	return n.URL, nil
}

func (p placement) Release(ctx context.Context, room string) error {
	return p.cl.ReleaseRoom(ctx, room)
}

func (p placement) Elsewhere(ctx context.Context, room string) (bool, error) {
	n, ok, err := p.cl.RoomNode(ctx, room)
	if err != nil {
		return false, err
	}
	return ok && n.ID != p.cl.NodeID(), nil
}

func (p placement) Peers(ctx context.Context) ([]string, error) {
	nodes, err := p.cl.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes {
		if n.ID != p.cl.NodeID() {
			out = append(out, n.URL)
		}
	}
	return out, nil
}

// locate tells the relay links which node holds a room that is not here.
func (p placement) locate(room string) (nodeID, baseURL string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	n, found, err := p.cl.RoomNode(ctx, room)
	if err != nil || !found || n.ID == p.cl.NodeID() {
		return "", "", false
	}
	return n.ID, n.URL, true
}

// invitationNote is one invitation change on the cluster channel.
type invitationNote struct {
	From       string                 `json:"from"`
	Invitation invitations.Invitation `json:"invitation"`
}

// PublishInvitation tells the other nodes about a change made here.
func (p placement) PublishInvitation(i invitations.Invitation) {
	b, err := json.Marshal(invitationNote{From: p.cl.NodeID(), Invitation: i})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.cl.Publish(ctx, invitationsChannel, b); err != nil {
		p.log.Error("cluster: publishing an invitation change", "invitation", i.ID, "err", err)
	}
}

// startCluster wires the running App into the cluster: load reports, the
// invitation channel, dead nodes. Called once rooms exists.
func (a *App) startCluster(cl *cluster.Cluster) {
	// Every callback below runs on a goroutine of the cluster's, through
	// a.callbacks: once the shutdown has shut that gate they do nothing,
	// so none can touch a closed store or outbox.
	cpu := cluster.NewCPUMeter()
	links := a.Rooms.Links()
	cl.SetLoad(func() (l cluster.Load) {
		a.callbacks.run(func() {
			rl := a.Rooms.Load()
			l = cluster.Load{
				Rooms: rl.Rooms, Participants: rl.Participants,
				CPU: cpu.Sample(), PacketsPerSec: a.rate.sample(a.SFU.PacketsForwarded(), time.Now()),
			}
			a.Metrics.RelayLinks.Set(float64(links.Up()))
		})
		return l
	})
	cancel := cl.Subscribe(invitationsChannel, func(msg []byte) {
		var n invitationNote
		if json.Unmarshal(msg, &n) != nil || n.From == cl.NodeID() {
			return
		}
		a.callbacks.run(func() { a.Rooms.InvitationChanged(n.Invitation) })
	})
	a.closers = append(a.closers, closerFunc(func() error { cancel(); return nil }))
	cl.OnEvicted(func() {
		// The others ended this node's rooms in the store: end them here
		// too, so nobody is left in a room that no longer exists.
		a.callbacks.run(func() { a.Rooms.EndAll(sfu.EndNodeLost) })
	})
	cl.OnNodeGone(func(node cluster.Node, rooms []string, owner bool) {
		a.callbacks.run(func() {
			a.log().Warn("cluster: node gone", "node", node.ID, "rooms", len(rooms), "owner", owner)
			links.PeerGone(node.ID)
			if owner {
				a.Rooms.EndRoomsOfNode(node.ID, rooms)
			}
		})
	})
}

// packetRate turns the packets forwarded so far into packets a second
// since the last sample.
type packetRate struct {
	mu    sync.Mutex
	at    time.Time // guarded by mu
	total uint64    // guarded by mu
}

// sample returns the rate since the last call (0 the first time).
func (p *packetRate) sample(total uint64, now time.Time) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var rate float64
	if !p.at.IsZero() {
		if dt := now.Sub(p.at).Seconds(); dt > 0 {
			rate = float64(total-p.total) / dt
		}
	}
	p.at, p.total = now, total
	return rate
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

var (
	_ signaling.Placement = placement{}
	_ rooms.Cluster       = placement{}
)
