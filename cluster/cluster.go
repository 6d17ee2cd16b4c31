package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/internal/ids"
)

// Options configures Open. Either Client or URL is required, and Advertise.
type Options struct {
	// Client is used as is and left open by Close. When nil, Open dials URL
	// (redis.ParseURL syntax, e.g. "redis://:pass@host:6379/0") and Close
	// closes that client.
	Client redis.UniversalClient
	URL    string
	// Prefix starts every key and channel name; default "relayd:". Several
	// clusters can share one Redis with different prefixes.
	Prefix string
	// NodeID names this node; default a random "ND_" id. A fixed id lets a
	// restarted node take its old name: Open then waits until the previous
	// process's registration expires (up to TTL) and cleans it up.
	NodeID string
	// Advertise is this node's HTTP base URL that other nodes and clients
	// use, e.g. "http://10.0.0.5:8800".
	Advertise string
	// Heartbeat is how often the node refreshes its registration and looks
	// for dead nodes; default 1s.
	Heartbeat time.Duration
	// TTL is how long a registration lives without a heartbeat: a node not
	// heard from for TTL is dead. Default 3*Heartbeat (two heartbeats may
	// be lost before the node counts as dead); it must exceed Heartbeat.
	TTL    time.Duration
	Logger *slog.Logger
}

// ErrNodeIDInUse is returned by Open when another live process heartbeats
// under Options.NodeID.
var ErrNodeIDInUse = errors.New("cluster: node id is in use by a live node")

// Cluster is this node's membership in the cluster. Its methods are safe
// for concurrent use.
type Cluster struct {
	client    redis.UniversalClient
	ownClient bool
	k         keys
	id        string
	hb, ttl   time.Duration
	log       *slog.Logger

	load atomic.Pointer[func() Load]

	mu      sync.Mutex
	self    Node
	onGone  []func(Node, []string, bool)
	onEvict []func()
	pending []goneEvent // found by Open, delivered by the first watch tick

	known map[string]Node // nodes alive at the previous watch tick; watch goroutine only

	hbErr, watchErr outage // owned by the heartbeat and the watch goroutine

	ps pubsub

	stop     context.CancelFunc
	loops    sync.WaitGroup
	haltOnce sync.Once
	closeErr error
}

// keys builds the names described in the package doc.
type keys struct{ p string }

func (k keys) nodes() string              { return k.p + "nodes" }
func (k keys) node(id string) string      { return k.p + "node:" + id }
func (k keys) nodeRooms(id string) string { return k.p + "node:" + id + ":rooms" }
func (k keys) room(room string) string    { return k.p + "room:" + room }
func (k keys) gone(id string) string      { return k.p + "gone:" + id }
func (k keys) channel(ch string) string   { return k.p + "ch:" + ch }

