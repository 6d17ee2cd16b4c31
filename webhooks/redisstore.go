package webhooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaysfu/relayd/internal/ids"
)

// The Redis outbox layout, under the prefix p (e.g. "relayd:"):
//
//	p wh:seq               counter: the last event's seq
//	p wh:ev                hash: seq -> the Event JSON, exactly the body sent
//	p wh:refs              hash: seq -> how many lanes still hold the event
//	p wh:urls              hash: URL -> its uid (the URLs with an outbox)
//	p wh:rooms:<uid>       set: the rooms whose lane of that URL is not empty
//	p wh:lane:<uid>:<room> sorted set: the lane's seqs, scored by seq
//	p wh:lease:<uid>:<room> string: the token of the node sending the lane,
//	                       with a TTL (SET NX PX)
//
// A URL's uid is 16 hex digits of its SHA-256: fixed length, so that
// "<uid>:<room>" can never be read two ways, whatever ':' the URL and
// room hold. seqs come from one INCR, so a lane's order is the order the
// cluster's Emits committed in.
//
// Every multi-key step is one Lua script, atomic on the server. Some
// scripts compute keys (sync, pending): this needs one Redis primary
// (standalone or Sentinel), not Redis Cluster. All nodes must be given
// the same --webhook-url list: opening drops the outbox of any other URL.

// addScript stores an event and appends it to the lanes.
// KEYS: seq, ev, refs, urls, then lane, rooms of each URL.
// ARGV: body, room, then URL, uid of each URL.
var addScript = redis.NewScript(`
local seq = string.format('%d', redis.call('INCR', KEYS[1]))
redis.call('HSET', KEYS[2], seq, ARGV[1])
local n = (#KEYS - 4) / 2
redis.call('HSET', KEYS[3], seq, n)
for i = 0, n - 1 do
  redis.call('HSET', KEYS[4], ARGV[3 + 2 * i], ARGV[4 + 2 * i])
  redis.call('ZADD', KEYS[5 + 2 * i], seq, seq)
  redis.call('SADD', KEYS[6 + 2 * i], ARGV[2])
end
return seq
`)

// headScript returns the lane's first seq and its body (false when the
// event is missing), or nil when the lane is empty. KEYS: lane, ev.
var headScript = redis.NewScript(`
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
if #first == 0 then return false end
return {first[1], redis.call('HGET', KEYS[2], first[1]) or false}
`)

