package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrNoNodes is returned by PlaceRoom when no node is alive, which happens
// only while Redis lost this node's own registration (e.g. a Redis restart
// between two heartbeats).
var ErrNoNodes = errors.New("cluster: no alive node")

// cpuStep is the CPU granularity of placement, in cores. Loads within one
// step count as equal, so the room count decides: an idle node's CPU
// sample jitters by a few hundredths of a core, and comparing raw values
// would place by noise and pile new rooms onto whichever node sampled
// lowest during the last second.
const cpuStep = 0.25

// placeScript returns the owner of a room, placing it first if the
// recorded owner is missing or dead. ARGV: prefix, room, cpuStep.
// Returns {id, HGETALL of its alive key} or nil when no node is alive.
//
// Candidates are ordered by (floor(cpu/step), rooms, participants, id),
// where rooms = max(reported rooms, SCARD of the node's placements): the
// placements count at once, so a burst of new rooms spreads out before the
// next heartbeat reports them.
var placeScript = redis.NewScript(`
local p, room, step = ARGV[1], ARGV[2], tonumber(ARGV[3])
local rk = p .. 'room:' .. room
local cur = redis.call('GET', rk)
if cur then
  local h = redis.call('HGETALL', p .. 'node:' .. cur)
  if #h > 0 then return {cur, h} end
end
local best, bk, bh
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  local h = redis.call('HGETALL', p .. 'node:' .. id)
  if #h > 0 then
    local f = {}
    for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
    local rooms = math.max(tonumber(f.rooms) or 0, redis.call('SCARD', p .. 'node:' .. id .. ':rooms'))
    local k = {math.floor((tonumber(f.cpu) or 0) / step), rooms, tonumber(f.participants) or 0}
    local less = not best
    if not less then
      for i = 1, 3 do
        if k[i] ~= bk[i] then less = k[i] < bk[i]; break end
        if i == 3 then less = id < best end
      end
    end
    if less then best, bk, bh = id, k, h end
  end
end
if not best then return false end
redis.call('SET', rk, best)
redis.call('SADD', p .. 'node:' .. best .. ':rooms', room)
if cur then redis.call('SREM', p .. 'node:' .. cur .. ':rooms', room) end
return {best, bh}
`)

// PlaceRoom returns the node that owns room: the recorded owner while it is
// alive, else the least-loaded alive node, which it records as the owner.
// It is one atomic script, so nodes placing the same room concurrently all
// get the same answer. The caller hosts the room if the answer is itself
// and redirects to Node.URL otherwise.
func (c *Cluster) PlaceRoom(ctx context.Context, room string) (Node, error) {
	res, err := placeScript.Run(ctx, c.client, []string{c.k.nodes()},
		c.k.p, room, cpuStep).Result()
	if errors.Is(err, redis.Nil) {
		return Node{}, ErrNoNodes
	}
	if err != nil {
		return Node{}, fmt.Errorf("cluster: place room %s: %w", room, err)
	}
	return nodeReply(res)
}

// roomNodeScript returns {owner, HGETALL} if room has an alive owner.
// ARGV: prefix, room.
var roomNodeScript = redis.NewScript(`
local cur = redis.call('GET', ARGV[1] .. 'room:' .. ARGV[2])
if not cur then return false end
local h = redis.call('HGETALL', ARGV[1] .. 'node:' .. cur)
if #h == 0 then return false end
return {cur, h}
`)

// RoomNode returns the owner of room if one is recorded and alive, without
// placing it.
func (c *Cluster) RoomNode(ctx context.Context, room string) (Node, bool, error) {
	res, err := roomNodeScript.Run(ctx, c.client, []string{c.k.nodes()}, c.k.p, room).Result()
	if errors.Is(err, redis.Nil) {
		return Node{}, false, nil
	}
	if err != nil {
		return Node{}, false, fmt.Errorf("cluster: room %s: %w", room, err)
	}
	n, err := nodeReply(res)
	return n, err == nil, err
}

// releaseScript deletes the placement only if it names the caller.
// ARGV: prefix, room, id. Returns 1 if it deleted the placement.
var releaseScript = redis.NewScript(`
local key = ARGV[1] .. 'room:' .. ARGV[2]
redis.call('SREM', ARGV[1] .. 'node:' .. ARGV[3] .. ':rooms', ARGV[2])
if redis.call('GET', key) == ARGV[3] then
  redis.call('DEL', key)
  return 1
end
return 0
`)

// ReleaseRoom deletes room's placement if this node owns it (when the room
// ends here). A placement owned by another node is left alone, so a late
// release cannot undo a newer placement.
func (c *Cluster) ReleaseRoom(ctx context.Context, room string) error {
	err := releaseScript.Run(ctx, c.client, []string{c.k.nodes()}, c.k.p, room, c.id).Err()
	if err != nil {
		return fmt.Errorf("cluster: release room %s: %w", room, err)
	}
	return nil
}
