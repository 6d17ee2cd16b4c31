package invitations

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The bbolt layout. Index keys are "<value>\x00<id>" with empty values:
// names are of [A-Za-z0-9_.:@-] and statuses are words, so NUL never
// occurs inside them, and a prefix scan over "<value>\x00" finds exactly
// that value's invitations.
var (
	bucketInvitations = []byte("invitations")           // id -> Invitation JSON
	bucketByRoom      = []byte("invitations_by_room")   // room \x00 id -> ""
	bucketByUser      = []byte("invitations_by_user")   // user \x00 id -> ""
	bucketByStatus    = []byte("invitations_by_status") // status \x00 id -> "" (the sweeper lists pending ones)
	bucketRooms       = []byte("rooms")                 // name -> RoomRecord JSON
	bucketBroadcasts  = []byte("broadcasts")            // room \x00 broadcast id -> BroadcastRecord JSON
	bucketMeta        = []byte("meta")                  // "version" -> schemaVersion

	keyVersion    = []byte("version")
	schemaVersion = []byte("1")
)

// openTimeout is how long OpenBolt waits for the file lock. bbolt waits
// forever by default; a second relayd on the same --data-dir should
// instead fail at once with a message saying why. One second covers a
// previous process that is still closing the file.
const openTimeout = time.Second

// BoltStore is the Store in one bbolt file, <data-dir>/relayd.db. bbolt
// runs one write transaction at a time and fsyncs it before Update
// returns (NoSync stays false), so every write is durable when the call
// returns; reads run concurrently with it.
type BoltStore struct {
	db *bolt.DB
}

var _ Store = (*BoltStore)(nil)

// OpenBolt opens (or creates) dir/relayd.db, creating dir with mode 0700
// if needed. The file is locked while open: a second process gets an
// error after openTimeout.
func OpenBolt(dir string) (*BoltStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("invitations: data dir: %w", err)
	}
	path := filepath.Join(dir, "relayd.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("invitations: %s is locked by another process (another relayd with the same --data-dir?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("invitations: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketInvitations, bucketByRoom, bucketByUser, bucketByStatus, bucketRooms, bucketBroadcasts, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keyVersion); {
		case v == nil:
			return meta.Put(keyVersion, schemaVersion)
		case !bytes.Equal(v, schemaVersion):
			return fmt.Errorf("schema version %q, this relayd reads %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("invitations: init %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// Close closes the file and releases its lock.
func (s *BoltStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("invitations: close: %w", err)
	}
	return nil
}

// Create implements Store.
func (s *BoltStore) Create(inv Invitation, check func(sameRoom []Invitation) error) (stored Invitation, created bool, err error) {
	if err := checkKeys(inv.ID, inv.Room, inv.User, string(inv.Status)); err != nil {
		return Invitation{}, false, err
	}
	var checkErr error
	err = s.db.Update(func(tx *bolt.Tx) error {
		invs := tx.Bucket(bucketInvitations)
		if invs.Get([]byte(inv.ID)) != nil {
			return fmt.Errorf("invitation id %s exists: %w", inv.ID, ErrConflict)
		}
		sameRoom, err := scanIndex(tx, bucketByRoom, inv.Room)
		if err != nil {
			return err
		}
		for _, old := range sameRoom {
			if old.User != inv.User {
				continue
			}
			if old.Status == StatusAccepted || (old.Status == StatusPending && old.ExpiresAt.After(inv.CreatedAt)) {
				stored = old
				return nil
			}
		}
		if checkErr = check(sameRoom); checkErr != nil {
			return checkErr
		}
		stored, created = inv, true
		return putInvitation(tx, inv, "")
	})
	if checkErr != nil {
		return Invitation{}, false, checkErr
	}
	if err != nil {
		return Invitation{}, false, wrapStoreErr("create", err)
	}
	return stored, created, nil
}

// Update implements Store.
func (s *BoltStore) Update(id string, fn func(inv *Invitation, sameRoom []Invitation) error) (Invitation, error) {
	var cur, next Invitation
	var fnErr error
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if cur, err = getInvitation(tx, id); err != nil {
			return err
		}
		sameRoom, err := scanIndex(tx, bucketByRoom, cur.Room)
		if err != nil {
			return err
		}
		next = cur
		if fnErr = fn(&next, sameRoom); fnErr != nil {
			return fnErr
		}
		if next.ID != cur.ID || next.Room != cur.Room || next.Host != cur.Host || next.User != cur.User || next.BroadcastID != cur.BroadcastID ||
			!next.CreatedAt.Equal(cur.CreatedAt) || !next.ExpiresAt.Equal(cur.ExpiresAt) {
			return fmt.Errorf("update of %s changed more than status and updatedAt", id)
		}
		if err := checkKeys(string(next.Status)); err != nil {
			return err
		}
		return putInvitation(tx, next, cur.Status)
	})
	switch {
	case fnErr != nil:
		return cur, fnErr // as is: its message may go to the client
	case errors.Is(err, ErrNotFound):
		return Invitation{}, err
	case err != nil:
		return Invitation{}, wrapStoreErr("update "+id, err)
	}
	return next, nil
}

// Get implements Store.
func (s *BoltStore) Get(id string) (Invitation, error) {
	var inv Invitation
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		inv, err = getInvitation(tx, id)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		err = wrapStoreErr("get "+id, err)
	}
	if err != nil {
		return Invitation{}, err
	}
	return inv, nil
}

