package app

// Cluster mode (Options.Redis): the stores move to Redis, the node joins
// the registry, rooms are placed on nodes, signaling bridges requests to a
// room's node, invitation changes reach every node, relays cross nodes
// over node-to-node links, and a dead node's rooms end. docs/cluster.md.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/cluster"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/relay"
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

// placement is signaling's view of the cluster.
type placement struct{ cl *cluster.Cluster }

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

// startCluster wires the running App into the cluster: load reports, the
// invitation channel, dead nodes. Called once signaling exists.
func (a *App) startCluster(cl *cluster.Cluster, inv *invitations.Manager, store invitations.Store, links *relay.Links) {
	// Every callback below runs on a goroutine of the cluster's, through
	// a.callbacks: once the shutdown has shut that gate they do nothing,
	// so none can touch a closed store or outbox.
	cpu := cluster.NewCPUMeter()
	cl.SetLoad(func() (l cluster.Load) {
		a.callbacks.run(func() {
			l = cluster.Load{CPU: cpu.Sample(), PacketsPerSec: a.packetRate()}
			if links != nil {
				a.Metrics.RelayLinks.Set(float64(links.Up()))
			}
			for _, r := range a.SFU.Rooms() {
				info := r.Info(false)
				if info.Status.Ended() {
					continue
				}
				l.Rooms++
				l.Participants += info.NumParticipants
			}
		})
		return l
	})
	cancel := cl.Subscribe(invitationsChannel, func(msg []byte) {
		var n invitationNote
		if json.Unmarshal(msg, &n) != nil || n.From == cl.NodeID() {
			return
		}
		a.callbacks.run(func() { a.Signaling.InvitationChanged(n.Invitation) })
	})
	a.closers = append(a.closers, closerFunc(func() error { cancel(); return nil }))
	cl.OnEvicted(func() {
		// The others ended this node's rooms in the store: end them here
		// too, so nobody is left in a room that no longer exists.
		a.callbacks.run(func() {
			for _, r := range a.SFU.Rooms() {
				if !r.Status().Ended() {
					r.End(sfu.EndNodeLost)
				}
			}
		})
	})
	cl.OnNodeGone(func(node cluster.Node, rooms []string, owner bool) {
		a.callbacks.run(func() {
			a.log().Warn("cluster: node gone", "node", node.ID, "rooms", len(rooms), "owner", owner)
			if links != nil {
				links.PeerGone(node.ID)
			}
			if owner {
				a.endRoomsOf(node, rooms, store, inv)
			}
		})
	})
}

// publishInvitation tells the other nodes about a change made here.
func publishInvitation(cl *cluster.Cluster, i invitations.Invitation, log func(string, ...any)) {
	b, err := json.Marshal(invitationNote{From: cl.NodeID(), Invitation: i})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := cl.Publish(ctx, invitationsChannel, b); err != nil {
		log("cluster: publishing an invitation change", "invitation", i.ID, "err", err)
	}
}

// endRoomsOf ends the rooms of a dead node in the store, as a restart ends
// them on one node: status ended, pending invitations ended, room.ended.
// Exactly one surviving node runs it (the cluster's cleanup owner).
func (a *App) endRoomsOf(node cluster.Node, rooms []string, store invitations.Store, inv *invitations.Manager) {
	now := time.Now().UTC()
	for _, room := range rooms {
		rec, err := store.GetRoom(room)
		if err != nil {
			continue // never created (placed for a join that failed)
		}
		if !sfu.RoomStatus(rec.Status).Ended() {
			rec.Status, rec.EndedAt, rec.EndReason = string(sfu.StatusEnded), &now, string(sfu.EndNodeLost)
			if err := store.PutRoom(rec); err != nil {
				a.log().Error("cluster: ending a dead node's room", "node", node.ID, "room", room, "err", err)
				continue
			}
			// reason: the name this event had before endReason.
			a.emit("room.ended", room, map[string]any{"endReason": sfu.EndNodeLost, "reason": sfu.EndNodeLost})
		}
		if _, err := inv.EndRoom(room); err != nil {
			a.log().Error("cluster: ending a dead node's invitations", "room", room, "err", err)
		}
	}
}

// packetRate is the packets forwarded per second since the last call.
func (a *App) packetRate() float64 {
	total := counterSum(a.Metrics, "video") + counterSum(a.Metrics, "audio")
	now := time.Now()
	a.rateMu.Lock()
	defer a.rateMu.Unlock()
	var rate float64
	if !a.rateAt.IsZero() {
		if dt := now.Sub(a.rateAt).Seconds(); dt > 0 {
			rate = (total - a.rateTotal) / dt
		}
	}
	a.rateAt, a.rateTotal = now, total
	return rate
}

func counterSum(m *metrics.Metrics, kind string) float64 {
	var d dto.Metric
	if err := m.PacketsOut.WithLabelValues(kind).Write(&d); err != nil || d.Counter == nil {
		return 0
	}
	return d.Counter.GetValue()
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

var _ signaling.Placement = placement{}