// deliveredScript takes seq out of a lane, the room out of the URL's
// rooms once its lane is empty, and the event out once no lane holds it.
// Only the first call for a (lane, seq) counts. KEYS: lane, rooms, ev,
// refs. ARGV: seq, room.
var deliveredScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
if redis.call('HINCRBY', KEYS[4], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return 1
`)

// syncScript makes the outboxes match the configured URLs: it drops the
// lanes of every other URL (returning how many deliveries that was), then
// the events no lane holds any more, and registers the URLs.
// ARGV: prefix, then URL, uid of each configured URL.
var syncScript = redis.NewScript(`
local p = ARGV[1]
local keep = {}
for i = 2, #ARGV, 2 do keep[ARGV[i]] = ARGV[i + 1] end
local dropped = 0
local urls = redis.call('HGETALL', p .. 'wh:urls')
for i = 1, #urls, 2 do
  local url, uid = urls[i], urls[i + 1]
  if not keep[url] then
    local rooms = p .. 'wh:rooms:' .. uid
    for _, room in ipairs(redis.call('SMEMBERS', rooms)) do
      local lane = p .. 'wh:lane:' .. uid .. ':' .. room
      for _, seq in ipairs(redis.call('ZRANGE', lane, 0, -1)) do
        dropped = dropped + 1
        if redis.call('HINCRBY', p .. 'wh:refs', seq, -1) <= 0 then
          redis.call('HDEL', p .. 'wh:refs', seq)
          redis.call('HDEL', p .. 'wh:ev', seq)
        end
      end
      redis.call('DEL', lane)
    end
    redis.call('DEL', rooms)
    redis.call('HDEL', p .. 'wh:urls', url)
  end
end
for url, uid in pairs(keep) do redis.call('HSET', p .. 'wh:urls', url, uid) end
return dropped
`)

// pendingScript counts the seqs of every lane of every URL. ARGV: prefix.
var pendingScript = redis.NewScript(`
local p = ARGV[1]
local n = 0
local urls = redis.call('HGETALL', p .. 'wh:urls')
for i = 2, #urls, 2 do
  for _, room in ipairs(redis.call('SMEMBERS', p .. 'wh:rooms:' .. urls[i])) do
    n = n + redis.call('ZCARD', p .. 'wh:lane:' .. urls[i] .. ':' .. room)
  end
end
return n
`)

// claimScript takes or renews a lease. KEYS: lease. ARGV: token, TTL ms.
var claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// releaseScript deletes a lease if it is still the token's. KEYS: lease.
// ARGV: token.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// redisTimeout bounds one outbox call, so that a Redis that stopped
// answering fails an Emit (and delays a lane) instead of hanging it.
const redisTimeout = 5 * time.Second

// redisOutbox is the outbox in Redis, shared by the nodes of a cluster.
// Writes are acknowledged by the Redis primary before returning; their
// durability is the deployment's (AOF, fsync policy, replicas).
type redisOutbox struct {
	c      redis.UniversalClient
	p      string
	token  string // this outbox's leases: one per Open, so two Dispatchers of one process are two holders
	ttl    time.Duration
	closed atomic.Bool
}

var (
	_ outbox = (*redisOutbox)(nil)
	_ leaser = (*redisOutbox)(nil)
)

var errClosed = errors.New("webhooks: outbox closed")

// openRedis returns the outbox under prefix, its URL outboxes made to
// match urls like openStore does (the dropped deliveries are counted).
func openRedis(c redis.UniversalClient, prefix string, urls []string, ttl time.Duration) (*redisOutbox, int, error) {
	o := &redisOutbox{c: c, p: prefix, token: ids.New("WL_", 16), ttl: ttl}
	args := []any{prefix}
	for _, u := range urls {
		args = append(args, u, urlID(u))
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	dropped, err := syncScript.Run(ctx, c, nil, args...).Int()
	if err != nil {
		return nil, 0, fmt.Errorf("webhooks: init the Redis outbox: %w", err)
	}
	return o, dropped, nil
}

// urlID names a URL in keys.
func urlID(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:8])
}

func (o *redisOutbox) laneKey(url, room string) string {
	return o.p + "wh:lane:" + urlID(url) + ":" + room
}

func (o *redisOutbox) roomsKey(url string) string { return o.p + "wh:rooms:" + urlID(url) }

func (o *redisOutbox) leaseKey(url, room string) string {
	return o.p + "wh:lease:" + urlID(url) + ":" + room
}

// ctx is the context of one call, or errClosed.
func (o *redisOutbox) ctx() (context.Context, context.CancelFunc, error) {
	if o.closed.Load() {
		return nil, nil, errClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	return ctx, cancel, nil
}

func (o *redisOutbox) add(room string, body []byte, urls []string) error {
	ctx, cancel, err := o.ctx()
	if err != nil {
		return err
	}
	defer cancel()
	keys := []string{o.p + "wh:seq", o.p + "wh:ev", o.p + "wh:refs", o.p + "wh:urls"}
	args := []any{body, room}
	for _, u := range urls {
		keys = append(keys, o.laneKey(u, room), o.roomsKey(u))
		args = append(args, u, urlID(u))
	}
	return addScript.Run(ctx, o.c, keys, args...).Err()
}

func (o *redisOutbox) head(url, room string) (seq uint64, body []byte, ok bool, err error) {
	ctx, cancel, err := o.ctx()
	if err != nil {
		return 0, nil, false, err
	}
	defer cancel()
	r, err := headScript.Run(ctx, o.c, []string{o.laneKey(url, room), o.p + "wh:ev"}).Slice()
	if errors.Is(err, redis.Nil) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	if len(r) != 2 {
		return 0, nil, false, fmt.Errorf("head of %s: %d values", room, len(r))
	}
	s, _ := r[0].(string)
	if seq, err = strconv.ParseUint(s, 10, 64); err != nil {
		return 0, nil, false, fmt.Errorf("head of %s: seq %q", room, s)
	}
	if b, isString := r[1].(string); isString {
		body = []byte(b)
	}
	return seq, body, true, nil
}

func (o *redisOutbox) delivered(url, room string, seq uint64) error {
	ctx, cancel, err := o.ctx()
	if err != nil {
		return err
	}
	defer cancel()
	keys := []string{o.laneKey(url, room), o.roomsKey(url), o.p + "wh:ev", o.p + "wh:refs"}
	return deliveredScript.Run(ctx, o.c, keys, strconv.FormatUint(seq, 10), room).Err()
}

func (o *redisOutbox) rooms(url string) ([]string, error) {
	ctx, cancel, err := o.ctx()
	if err != nil {
		return nil, err
	}
	defer cancel()
	return o.c.SMembers(ctx, o.roomsKey(url)).Result()
}

func (o *redisOutbox) pending() (int, error) {
	ctx, cancel, err := o.ctx()
	if err != nil {
		return 0, err
	}
	defer cancel()
	return pendingScript.Run(ctx, o.c, nil, o.p).Int()
}

// close marks the outbox closed. The client belongs to the caller, who
// may share it with other stores, so it stays open. Leases still held
// lapse by their TTL (Run releases its own when it returns).
func (o *redisOutbox) close() error {
	o.closed.Store(true)
	return nil
}

func (o *redisOutbox) claim(url, room string) (bool, error) {
	ctx, cancel, err := o.ctx()
	if err != nil {
		return false, err
	}
	defer cancel()
	n, err := claimScript.Run(ctx, o.c, []string{o.leaseKey(url, room)}, o.token, o.ttl.Milliseconds()).Int()
	return n == 1, err
}

// release works after close too: Close stops Run, which releases its
// leases on the way out.
func (o *redisOutbox) release(url, room string) error {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	return releaseScript.Run(ctx, o.c, []string{o.leaseKey(url, room)}, o.token).Err()
}

func (o *redisOutbox) leaseTTL() time.Duration { return o.ttl }