// List implements Store. It scans the most selective index the filter
// names: room, then user, then status; an empty filter reads everything.
func (s *BoltStore) List(f Filter) ([]Invitation, error) {
	if err := checkKeys(f.Room, f.User, string(f.Status)); err != nil {
		return nil, err
	}
	var out []Invitation
	err := s.db.View(func(tx *bolt.Tx) error {
		var all []Invitation
		var err error
		switch {
		case f.Room != "":
			all, err = scanIndex(tx, bucketByRoom, f.Room)
		case f.User != "":
			all, err = scanIndex(tx, bucketByUser, f.User)
		case f.Status != "":
			all, err = scanIndex(tx, bucketByStatus, string(f.Status))
		default:
			err = tx.Bucket(bucketInvitations).ForEach(func(k, v []byte) error {
				inv, err := decodeInvitation(k, v)
				all = append(all, inv)
				return err
			})
		}
		for _, inv := range all {
			if f.Match(inv) {
				out = append(out, inv)
			}
		}
		return err
	})
	if err != nil {
		return nil, wrapStoreErr("list", err)
	}
	sortInvitations(out)
	return out, nil
}

// PutRoom implements Store.
func (s *BoltStore) PutRoom(r RoomRecord) error {
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
	err = s.db.Update(func(tx *bolt.Tx) error {
		if bv != nil {
			if err := tx.Bucket(bucketBroadcasts).Put(indexKey(b.Room, b.ID), bv); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketRooms).Put([]byte(r.Name), v)
	})
	return wrapStoreErr("put room "+r.Name, err)
}

// PutBroadcast implements Store.
func (s *BoltStore) PutBroadcast(b BroadcastRecord) error {
	v, err := encodeBroadcast(b)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBroadcasts).Put(indexKey(b.Room, b.ID), v)
	})
	return wrapStoreErr("put broadcast "+b.ID+" of "+b.Room, err)
}

// ListBroadcasts implements Store.
func (s *BoltStore) ListBroadcasts(room string) ([]BroadcastRecord, error) {
	if err := checkKeys(room); err != nil {
		return nil, err
	}
	out := []BroadcastRecord{}
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := indexKey(room, "")
		c := tx.Bucket(bucketBroadcasts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var b BroadcastRecord
			if err := json.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("broadcast %s: %w", k[len(prefix):], err)
			}
			out = append(out, b)
		}
		return nil
	})
	if err != nil {
		return nil, wrapStoreErr("list broadcasts of "+room, err)
	}
	sortBroadcasts(out)
	return out, nil
}

// deleteBroadcasts deletes every broadcast record of room inside tx.
func deleteBroadcasts(tx *bolt.Tx, room string) error {
	prefix := indexKey(room, "")
	bcs := tx.Bucket(bucketBroadcasts)
	var gone [][]byte // collected first: a cursor skips keys deleted under it
	c := bcs.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		gone = append(gone, append([]byte(nil), k...))
	}
	for _, k := range gone {
		if err := bcs.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// GetRoom implements Store.
func (s *BoltStore) GetRoom(name string) (RoomRecord, error) {
	var r RoomRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRooms).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("room %s: %w", name, ErrNotFound)
		}
		return json.Unmarshal(v, &r)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		err = wrapStoreErr("get room", err)
	}
	if err != nil {
		return RoomRecord{}, err
	}
	return r, nil
}

