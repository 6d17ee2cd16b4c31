package webhooks

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The outbox layout in webhooks.db:
//
//	events:        seq (8 bytes, big endian) -> the Event JSON, exactly the body sent
//	outbox/<URL>:  lane key -> "" for each event that URL has not acknowledged
//
// A lane key is uvarint(len(room)) | room | seq: the keys of one room sort
// together and by seq, so a lane's head is one Seek, and the length prefix
// keeps room "a" from ever matching the keys of room "a\x00b". An event is
// deleted once no URL's outbox holds it.
var (
	bucketEvents = []byte("events")
	bucketOutbox = []byte("outbox")
	bucketMeta   = []byte("meta")

	keyVersion    = []byte("version")
	schemaVersion = []byte("1")
)

// openTimeout: bbolt waits forever for the file lock by default; a second
// relayd on the same directory should fail at once, saying why. One second
// covers a previous process still closing the file.
const openTimeout = time.Second

// store is the outbox. bbolt fsyncs every write transaction before it
// returns (NoSync stays false).
type store struct {
	db *bolt.DB
}

// openStore opens dir/webhooks.db and makes its URL outboxes match urls:
// a new URL gets an empty outbox (it receives events from now on), and a
// removed URL's undelivered events are dropped (the count is returned).
func openStore(dir string, urls []string) (*store, int, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("webhooks: data dir: %w", err)
	}
	path := filepath.Join(dir, "webhooks.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, 0, fmt.Errorf("webhooks: %s is locked by another process (another relayd with the same --data-dir?): %w", path, err)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("webhooks: open %s: %w", path, err)
	}
	dropped := 0
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketEvents, bucketOutbox, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keyVersion); {
		case v == nil:
			if err := meta.Put(keyVersion, schemaVersion); err != nil {
				return err
			}
		case !bytes.Equal(v, schemaVersion):
			return fmt.Errorf("schema version %q, this relayd reads %q", v, schemaVersion)
		}
		var err error
		dropped, err = syncURLs(tx, urls)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, 0, fmt.Errorf("webhooks: init %s: %w", path, err)
	}
	return &store{db: db}, dropped, nil
}

// syncURLs creates the outboxes of urls and deletes the others, then the
// events no outbox holds any more.
func syncURLs(tx *bolt.Tx, urls []string) (int, error) {
	outbox := tx.Bucket(bucketOutbox)
	var stale [][]byte
	dropped := 0
	if err := outbox.ForEachBucket(func(name []byte) error {
		if !slices.Contains(urls, string(name)) {
			stale = append(stale, slices.Clone(name))
			dropped += outbox.Bucket(name).Stats().KeyN
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, name := range stale {
		if err := outbox.DeleteBucket(name); err != nil {
			return 0, err
		}
	}
	for _, u := range urls {
		if _, err := outbox.CreateBucketIfNotExists([]byte(u)); err != nil {
			return 0, err
		}
	}
	if len(stale) == 0 {
		return dropped, nil
	}
	// Collect the events no remaining outbox holds (deleting while
	// iterating a cursor skips keys).
	var orphans [][]byte
	events := tx.Bucket(bucketEvents)
	if err := events.ForEach(func(seq, body []byte) error {
		var ev Event
		if err := json.Unmarshal(body, &ev); err != nil || !heldByAny(outbox, laneKey(ev.Room, binary.BigEndian.Uint64(seq)), nil) {
			orphans = append(orphans, slices.Clone(seq))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, seq := range orphans {
		if err := events.Delete(seq); err != nil {
			return 0, err
		}
	}
	return dropped, nil
}

// heldByAny reports whether an outbox other than except holds key.
func heldByAny(outbox *bolt.Bucket, key, except []byte) bool {
	held := false
	_ = outbox.ForEachBucket(func(name []byte) error {
		if !held && !bytes.Equal(name, except) && outbox.Bucket(name).Get(key) != nil {
			held = true
		}
		return nil
	})
	return held
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// lanePrefix is the start of every lane key of room.
func lanePrefix(room string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(room))), room...)
}

func laneKey(room string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(lanePrefix(room), seq)
}

// add stores an event and puts it in the outbox of every URL, in one
// transaction.
func (s *store) add(room string, body []byte, urls []string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		seq, err := events.NextSequence()
		if err != nil {
			return err
		}
		if err := events.Put(seqKey(seq), body); err != nil {
			return err
		}
		outbox := tx.Bucket(bucketOutbox)
		for _, u := range urls {
			if err := outbox.Bucket([]byte(u)).Put(laneKey(room, seq), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// head returns the oldest event of room that url has not acknowledged, or
// ok false when there is none. body is a copy.
func (s *store) head(url, room string) (seq uint64, body []byte, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox).Bucket([]byte(url))
		if b == nil {
			return nil
		}
		prefix := lanePrefix(room)
		k, _ := b.Cursor().Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
			return nil
		}
		seq = binary.BigEndian.Uint64(k[len(prefix):])
		body = slices.Clone(tx.Bucket(bucketEvents).Get(seqKey(seq))) // nil if missing: the caller skips it
		ok = true
		return nil
	})
	return seq, body, ok, err
}

// delivered takes the event out of url's outbox, and deletes it when no
// other outbox holds it. It is idempotent, so it can run in a bbolt batch
// (which may call it twice), coalescing the fsyncs of concurrent workers.
func (s *store) delivered(url, room string, seq uint64) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		outbox := tx.Bucket(bucketOutbox)
		key := laneKey(room, seq)
		if b := outbox.Bucket([]byte(url)); b != nil {
			if err := b.Delete(key); err != nil {
				return err
			}
		}
		if heldByAny(outbox, key, []byte(url)) {
			return nil
		}
		return tx.Bucket(bucketEvents).Delete(seqKey(seq))
	})
}

// rooms returns the rooms with events in url's outbox.
func (s *store) rooms(url string) ([]string, error) {
	var rooms []string
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox).Bucket([]byte(url))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; {
			n, w := binary.Uvarint(k)
			if w <= 0 || uint64(len(k)) != uint64(w)+n+8 {
				k, _ = c.Next() // not a lane key; cannot happen
				continue
			}
			prefix := k[:uint64(w)+n]
			rooms = append(rooms, string(k[w:len(prefix)]))
			// Skip the rest of this room: past prefix + 8 bytes of 0xff.
			k, _ = c.Seek(append(slices.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		}
		return nil
	})
	return rooms, err
}

// pending returns the number of (event, URL) deliveries still to make.
func (s *store) pending() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		outbox := tx.Bucket(bucketOutbox)
		return outbox.ForEachBucket(func(name []byte) error {
			n += outbox.Bucket(name).Stats().KeyN
			return nil
		})
	})
	return n, err
}

func (s *store) close() error { return s.db.Close() }
