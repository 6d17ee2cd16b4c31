package invitations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis layout, under the store's prefix p (e.g. "relayd:"):
//
//	p inv:id:<id>         string: the Invitation JSON
//	p inv:room:<room>     set of ids
//	p inv:user:<user>     set of ids
//	p inv:status:<status> set of ids (the sweeper lists the pending ones)
//	p inv:all             set of every id (List with an empty filter)
//	p inv:rv:<room>       counter bumped by every write to the room: the
//	                      key a transaction WATCHes
//	p rooms               hash: name -> RoomRecord JSON
//	p bc:<room>           hash: broadcast id -> BroadcastRecord JSON
//
// Each namespace ends in its own word and a colon, and what follows is a
// whole name, so no key of one namespace equals a key of another even
// though names may contain ':'. Invitations are deleted only with their
// room (DeleteInvitations, when the room is purged), records and index
// entries in one MULTI, so an index only ever names existing records.
//
// The stage count spans every invitation of a room, so a transition is
// decided on a consistent read of the whole room: a Lua script reads the
// room's set and records in one atomic step (snapshotScript), after the
// room's version key is WATCHed; the writes then go in MULTI/EXEC, which
// Redis refuses if any write of the room happened since the WATCH. The
// loser re-reads and re-runs its callback (the Store contract allows
// that), so two relayd nodes never both fill the last seat.
//
// Scripts read keys they compute, so this needs one Redis primary
// (standalone or Sentinel), not Redis Cluster.
const (
	nsID     = "inv:id:"
	nsRoom   = "inv:room:"
	nsUser   = "inv:user:"
	nsStatus = "inv:status:"
	nsRoomV  = "inv:rv:"
	keyAll   = "inv:all"
	keyRooms = "rooms"
	nsBcast  = "bc:"
)

// maxAttempts bounds the optimistic retries of one call. Within a node
// the Manager serializes writes (commit), so only writers of other nodes
// compete for a room; 50 lost races in a row means something is wrong,
// not busy.
const maxAttempts = 50

// opTimeout bounds one call, retries included, so that a Redis that
// stopped answering fails the request instead of hanging it. go-redis's
// own read timeout (3s) bounds each round trip within it.
const opTimeout = 10 * time.Second

// snapshotScript returns the ids of a set and their records, as id, JSON
// pairs (false for a missing record), read in one atomic step.
// KEYS[1]: the set; ARGV[1]: the key prefix of records.
var snapshotScript = redis.NewScript(`
local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('GET', ARGV[1] .. id) or false
end
return out
`)

// RedisStore is the Store in Redis, shared by the relayd nodes of a
// cluster. Every write is acknowledged by the Redis primary before the
// call returns; how durable that is (AOF, fsync policy, replicas) is the
// Redis deployment's choice.
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

// Close implements Store. It releases nothing: the client belongs to the
// caller, who may share it with other stores.
func (s *RedisStore) Close() error { return nil }

func (s *RedisStore) key(ns, name string) string { return s.p + ns + name }

