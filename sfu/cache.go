package sfu

import (
	"sync"
	"sync/atomic"
)

// MaxPacketSize is the largest RTP packet an up track takes: the reader reads into a buffer of
// this size and the cache keeps nothing bigger (a bigger packet is dropped and counted, never forwarded).
// 1500 is the Ethernet MTU: an RTP packet that reached us over UDP is practically never larger,
// and browsers keep theirs around 1200 bytes to leave room for tunnels.
const MaxPacketSize = 1500

const (
	// minCacheSize keeps tiny caches useful: 16 packets are about one
	// video frame at 1-2 Mbit/s.
	minCacheSize = 16
	// maxCacheSize is half the 16-bit sequence space. A NACK names a 16-bit
	// sequence number, which can only be unwrapped unambiguously within 2^15
	// of the newest packet, so older slots could never be asked for.
	// At this size the cache holds 2^15 * 1500 bytes, about 49 MB.
	maxCacheSize = 1 << 15
)

// Cache keeps the last Size packets of one up track, keyed by extended sequence number, so that
// every subscriber's NACK is answered from one copy (Galene packetcache / LiveKit buffer).
// One goroutine stores (the track's reader); many goroutines Get concurrently (subscribers' writers
// and NACK handlers). Each slot has its own lock so a Get copies under a read lock and never races a Store.
type Cache struct {
	mask  uint64 // len(slots) - 1; len(slots) is a power of two
	slots []cacheSlot
	buf   []byte // len(slots) * MaxPacketSize bytes; slot i owns buf[i*MaxPacketSize:]

	// Owned by the single storer goroutine.
	newest    uint64 // highest ext stored so far
	hasNewest bool

	// The newest keyframe start and when it arrived, so that a new
	// subscriber can start from it (DownTrack.replay). Written by the
	// storer, read by writers: keyAt is cleared while keyExt changes.
	keyExt atomic.Uint64
	keyAt  atomic.Int64
	// head is newest+1 (0: nothing stored yet), for readers.
	head atomic.Uint64
}

type cacheSlot struct {
	mu    sync.RWMutex
	ext   uint64 // extended sequence number of the packet held
	n     int    // its length in bytes
	valid bool   // whether the slot holds a packet at all
}

// NewCache returns a cache of size packets; size is rounded up to a power of two, at least 16
// (and at most 2^15, see maxCacheSize).
// All memory is allocated here: Store and Get never allocate.
func NewCache(size int) *Cache {
	n := minCacheSize
	for n < size && n < maxCacheSize {
		n <<= 1
	}
	return &Cache{
		mask:  uint64(n - 1),
		slots: make([]cacheSlot, n),
		buf:   make([]byte, n*MaxPacketSize),
	}
}

// Size returns the number of packets the cache holds.
func (c *Cache) Size() int {
	return len(c.slots)
}

// Store copies pkt into the slot of ext. It returns false (and stores nothing) when a packet with
// the same ext is already stored (a duplicate, e.g. a retransmission that arrived twice), when ext is
// Size or more behind the newest stored ext (too old: its slot belongs to a newer packet), or when
// len(pkt) > MaxPacketSize. An empty pkt is not stored either (Get could not tell it from a miss).
// Store must only be called from one goroutine at a time.
func (c *Cache) Store(ext uint64, pkt []byte) bool {
	if len(pkt) == 0 || len(pkt) > MaxPacketSize {
		return false
	}
	size := uint64(len(c.slots))
	if c.hasNewest && ext < c.newest && c.newest-ext >= size {
		return false
	}

	i := ext & c.mask
	s := &c.slots[i]
	s.mu.Lock()
	// s.ext > ext cannot happen given the check above (the slot's packet is
	// at most newest and congruent to ext), but never overwrite newer data.
	if s.valid && s.ext >= ext {
		s.mu.Unlock()
		return false
	}
	off := int(i) * MaxPacketSize
	s.n = copy(c.buf[off:off+MaxPacketSize], pkt)
	s.ext = ext
	s.valid = true
	s.mu.Unlock()

	if !c.hasNewest || ext > c.newest {
		c.newest = ext
		c.hasNewest = true
		c.head.Store(ext + 1)
	}
	return true
}

// Newest returns the highest ext stored so far; ok is false before the
// first Store. Any goroutine may call it.
func (c *Cache) Newest() (ext uint64, ok bool) {
	h := c.head.Load()
	return h - 1, h != 0
}

// Get copies the packet stored for ext into buf and returns its length, or 0 when it is not there
// (never stored, already overwritten, or buf too small).
func (c *Cache) Get(ext uint64, buf []byte) int {
	i := ext & c.mask
	s := &c.slots[i]
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.valid || s.ext != ext || len(buf) < s.n {
		return 0
	}
	off := int(i) * MaxPacketSize
	return copy(buf, c.buf[off:off+s.n])
}

// Has reports whether ext is stored.
func (c *Cache) Has(ext uint64) bool {
	s := &c.slots[ext&c.mask]
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.valid && s.ext == ext
}

// MarkKeyframe records that ext, stored at arrival (Now()), starts a
// keyframe. An older keyframe (a late retransmission) does not replace a
// newer one. Only the storer calls it.
func (c *Cache) MarkKeyframe(ext uint64, arrival int64) {
	if c.keyAt.Load() != 0 && ext <= c.keyExt.Load() {
		return
	}
	c.keyAt.Store(0)
	c.keyExt.Store(ext)
	c.keyAt.Store(arrival)
}

// LastKeyframe returns the newest keyframe start marked and when it
// arrived; ok is false when none was (or one is being marked right now).
func (c *Cache) LastKeyframe() (ext uint64, arrival int64, ok bool) {
	at := c.keyAt.Load()
	ext = c.keyExt.Load()
	if at == 0 || c.keyAt.Load() != at {
		return 0, 0, false
	}
	return ext, at, true
}
