package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// heartbeatScript refreshes the alive key and the registry entry.
// ARGV: prefix, id, ttl ms, record JSON, then the hash field/value pairs.
// Returns {added, lapsed}: added=1 when the registry entry was missing (a
// survivor cleaned this node up), lapsed=1 when the alive key had expired.
var heartbeatScript = redis.NewScript(`
local nk = ARGV[1] .. 'node:' .. ARGV[2]
local lapsed = 1 - redis.call('EXISTS', nk)
redis.call('HSET', nk, unpack(ARGV, 5))
redis.call('PEXPIRE', nk, ARGV[3])
local added = redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
return {added, lapsed}
`)

// heartbeat samples the load and refreshes this node's keys. first is the
// registration in Open, where a missing entry is expected.
func (c *Cluster) heartbeat(ctx context.Context, first bool) error {
	var load Load
	if fn := c.load.Load(); fn != nil {
		load = (*fn)()
	}
	c.mu.Lock()
	n := c.self
	c.mu.Unlock()
	n.Load, n.Seen = load, time.Now()
	r := n.record()
	args := append([]any{c.k.p, c.id, c.ttl.Milliseconds(), r.json()}, r.fields()...)
	res, err := heartbeatScript.Run(ctx, c.client, []string{c.k.nodes()}, args...).Int64Slice()
	if err != nil {
		err = fmt.Errorf("cluster: heartbeat: %w", err)
		if !first {
			c.hbErr.fail(c.log, "cluster: heartbeat failed", err)
		}
		return err
	}
	c.hbErr.ok(c.log, "cluster: heartbeat recovered")
	c.mu.Lock()
	c.self = n
	c.mu.Unlock()
	switch {
	case first:
	case len(res) == 2 && res[0] == 1:
		c.log.Warn("cluster: this node had been declared dead (no heartbeat for TTL) and re-registered; its room placements were dropped", "ttl", c.ttl)
		c.mu.Lock()
		fns := append([]func(){}, c.onEvict...)
		c.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	case len(res) == 2 && res[1] == 1:
		c.log.Warn("cluster: heartbeat came after the registration expired", "ttl", c.ttl)
	}
	return nil
}

// deregisterScript removes this node: its placements that still name it,
// its rooms set, alive key, registry entry and any tombstone of an earlier
// process with the same id. ARGV: prefix, id.
var deregisterScript = redis.NewScript(`
local p, id = ARGV[1], ARGV[2]
local rk = p .. 'node:' .. id .. ':rooms'
for _, room in ipairs(redis.call('SMEMBERS', rk)) do
  local key = p .. 'room:' .. room
  if redis.call('GET', key) == id then redis.call('DEL', key) end
end
redis.call('DEL', rk, p .. 'node:' .. id, p .. 'gone:' .. id)
redis.call('HDEL', KEYS[1], id)
return 1
`)

func (c *Cluster) deregister(ctx context.Context) error {
	if err := deregisterScript.Run(ctx, c.client, []string{c.k.nodes()}, c.k.p, c.id).Err(); err != nil {
		return fmt.Errorf("cluster: deregister: %w", err)
	}
	return nil
}

// claimID makes sure no other live process uses this node's id before Open
// registers it. A registration left by a crashed earlier process with the
// same id is waited out (its alive key expires within TTL) and cleaned up
// here; that cleanup's report is returned, to be delivered once callbacks
// are registered. An alive key whose "seen" changes while we wait belongs
// to a live process: ErrNodeIDInUse.
func (c *Cluster) claimID(ctx context.Context) (*goneEvent, error) {
	firstSeen := ""
	for {
		ev, res, err := c.reap(ctx, c.id)
		if err != nil {
			return nil, err
		}
		switch res {
		case reapWon:
			c.log.Warn("cluster: cleaned up the registration of an earlier process with this node id", "rooms", len(ev.rooms))
			return &ev, nil
		case reapCleaned, reapUnknown:
			return nil, nil
		}
		seen, err := c.client.HGet(ctx, c.k.node(c.id), "seen").Result()
		if err != nil && err != redis.Nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		if firstSeen == "" {
			firstSeen = seen
		} else if seen != "" && seen != firstSeen {
			return nil, fmt.Errorf("%w: %s", ErrNodeIDInUse, c.id)
		}
		// Half a heartbeat: a live owner refreshes "seen" every heartbeat,
		// so two polls see it change; a dead one expires within TTL.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: waiting for node id %s to expire: %w", c.id, ctx.Err())
		case <-time.After(c.hb / 2):
		}
	}
}