// Create implements Store.
func (s *RedisStore) Create(inv Invitation, check func(sameRoom []Invitation) error) (stored Invitation, created bool, err error) {
	if err := checkKeys(inv.ID, inv.Room, inv.User, string(inv.Status)); err != nil {
		return Invitation{}, false, err
	}
	v, err := json.Marshal(inv)
	if err != nil {
		return Invitation{}, false, wrapStoreErr("create", err)
	}
	idKey, rvKey := s.key(nsID, inv.ID), s.key(nsRoomV, inv.Room)
	var checkErr error
	err = s.atomic(func(ctx context.Context, tx *redis.Tx) error {
		stored, created, checkErr = Invitation{}, false, nil
		// An id seen is a duplicate (ids are random: one deleted with
		// its room never comes back).
		n, err := tx.Exists(ctx, idKey).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("invitation id %s exists: %w", inv.ID, ErrConflict)
		}
		sameRoom, err := s.snapshot(ctx, tx, s.key(nsRoom, inv.Room))
		if err != nil {
			return err
		}
		for _, old := range sameRoom {
			if old.User != inv.User {
				continue
			}
			if old.Status == StatusAccepted || (old.Status == StatusPending && old.ExpiresAt.After(inv.CreatedAt)) {
				stored = old // true of the snapshot: no write to validate
				return nil
			}
		}
		if checkErr = check(sameRoom); checkErr != nil {
			return checkErr
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, idKey, v, 0)
			p.SAdd(ctx, s.key(nsRoom, inv.Room), inv.ID)
			p.SAdd(ctx, s.key(nsUser, inv.User), inv.ID)
			p.SAdd(ctx, s.key(nsStatus, string(inv.Status)), inv.ID)
			p.SAdd(ctx, s.p+keyAll, inv.ID)
			p.Incr(ctx, rvKey)
			return nil
		})
		if err == nil {
			stored, created = inv, true
		}
		return err
	}, idKey, rvKey)
	if checkErr != nil {
		return Invitation{}, false, checkErr
	}
	if err != nil {
		return Invitation{}, false, wrapStoreErr("create", err)
	}
	return stored, created, nil
}

// Update implements Store.
func (s *RedisStore) Update(id string, fn func(inv *Invitation, sameRoom []Invitation) error) (Invitation, error) {
	// The room of an id never changes: read it once, outside the
	// retries, to know which version key to WATCH.
	first, err := s.Get(id)
	if err != nil {
		return Invitation{}, err
	}
	rvKey := s.key(nsRoomV, first.Room)
	var cur, next Invitation
	var fnErr error
	err = s.atomic(func(ctx context.Context, tx *redis.Tx) error {
		fnErr = nil
		sameRoom, err := s.snapshot(ctx, tx, s.key(nsRoom, first.Room))
		if err != nil {
			return err
		}
		i := slices.IndexFunc(sameRoom, func(inv Invitation) bool { return inv.ID == id })
		if i < 0 {
			return fmt.Errorf("invitation %s is not in the index of room %s", id, first.Room)
		}
		cur = sameRoom[i]
		next = cur
		if fnErr = fn(&next, sameRoom); fnErr != nil {
			return fnErr // decided on a consistent snapshot: final
		}
		if next.ID != cur.ID || next.Room != cur.Room || next.Host != cur.Host || next.User != cur.User || next.BroadcastID != cur.BroadcastID ||
			!next.CreatedAt.Equal(cur.CreatedAt) || !next.ExpiresAt.Equal(cur.ExpiresAt) {
			return fmt.Errorf("update of %s changed more than status and updatedAt", id)
		}
		if err := checkKeys(string(next.Status)); err != nil {
			return err
		}
		v, err := json.Marshal(next)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.key(nsID, id), v, 0)
			if next.Status != cur.Status {
				p.SRem(ctx, s.key(nsStatus, string(cur.Status)), id)
				p.SAdd(ctx, s.key(nsStatus, string(next.Status)), id)
			}
			p.Incr(ctx, rvKey)
			return nil
		})
		return err
	}, rvKey)
	switch {
	case fnErr != nil:
		return cur, fnErr // as is: its message may go to the client
	case err != nil:
		return Invitation{}, wrapStoreErr("update "+id, err)
	}
	return next, nil
}