// Open connects (PING), registers this node and starts its heartbeat and
// watch goroutines. ctx bounds only the work done inside Open.
func Open(ctx context.Context, o Options) (*Cluster, error) {
	if o.Advertise == "" {
		return nil, errors.New("cluster: Options.Advertise is required")
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	if o.TTL <= 0 {
		o.TTL = 3 * o.Heartbeat
	}
	if o.TTL <= o.Heartbeat {
		return nil, fmt.Errorf("cluster: TTL %v must exceed Heartbeat %v", o.TTL, o.Heartbeat)
	}
	if o.Prefix == "" {
		o.Prefix = "relayd:"
	}
	if o.NodeID == "" {
		o.NodeID = ids.New("ND_", 12)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{
		client: o.Client, k: keys{o.Prefix}, id: o.NodeID, hb: o.Heartbeat, ttl: o.TTL,
		log: o.Logger.With("node", o.NodeID), known: map[string]Node{},
	}
	c.ps.done = make(chan struct{})
	if c.client == nil {
		if o.URL == "" {
			return nil, errors.New("cluster: Options.Client or Options.URL is required")
		}
		ro, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		// Honour context deadlines on the socket, so a hung Redis costs a
		// heartbeat its timeout and not go-redis's 3s read timeout.
		ro.ContextTimeoutEnabled = true
		c.client, c.ownClient = redis.NewClient(ro), true
	}
	if err := c.start(ctx, o.Advertise); err != nil {
		if c.ownClient {
			_ = c.client.Close()
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, url string) error {
	if err := c.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cluster: redis: %w", err)
	}
	ev, err := c.claimID(ctx)
	if err != nil {
		return err
	}
	if ev != nil {
		c.pending = append(c.pending, *ev)
	}
	now := time.Now()
	c.self = Node{ID: c.id, URL: url, Started: now, Seen: now}
	if err := c.heartbeat(ctx, true); err != nil {
		return err
	}
	loopCtx, stop := context.WithCancel(context.Background())
	c.stop = stop
	c.loops.Add(2)
	go c.run(loopCtx, func(ctx context.Context) { _ = c.heartbeat(ctx, false) })
	go c.run(loopCtx, c.watch)
	c.log.Info("cluster: joined", "url", url, "heartbeat", c.hb, "ttl", c.ttl)
	return nil
}

// run calls tick every Heartbeat until ctx ends. Each tick gets TTL-Heartbeat
// to finish: a heartbeat landing any time before the previous one expires
// still keeps the node alive, and a tick that takes longer is dropped by the
// ticker instead of piling up.
func (c *Cluster) run(ctx context.Context, tick func(context.Context)) {
	defer c.loops.Done()
	t := time.NewTicker(c.hb)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tctx, cancel := context.WithTimeout(ctx, c.ttl-c.hb)
		tick(tctx)
		cancel()
	}
}

// NodeID is this node's id.
func (c *Cluster) NodeID() string { return c.id }

// Self is this node as of its last heartbeat.
func (c *Cluster) Self() Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.self
}

// Client is the Redis client, for callers that keep their own keys there.
func (c *Cluster) Client() redis.UniversalClient { return c.client }

// SetLoad sets the function sampled at every heartbeat (on the heartbeat
// goroutine, so it must not block). nil reports a zero Load.
func (c *Cluster) SetLoad(fn func() Load) {
	if fn == nil {
		c.load.Store(nil)
		return
	}
	c.load.Store(&fn)
}

// OnNodeGone registers fn, called on the watch goroutine once for every
// node that dies (stops heartbeating without Close), on every surviving
// node, with the rooms that were placed on it. owner is true on exactly one
// survivor, which should end those rooms in shared storage. See the package
// doc for how this works. Register callbacks right after Open: the first
// watch tick, one Heartbeat after Open, delivers what Open itself found (the
// registration of a crashed earlier process with the same fixed NodeID).
func (c *Cluster) OnNodeGone(fn func(node Node, rooms []string, owner bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onGone = append(c.onGone, fn)
}

// OnEvicted registers fn, called on the heartbeat goroutine when this node
// finds that the others declared it dead (it missed heartbeats for TTL, a
// long pause or a partition) and cleaned it up: its rooms are ended in the
// store and their placements gone, so the caller should end the rooms it
// still serves. The node is registered again (empty) right after.
func (c *Cluster) OnEvicted(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onEvict = append(c.onEvict, fn)
}

// Close stops the goroutines and subscriptions, deregisters the node (its
// registration, alive key and room placements) and closes the client if
// Open created it. Other nodes do not report a closed node as gone. It
// waits at most 5s for Redis. Calling it again returns the first result.
func (c *Cluster) Close() error {
	c.halt(true)
	return c.closeErr
}

// halt stops everything; deregister=false simulates a crash in tests: the
// keys stay until they expire and the other nodes clean up.
func (c *Cluster) halt(deregister bool) {
	c.haltOnce.Do(func() {
		c.stop()
		c.loops.Wait()
		c.ps.close()
		if deregister {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.closeErr = c.deregister(ctx)
			cancel()
			c.log.Info("cluster: left")
		}
		if c.ownClient {
			if err := c.client.Close(); err != nil && c.closeErr == nil {
				c.closeErr = err
			}
		}
	})
}

// outage logs a failing loop without a warning every heartbeat while Redis
// is down: a warning at the first failure, debug after, info on recovery.
type outage struct{ failing bool }

func (o *outage) fail(log *slog.Logger, msg string, err error) {
	if o.failing {
		log.Debug(msg, "err", err)
		return
	}
	o.failing = true
	log.Warn(msg, "err", err)
}

func (o *outage) ok(log *slog.Logger, msg string) {
	if o.failing {
		o.failing = false
		log.Info(msg)
	}
}