// ListRooms implements Store. bbolt keeps keys in byte order, which for
// these ASCII names is the order by name.
func (s *BoltStore) ListRooms() ([]RoomRecord, error) {
	var out []RoomRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRooms).ForEach(func(k, v []byte) error {
			var r RoomRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("room %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, wrapStoreErr("list rooms", err)
	}
	return out, nil
}

// DeleteRoom implements Store.
func (s *BoltStore) DeleteRoom(name string, createdAt time.Time) (bool, error) {
	var deleted bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		rooms := tx.Bucket(bucketRooms)
		v := rooms.Get([]byte(name))
		if v == nil {
			return nil
		}
		var r RoomRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("room %s: %w", name, err)
		}
		if !r.CreatedAt.Equal(createdAt) {
			return nil // a newer room of that name
		}
		if err := deleteBroadcasts(tx, name); err != nil {
			return err
		}
		deleted = true
		return rooms.Delete([]byte(name))
	})
	if err != nil {
		return false, wrapStoreErr("delete room "+name, err)
	}
	return deleted, nil
}

// DeleteInvitations implements Store.
func (s *BoltStore) DeleteInvitations(room string, until time.Time) (int, error) {
	if err := checkKeys(room); err != nil {
		return 0, err
	}
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		sameRoom, err := scanIndex(tx, bucketByRoom, room)
		if err != nil {
			return err
		}
		for _, inv := range sameRoom {
			if inv.CreatedAt.After(until) {
				continue
			}
			for _, del := range []struct {
				bucket []byte
				key    []byte
			}{
				{bucketInvitations, []byte(inv.ID)},
				{bucketByRoom, indexKey(inv.Room, inv.ID)},
				{bucketByUser, indexKey(inv.User, inv.ID)},
				{bucketByStatus, indexKey(string(inv.Status), inv.ID)},
			} {
				if err := tx.Bucket(del.bucket).Delete(del.key); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, wrapStoreErr("delete invitations of "+room, err)
	}
	return n, nil
}

// getInvitation reads one invitation inside tx.
func getInvitation(tx *bolt.Tx, id string) (Invitation, error) {
	v := tx.Bucket(bucketInvitations).Get([]byte(id))
	if v == nil {
		return Invitation{}, fmt.Errorf("invitation %s: %w", id, ErrNotFound)
	}
	return decodeInvitation([]byte(id), v)
}

func decodeInvitation(k, v []byte) (Invitation, error) {
	var inv Invitation
	if err := json.Unmarshal(v, &inv); err != nil {
		return Invitation{}, fmt.Errorf("invitation %s: %w", k, err)
	}
	return inv, nil
}

// putInvitation writes inv and its index keys. oldStatus is the status
// it is stored under now ("" for a new invitation), whose index key goes.
// Room and user never change, so their keys are written once.
func putInvitation(tx *bolt.Tx, inv Invitation, oldStatus Status) error {
	v, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketInvitations).Put([]byte(inv.ID), v); err != nil {
		return err
	}
	byStatus := tx.Bucket(bucketByStatus)
	if oldStatus != "" {
		if err := byStatus.Delete(indexKey(string(oldStatus), inv.ID)); err != nil {
			return err
		}
	} else {
		if err := tx.Bucket(bucketByRoom).Put(indexKey(inv.Room, inv.ID), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketByUser).Put(indexKey(inv.User, inv.ID), nil); err != nil {
			return err
		}
	}
	return byStatus.Put(indexKey(string(inv.Status), inv.ID), nil)
}

// scanIndex returns the invitations whose index entry in bucket is value,
// in id order.
func scanIndex(tx *bolt.Tx, bucket []byte, value string) ([]Invitation, error) {
	invs := tx.Bucket(bucketInvitations)
	prefix := indexKey(value, "")
	var out []Invitation
	c := tx.Bucket(bucket).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := k[len(prefix):]
		v := invs.Get(id)
		if v == nil {
			return nil, fmt.Errorf("index %s names missing invitation %s", bucket, id)
		}
		inv, err := decodeInvitation(id, v)
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	return out, nil
}

func indexKey(value, id string) []byte {
	k := make([]byte, 0, len(value)+1+len(id))
	k = append(k, value...)
	k = append(k, 0)
	return append(k, id...)
}

// checkKeys refuses values that would break the "<value>\x00<id>" index
// keys. Empty values are fine (they mean "any" in a Filter).
func checkKeys(values ...string) error {
	for _, v := range values {
		if bytes.IndexByte([]byte(v), 0) >= 0 {
			return fmt.Errorf("invitations: NUL in %q: %w", v, ErrInvalid)
		}
	}
	return nil
}

// wrapStoreErr prefixes err with the operation, keeping errors.Is working.
func wrapStoreErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("invitations: %s: %w", op, err)
}