// Get implements Store.
func (s *RedisStore) Get(id string) (Invitation, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	v, err := s.c.Get(ctx, s.key(nsID, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Invitation{}, fmt.Errorf("invitation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Invitation{}, wrapStoreErr("get "+id, err)
	}
	inv, err := decodeInvitation([]byte(id), v)
	if err != nil {
		return Invitation{}, wrapStoreErr("get "+id, err)
	}
	return inv, nil
}

// List implements Store. Like BoltStore it reads the most selective index
// the filter names: room, then user, then status, else every id.
func (s *RedisStore) List(f Filter) ([]Invitation, error) {
	if err := checkKeys(f.Room, f.User, string(f.Status)); err != nil {
		return nil, err
	}
	index := s.p + keyAll
	switch {
	case f.Room != "":
		index = s.key(nsRoom, f.Room)
	case f.User != "":
		index = s.key(nsUser, f.User)
	case f.Status != "":
		index = s.key(nsStatus, string(f.Status))
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	all, err := s.snapshot(ctx, s.c, index)
	if err != nil {
		return nil, wrapStoreErr("list", err)
	}
	var out []Invitation
	for _, inv := range all {
		if f.Match(inv) {
			out = append(out, inv)
		}
	}
	sortInvitations(out)
	return out, nil
}

// PutRoom implements Store.
func (s *RedisStore) PutRoom(r RoomRecord) error {
	v, err := encodeRoom(r)
	if err != nil {
		return err
	}
	var bv []byte
	b := r.Broadcast()
	if b.ID != "" {
		if bv, err = encodeBroadcast(b); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if bv != nil {
			p.HSet(ctx, s.key(nsBcast, b.Room), b.ID, bv)
		}
		p.HSet(ctx, s.p+keyRooms, r.Name, v)
		return nil
	})
	return wrapStoreErr("put room "+r.Name, err)
}

// PutBroadcast implements Store.
func (s *RedisStore) PutBroadcast(b BroadcastRecord) error {
	v, err := encodeBroadcast(b)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return wrapStoreErr("put broadcast "+b.ID+" of "+b.Room, s.c.HSet(ctx, s.key(nsBcast, b.Room), b.ID, v).Err())
}

// ListBroadcasts implements Store.
func (s *RedisStore) ListBroadcasts(room string) ([]BroadcastRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	all, err := s.c.HGetAll(ctx, s.key(nsBcast, room)).Result()
	if err != nil {
		return nil, wrapStoreErr("list broadcasts of "+room, err)
	}
	out := []BroadcastRecord{}
	for id, v := range all {
		var b BroadcastRecord
		if err := json.Unmarshal([]byte(v), &b); err != nil {
			return nil, wrapStoreErr("list broadcasts of "+room, fmt.Errorf("broadcast %s: %w", id, err))
		}
		out = append(out, b)
	}
	sortBroadcasts(out)
	return out, nil
}

// GetRoom implements Store.
func (s *RedisStore) GetRoom(name string) (RoomRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	v, err := s.c.HGet(ctx, s.p+keyRooms, name).Bytes()
	if errors.Is(err, redis.Nil) {
		return RoomRecord{}, fmt.Errorf("room %s: %w", name, ErrNotFound)
	}
	var r RoomRecord
	if err == nil {
		err = json.Unmarshal(v, &r)
	}
	if err != nil {
		return RoomRecord{}, wrapStoreErr("get room", err)
	}
	return r, nil
}

// ListRooms implements Store. A hash has no order: sort by name, as
// bbolt's byte order does.
func (s *RedisStore) ListRooms() ([]RoomRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	all, err := s.c.HGetAll(ctx, s.p+keyRooms).Result()
	if err != nil {
		return nil, wrapStoreErr("list rooms", err)
	}
	var out []RoomRecord
	for name, v := range all {
		var r RoomRecord
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, wrapStoreErr("list rooms", fmt.Errorf("room %s: %w", name, err))
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b RoomRecord) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// deleteRoomScript deletes a field of the rooms hash if it still holds the
// value the caller read (and checked), and with it the room's broadcasts:
// a compare-and-delete, so a newer room written meanwhile stays. KEYS: the
// hash, the room's broadcasts hash. ARGV: name, value.
var deleteRoomScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
`)

// DeleteRoom implements Store.
func (s *RedisStore) DeleteRoom(name string, createdAt time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	v, err := s.c.HGet(ctx, s.p+keyRooms, name).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, wrapStoreErr("delete room "+name, err)
	}
	var r RoomRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return false, wrapStoreErr("delete room "+name, err)
	}
	if !r.CreatedAt.Equal(createdAt) {
		return false, nil // a newer room of that name
	}
	n, err := deleteRoomScript.Run(ctx, s.c, []string{s.p + keyRooms, s.key(nsBcast, name)}, name, v).Int()
	if err != nil {
		return false, wrapStoreErr("delete room "+name, err)
	}
	return n == 1, nil
}

// DeleteInvitations implements Store. It is a transaction on the room's
// version key, like every write of the room: a concurrent Create of a
// newer room's invitation either lands before (and is kept: created after
// until) or makes this one retry.
func (s *RedisStore) DeleteInvitations(room string, until time.Time) (int, error) {
	if err := checkKeys(room); err != nil {
		return 0, err
	}
	roomKey, rvKey := s.key(nsRoom, room), s.key(nsRoomV, room)
	n := 0
	err := s.atomic(func(ctx context.Context, tx *redis.Tx) error {
		n = 0
		sameRoom, err := s.snapshot(ctx, tx, roomKey)
		if err != nil {
			return err
		}
		var gone []Invitation
		for _, inv := range sameRoom {
			if !inv.CreatedAt.After(until) {
				gone = append(gone, inv)
			}
		}
		if len(gone) == 0 {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, inv := range gone {
				p.Del(ctx, s.key(nsID, inv.ID))
				p.SRem(ctx, roomKey, inv.ID)
				p.SRem(ctx, s.key(nsUser, inv.User), inv.ID)
				p.SRem(ctx, s.key(nsStatus, string(inv.Status)), inv.ID)
				p.SRem(ctx, s.p+keyAll, inv.ID)
			}
			if len(gone) == len(sameRoom) {
				// Nothing of the room is left: its version key goes
				// too (a WATCH sees a DEL as a write, and a later
				// INCR starts it again).
				p.Del(ctx, rvKey)
			} else {
				p.Incr(ctx, rvKey)
			}
			return nil
		})
		if err == nil {
			n = len(gone)
		}
		return err
	}, rvKey)
	if err != nil {
		return 0, wrapStoreErr("delete invitations of "+room, err)
	}
	return n, nil
}

// snapshot reads the invitations of an index set in one atomic step, in
// id order (as BoltStore's scans give them). c is the client, or the
// transaction whose WATCH the read must fall under.
func (s *RedisStore) snapshot(ctx context.Context, c redis.Scripter, index string) ([]Invitation, error) {
	raw, err := snapshotScript.Run(ctx, c, []string{index}, s.p+nsID).Slice()
	if err != nil {
		return nil, err
	}
	out := make([]Invitation, 0, len(raw)/2)
	for i := 0; i+1 < len(raw); i += 2 {
		id, _ := raw[i].(string)
		v, ok := raw[i+1].(string)
		if !ok {
			return nil, fmt.Errorf("index %s names missing invitation %s", index, id)
		}
		inv, err := decodeInvitation([]byte(id), []byte(v))
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	slices.SortFunc(out, func(a, b Invitation) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// atomic runs fn in a WATCH transaction on keys, again while another
// client's write to a watched key makes EXEC fail (redis.TxFailedErr),
// up to maxAttempts times. fn may WATCH more keys before it writes.
func (s *RedisStore) atomic(fn func(ctx context.Context, tx *redis.Tx) error, keys ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := s.c.Watch(ctx, func(tx *redis.Tx) error { return fn(ctx, tx) }, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("lost %d races to concurrent writers: %w", attempt, err)
		}
		// A random pause of up to a few ms lets the competing
		// writers spread out instead of colliding again in step.
		pause := time.Duration(rand.Int64N(int64(min(attempt, 10)) * int64(time.Millisecond)))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
