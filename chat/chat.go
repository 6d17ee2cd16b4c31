// Package chat keeps each room's chat: messages behind a small Store
// interface (bbolt here; a distributed store later), newest last. The
// signaling layer does the permissions, rate limits and fan-out.
package chat

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Keep is how many messages a broadcast of a room keeps: the contract
// asks for at least 200 (chat.history's largest page) and, for a past
// broadcast, its last 500 (PROTOCOL.md 1.1 §1a); 500 lets a late joiner
// page back a little further at ~1 KB a message.
const Keep = 500

// ErrNotFound: no such message in the room.
var ErrNotFound = errors.New("message not found")

// Sender is who wrote a message.
type Sender struct {
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Role     string `json:"role"`
}

// Message is the contract's message object. Text is stored and sent as
// given: clients escape it when they display it. BroadcastID is the
// room's broadcast it was sent in (PROTOCOL.md 1.1 §1a).
type Message struct {
	ID          string    `json:"id"`
	Room        string    `json:"room"`
	BroadcastID string    `json:"broadcastId,omitempty"`
	From        Sender    `json:"from"`
	Text        string    `json:"text"`
	At          time.Time `json:"at"`
}

// Store keeps messages per room, each in one broadcast of the room. Ids
// are the room's: they keep increasing from one broadcast to the next.
// Messages stored before broadcasts (none of its broadcast) are in no
// broadcast: History lists none of them.
type Store interface {
	// Append gives m an id (its order in the room), stores it durably and
	// drops the oldest of its broadcast (m.BroadcastID) beyond Keep.
	Append(m Message) (Message, error)
	// History returns up to limit messages of the room's broadcast older
	// than before (all newest ones when before is ""), oldest first.
	History(room, broadcast, before string, limit int) ([]Message, error)
	// Delete removes a message of the room's broadcast; ErrNotFound if it
	// is not there.
	Delete(room, broadcast, id string) error
	// DeleteRoom removes the room's messages written at or before until
	// and returns how many; when none is left, everything the store
	// keeps for the room goes, its sequence too (a new room of that
	// name starts again at MS_…01). Messages after until (a newer room
	// of that name) stay. Safe to repeat and to race with itself.
	DeleteRoom(room string, until time.Time) (int, error)
	Close() error
}

// BoltStore is the embedded Store. A room is a bucket: each message is
// in it under its 8-byte big-endian sequence number (its id), and each
// broadcast of the room is a bucket in it, "b:<broadcast id>", which
// indexes the broadcast's messages (sequence number -> empty) so that a
// cursor walks them in order; that bucket's own sequence counts them.
type BoltStore struct{ db *bolt.DB }

// indexOf names a broadcast's index bucket within its room's bucket.
// Message keys are 8 bytes and never start with "b:".
func indexOf(broadcast string) []byte { return []byte("b:" + broadcast) }

// OpenBolt opens <dir>/chat.db.
func OpenBolt(dir string) (*BoltStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("chat store: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "chat.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("chat store: %w", err)
	}
	return &BoltStore{db: db}, nil
}

// Close closes the database.
func (s *BoltStore) Close() error { return s.db.Close() }

// A message id is "MS_" and its 16 hex digits of sequence: it sorts and
// locates the message in its room's bucket.
func idOf(seq uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return "MS_" + hex.EncodeToString(b[:])
}

func keyOf(id string) ([]byte, bool) {
	if !strings.HasPrefix(id, "MS_") {
		return nil, false
	}
	k, err := hex.DecodeString(id[3:])
	if err != nil || len(k) != 8 {
		return nil, false
	}
	return k, true
}

// Append implements Store.
func (s *BoltStore) Append(m Message) (Message, error) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(m.Room))
		if err != nil {
			return err
		}
		idx, err := b.CreateBucketIfNotExists(indexOf(m.BroadcastID))
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		m.ID = idOf(seq)
		v, err := json.Marshal(m)
		if err != nil {
			return err
		}
		k, _ := keyOf(m.ID)
		if err := b.Put(k, v); err != nil {
			return err
		}
		if err := idx.Put(k, []byte{}); err != nil {
			return err
		}
		// Trim: only the broadcast's last Keep messages stay.
		n := idx.Sequence() + 1
		for ; n > Keep; n-- {
			oldest, _ := idx.Cursor().First()
			if err := b.Delete(oldest); err != nil {
				return err
			}
			if err := idx.Delete(oldest); err != nil {
				return err
			}
		}
		return idx.SetSequence(n)
	})
	return m, err
}

// History implements Store.
func (s *BoltStore) History(room, broadcast, before string, limit int) ([]Message, error) {
	var out []Message
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(room))
		if b == nil {
			return nil
		}
		idx := b.Bucket(indexOf(broadcast))
		if idx == nil {
			return nil
		}
		c := idx.Cursor()
		var k []byte
		if before == "" {
			k, _ = c.Last()
		} else {
			bk, ok := keyOf(before)
			if !ok {
				return nil
			}
			if k, _ = c.Seek(bk); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k, _ = c.Prev() {
			v := b.Get(k)
			if v == nil {
				continue // an index entry without its message: not listed
			}
			var m Message
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if out == nil {
		out = []Message{}
	}
	return out, err
}

// Delete implements Store.
func (s *BoltStore) Delete(room, broadcast, id string) error {
	k, ok := keyOf(id)
	if !ok {
		return ErrNotFound
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(room))
		if b == nil {
			return ErrNotFound
		}
		idx := b.Bucket(indexOf(broadcast))
		if idx == nil || idx.Get(k) == nil {
			return ErrNotFound
		}
		if err := idx.Delete(k); err != nil {
			return err
		}
		if err := idx.SetSequence(idx.Sequence() - 1); err != nil {
			return err
		}
		return b.Delete(k)
	})
}

// DeleteRoom implements Store.
func (s *BoltStore) DeleteRoom(room string, until time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket([]byte(room))
		if b == nil {
			return nil
		}
		var gone, indexes [][]byte // collected first: a cursor skips keys deleted under it
		left := 0
		_ = b.ForEach(func(k, v []byte) error {
			if v == nil { // a broadcast's index
				indexes = append(indexes, append([]byte(nil), k...))
				return nil
			}
			var m Message
			if json.Unmarshal(v, &m) == nil && m.At.After(until) {
				left++
				return nil
			}
			gone = append(gone, append([]byte(nil), k...)) // up to until, or unreadable: it goes with its room
			return nil
		})
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(gone)
		if left == 0 {
			return tx.DeleteBucket([]byte(room))
		}
		for _, name := range indexes {
			if err := pruneIndex(b, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("chat store: delete room %s: %w", room, err)
	}
	return n, nil
}

// pruneIndex drops the entries of the index bucket name whose message is
// gone from room bucket b, recounts it, and drops it once empty.
func pruneIndex(b *bolt.Bucket, name []byte) error {
	idx := b.Bucket(name)
	var gone [][]byte
	var kept uint64
	_ = idx.ForEach(func(k, _ []byte) error {
		if b.Get(k) == nil {
			gone = append(gone, append([]byte(nil), k...))
		} else {
			kept++
		}
		return nil
	})
	if kept == 0 {
		return b.DeleteBucket(name)
	}
	for _, k := range gone {
		if err := idx.Delete(k); err != nil {
			return err
		}
	}
	return idx.SetSequence(kept)
}
