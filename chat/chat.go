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

// Keep is how many messages a room keeps: the contract asks for at least
// 200 (chat.history's largest page); 500 lets a late joiner page back a
// little further at ~1 KB a message.
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
// given: clients escape it when they display it.
type Message struct {
	ID   string    `json:"id"`
	Room string    `json:"room"`
	From Sender    `json:"from"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// Store keeps messages per room.
type Store interface {
	// Append gives m an id (its order in the room), stores it durably and
	// drops the oldest beyond Keep.
	Append(m Message) (Message, error)
	// History returns up to limit messages older than before (all newest
	// ones when before is ""), oldest first.
	History(room, before string, limit int) ([]Message, error)
	// Delete removes a message; ErrNotFound if it is not there.
	Delete(room, id string) error
	// DeleteRoom removes the room's messages written at or before until
	// and returns how many; when none is left, everything the store
	// keeps for the room goes, its sequence too (a new room of that
	// name starts again at MS_…01). Messages after until (a newer room
	// of that name) stay. Safe to repeat and to race with itself.
	DeleteRoom(room string, until time.Time) (int, error)
	Close() error
}

// BoltStore is the embedded Store: one bucket per room, keyed by a
// big-endian sequence number so a cursor walks messages in order.
type BoltStore struct{ db *bolt.DB }

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
		// Trim: only the last Keep sequence numbers stay.
		if seq <= Keep {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq-Keep; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	return m, err
}

// History implements Store.
func (s *BoltStore) History(room, before string, limit int) ([]Message, error) {
	var out []Message
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(room))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if before == "" {
			k, v = c.Last()
		} else {
			bk, ok := keyOf(before)
			if !ok {
				return nil
			}
			if k, v = c.Seek(bk); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
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
func (s *BoltStore) Delete(room, id string) error {
	k, ok := keyOf(id)
	if !ok {
		return ErrNotFound
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(room))
		if b == nil || b.Get(k) == nil {
			return ErrNotFound
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
		var gone [][]byte // collected first: a cursor skips keys deleted under it
		_ = b.ForEach(func(k, v []byte) error {
			var m Message
			if json.Unmarshal(v, &m) == nil && m.At.After(until) {
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
		if k, _ := b.Cursor().First(); k == nil {
			return tx.DeleteBucket([]byte(room))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("chat store: delete room %s: %w", room, err)
	}
	return n, nil
}
