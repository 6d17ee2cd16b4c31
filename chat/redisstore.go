package chat

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis layout, under the store's prefix p (e.g. "relayd:"), per room:
//
//	p chat:seq:<room>              counter: the room's last sequence number
//	p chat:ids:<room>              sorted set: message id, scored by its sequence number
//	p chat:msgs:<room>             hash: message id -> the Message JSON
//	p chat:bids:<broadcast>:<room> sorted set: a broadcast's message ids, scored alike
//
// Ids are BoltStore's ("MS_" and 16 hex digits of the sequence), made in
// the Append script from the INCR, so every node of a cluster hands out
// one sequence per room and ids sort as strings in message order. The
// counter is never trimmed: an id is never reused after a trim or a
// delete. A broadcast id has no ':' (BC_ and hex digits), so the first
// ':' after "chat:bids:" ends it, whatever the room's name. The scripts
// read only keys they are given, all of one room.

// appendScript numbers, stores and trims (the broadcast's oldest beyond
// Keep) in one atomic step. KEYS: seq, ids, msgs, bids. ARGV: the Message
// JSON without its id, Keep. Returns the new id.
var appendScript = redis.NewScript(`
local seq = redis.call('INCR', KEYS[1])
local id = 'MS_' .. string.format('%016x', seq)
redis.call('ZADD', KEYS[2], seq, id)
redis.call('HSET', KEYS[3], id, ARGV[1])
redis.call('ZADD', KEYS[4], seq, id)
local over = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[2])
if over > 0 then
  -- Like BoltStore: only the broadcast's last Keep messages stay.
  local old = redis.call('ZRANGE', KEYS[4], 0, over - 1)
  for _, gone in ipairs(old) do
    redis.call('HDEL', KEYS[3], gone)
    redis.call('ZREM', KEYS[2], gone)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, over - 1)
end
return id
`)

// historyScript reads up to ARGV[2] messages of a sorted set with a
// sequence below ARGV[1] ("+inf" for the newest), newest first, as id,
// JSON pairs, in one atomic step (so a trim or a delete cannot leave an id
// without its body). KEYS: the sorted set (a broadcast's, or the room's),
// msgs.
var historyScript = redis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[1], ARGV[1], '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or false
end
return out
`)

// deleteScript removes one message of a broadcast; 0 when it was not
// there. KEYS: bids, ids, msgs. ARGV: the id.
var deleteScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
`)

// purgeScript removes the messages named and, when the room has none
// left, its counter and hash too. KEYS: seq, ids, msgs, then the sorted
// sets of the broadcasts they are in. ARGV: the ids. Returns how many
// were removed.
var purgeScript = redis.NewScript(`
local n = 0
for _, id in ipairs(ARGV) do
  n = n + redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  for k = 4, #KEYS do
    redis.call('ZREM', KEYS[k], id)
  end
end
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[3])
end
return n
`)

// opTimeout bounds one call, so that a Redis that stopped answering fails
// the chat message instead of hanging the session.
const opTimeout = 10 * time.Second

// RedisStore is the Store in Redis, shared by the nodes of a cluster.
// Writes are acknowledged by the Redis primary; their durability is the
// Redis deployment's (AOF, fsync policy, replicas).
type RedisStore struct {
	c redis.UniversalClient
	p string
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a Store over client, with every key under prefix
// (e.g. "relayd:"). The client is shared: Close leaves it open.
func NewRedisStore(client redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{c: client, p: prefix}
}

// Close implements Store. The client belongs to the caller.
func (s *RedisStore) Close() error { return nil }

func (s *RedisStore) keys(room string) (seq, ids, msgs string) {
	return s.p + "chat:seq:" + room, s.p + "chat:ids:" + room, s.p + "chat:msgs:" + room
}

// bids is the key of a broadcast's messages in room.
func (s *RedisStore) bids(room, broadcast string) string {
	return s.p + "chat:bids:" + broadcast + ":" + room
}

// Append implements Store.
func (s *RedisStore) Append(m Message) (Message, error) {
	m.ID = "" // the script's to give; the stored JSON leaves it out
	v, err := json.Marshal(m)
	if err != nil {
		return m, fmt.Errorf("chat store: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	seq, ids, msgs := s.keys(m.Room)
	id, err := appendScript.Run(ctx, s.c, []string{seq, ids, msgs, s.bids(m.Room, m.BroadcastID)}, v, Keep).Text()
	if err != nil {
		return m, fmt.Errorf("chat store: append: %w", err)
	}
	m.ID = id
	return m, nil
}

// History implements Store.
func (s *RedisStore) History(room, broadcast, before string, limit int) ([]Message, error) {
	out := []Message{}
	below := "+inf"
	if before != "" {
		k, ok := keyOf(before)
		if !ok {
			return out, nil // as BoltStore: an id of no message has nothing before it
		}
		below = "(" + strconv.FormatUint(binary.BigEndian.Uint64(k), 10)
	}
	if limit <= 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, _, msgs := s.keys(room)
	raw, err := historyScript.Run(ctx, s.c, []string{s.bids(room, broadcast), msgs}, below, limit).Slice()
	if err != nil {
		return out, fmt.Errorf("chat store: history: %w", err)
	}
	// Newest first from the script: walk it from the end for oldest first.
	for i := len(raw)/2 - 1; i >= 0; i-- {
		id, _ := raw[2*i].(string)
		v, ok := raw[2*i+1].(string)
		if !ok {
			continue // an index entry without its message (DeleteRoom left it): not listed
		}
		var m Message
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return []Message{}, fmt.Errorf("chat store: message %s: %w", id, err)
		}
		m.ID = id
		out = append(out, m)
	}
	return out, nil
}

// Delete implements Store.
func (s *RedisStore) Delete(room, broadcast, id string) error {
	if _, ok := keyOf(id); !ok {
		return ErrNotFound
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, ids, msgs := s.keys(room)
	n, err := deleteScript.Run(ctx, s.c, []string{s.bids(room, broadcast), ids, msgs}, id).Int()
	if err != nil {
		return fmt.Errorf("chat store: delete: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteRoom implements Store. The messages are read first (at most
// Keep), those up to until chosen here, and removed by one script: a
// message appended in between is after until and stays, and keeps the
// counter.
func (s *RedisStore) DeleteRoom(room string, until time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	seq, ids, msgs := s.keys(room)
	raw, err := historyScript.Run(ctx, s.c, []string{ids, msgs}, "+inf", -1).Slice() // -1: no LIMIT
	if err != nil {
		return 0, fmt.Errorf("chat store: delete room %s: %w", room, err)
	}
	var gone []any
	keys := []string{seq, ids, msgs}
	broadcasts := map[string]bool{}
	for i := 0; i+1 < len(raw); i += 2 {
		id, _ := raw[i].(string)
		v, ok := raw[i+1].(string)
		var m Message
		readable := ok && json.Unmarshal([]byte(v), &m) == nil
		if readable && m.At.After(until) {
			continue
		}
		gone = append(gone, id) // up to until, or unreadable: it goes with its room
		if readable && !broadcasts[m.BroadcastID] {
			broadcasts[m.BroadcastID] = true
			keys = append(keys, s.bids(room, m.BroadcastID))
		}
	}
	n, err := purgeScript.Run(ctx, s.c, keys, gone...).Int()
	if err != nil {
		return 0, fmt.Errorf("chat store: delete room %s: %w", room, err)
	}
	return n, nil
}
