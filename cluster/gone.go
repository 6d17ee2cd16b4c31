package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/redis/go-redis/v9"
)

// goneEvent is one dead node to report to the OnNodeGone callbacks.
type goneEvent struct {
	node  Node
	rooms []string
	owner bool
}

// reap results.
const (
	reapAlive   = 0 // the node's alive key exists: not dead
	reapWon     = 1 // this call cleaned the node up: owner
	reapCleaned = 2 // another node cleaned it up; rooms from the tombstone
	reapUnknown = 3 // neither registered nor a tombstone: it left via Close
)

// reapScript is the atomic dead-node cleanup. ARGV: prefix, dead id,
// tombstone ttl ms, caller id. Returns {code} or
// {code, winner id, node JSON, room...}. The tombstone keeps the winner so a
// winner whose reply was lost (timeout) still learns it is the owner when it
// retries.
var reapScript = redis.NewScript(`
local p, id = ARGV[1], ARGV[2]
local gk = p .. 'gone:' .. id
if redis.call('EXISTS', p .. 'node:' .. id) == 1 then return {0} end
local last = redis.call('HGET', KEYS[1], id)
if not last then
  local t = redis.call('LRANGE', gk, 0, -1)
  if #t == 0 then return {3} end
  table.insert(t, 1, 2)
  return t
end
local rk = p .. 'node:' .. id .. ':rooms'
local out = {1, ARGV[4], last}
for _, room in ipairs(redis.call('SMEMBERS', rk)) do
  local key = p .. 'room:' .. room
  if redis.call('GET', key) == id then
    redis.call('DEL', key)
    out[#out + 1] = room
  end
end
redis.call('DEL', gk, rk)
-- in chunks: unpack of more than ~8000 values overflows the Lua stack
for i = 2, #out, 1000 do
  redis.call('RPUSH', gk, unpack(out, i, math.min(i + 999, #out)))
end
redis.call('PEXPIRE', gk, ARGV[3])
redis.call('HDEL', KEYS[1], id)
return out
`)

// reap runs reapScript for id. The tombstone lives 10*TTL: survivors read
// it within about one heartbeat (TTL/3 by default) of the winner, so that is
// ~30 heartbeats of slack for a slow one.
func (c *Cluster) reap(ctx context.Context, id string) (goneEvent, int, error) {
	res, err := reapScript.Run(ctx, c.client, []string{c.k.nodes()},
		c.k.p, id, (10 * c.ttl).Milliseconds(), c.id).Slice()
	if err != nil {
		return goneEvent{}, 0, fmt.Errorf("cluster: reap %s: %w", id, err)
	}
	if len(res) == 0 {
		return goneEvent{}, 0, fmt.Errorf("cluster: reap %s: empty reply", id)
	}
	code, _ := res[0].(int64)
	if code != reapWon && code != reapCleaned {
		return goneEvent{}, int(code), nil
	}
	if len(res) < 3 {
		return goneEvent{}, 0, fmt.Errorf("cluster: reap %s: short reply %v", id, res)
	}
	winner, _ := res[1].(string)
	ev := goneEvent{owner: winner == c.id, rooms: []string{}}
	s, _ := res[2].(string)
	if ev.node, err = parseRecordJSON(id, s); err != nil {
		c.log.Warn("cluster: dead node has an unreadable record", "dead", id, "err", err)
	}
	for _, r := range res[3:] {
		s, _ := r.(string)
		ev.rooms = append(ev.rooms, s)
	}
	sort.Strings(ev.rooms)
	return ev, int(code), nil
}

// watch is one tick of the watch goroutine: find the nodes that died since
// the last tick, reap them and report them.
func (c *Cluster) watch(ctx context.Context) {
	alive, dead, err := c.scan(ctx)
	if err != nil {
		c.watchErr.fail(c.log, "cluster: watch failed", err)
		return
	}
	c.watchErr.ok(c.log, "cluster: watch recovered")
	cands := map[string]bool{}
	for _, id := range dead {
		cands[id] = true
	}
	for id := range c.known {
		if _, ok := alive[id]; !ok {
			cands[id] = true
		}
	}
	delete(cands, c.id) // our own lapse is for the others to judge
	next := make(map[string]Node, len(alive))
	for id, n := range alive {
		if id != c.id {
			next[id] = n
		}
	}

	c.mu.Lock()
	events := c.pending
	c.pending = nil
	c.mu.Unlock()
	ids := make([]string, 0, len(cands))
	for id := range cands {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ev, res, err := c.reap(ctx, id)
		if err != nil {
			c.log.Warn("cluster: watch", "err", err)
			n, ok := c.known[id]
			if !ok {
				n = Node{ID: id}
			}
			next[id] = n // retry next tick; the tombstone tells us if we had won

			continue
		}
		switch res {
		case reapAlive: // it came back between scan and reap; the next scan sees it
			if n, ok := c.known[id]; ok {
				next[id] = n
			}
		case reapWon, reapCleaned:
			events = append(events, ev)
		}
	}
	c.known = next
	c.deliver(events)
}

func (c *Cluster) deliver(events []goneEvent) {
	if len(events) == 0 {
		return
	}
	c.mu.Lock()
	fns := slices.Clone(c.onGone)
	c.mu.Unlock()
	for _, ev := range events {
		c.log.Info("cluster: node gone", "dead", ev.node.ID, "url", ev.node.URL,
			"rooms", len(ev.rooms), "owner", ev.owner)
		for _, fn := range fns {
			fn(ev.node, slices.Clone(ev.rooms), ev.owner)
		}
	}
}
