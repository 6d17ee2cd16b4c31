package sfu

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testPacket returns a packet whose length and content both depend on ext,
// with ext itself in the first 8 bytes, so that a packet returned for the
// wrong ext, or torn by a concurrent Store, is detected.
func testPacket(ext uint64, buf []byte) []byte {
	n := 8 + int(ext%1000) // 8..1007 bytes
	p := buf[:n]
	binary.BigEndian.PutUint64(p, ext)
	for i := 8; i < n; i++ {
		p[i] = byte(ext) ^ byte(i)
	}
	return p
}

func TestNewCacheSize(t *testing.T) {
	tests := []struct {
		in, want int
	}{
		{-5, 16},
		{0, 16},
		{1, 16},
		{16, 16},
		{17, 32},
		{500, 512},
		{512, 512},
		{1 << 15, 1 << 15},
		{1<<15 + 1, 1 << 15},
		{1 << 40, 1 << 15},
	}
	for _, tt := range tests {
		c := NewCache(tt.in)
		if got := c.Size(); got != tt.want {
			t.Errorf("NewCache(%d).Size() = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestCache(t *testing.T) {
	type op struct {
		store bool   // Store if true, else Get/Has
		ext   uint64 // packet ext
		size  int    // for Store: packet length (0: testPacket's); for Get: buffer length (0: MaxPacketSize)
		want  bool   // Store's result, or whether Get/Has find the packet
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{
			name: "round trip",
			ops: []op{
				{store: true, ext: 70000, want: true},
				{store: true, ext: 70001, want: true},
				{ext: 70000, want: true},
				{ext: 70001, want: true},
				{ext: 70002, want: false},
				{ext: 70000 + 16, want: false}, // same slot, other ext
			},
		},
		{
			name: "duplicate",
			ops: []op{
				{store: true, ext: 100, want: true},
				{store: true, ext: 100, want: false},
				{ext: 100, want: true},
			},
		},
		{
			name: "out of order within the window",
			ops: []op{
				{store: true, ext: 100, want: true},
				{store: true, ext: 90, want: true},
				{store: true, ext: 85, want: true}, // 15 behind: still fits
				{ext: 100, want: true},
				{ext: 90, want: true},
				{ext: 85, want: true},
			},
		},
		{
			name: "too old",
			ops: []op{
				{store: true, ext: 100, want: true},
				{store: true, ext: 84, want: false}, // 16 behind: slot of 100
				{store: true, ext: 10, want: false},
				{ext: 100, want: true},
				{ext: 84, want: false},
			},
		},
		{
			name: "overwrite after wrap of the ring",
			ops: []op{
				{store: true, ext: 1000, want: true},
				{store: true, ext: 1001, want: true},
				{store: true, ext: 1016, want: true}, // replaces 1000
				{ext: 1000, want: false},
				{ext: 1001, want: true},
				{ext: 1016, want: true},
				{store: true, ext: 1000, want: false}, // too old now
				{ext: 1016, want: true},
			},
		},
		{
			name: "oversize packet",
			ops: []op{
				{store: true, ext: 5, size: MaxPacketSize + 1, want: false},
				{ext: 5, want: false},
				{store: true, ext: 5, size: MaxPacketSize, want: true},
				{ext: 5, want: true},
			},
		},
		{
			name: "empty packet",
			ops: []op{
				{store: true, ext: 5, size: -1, want: false},
				{ext: 5, want: false},
			},
		},
		{
			name: "buffer too small",
			ops: []op{
				{store: true, ext: 200, size: 300, want: true},
				{ext: 200, size: 299, want: false},
				{ext: 200, size: 300, want: true},
			},
		},
		{
			name: "ext zero",
			ops: []op{
				{ext: 0, want: false}, // empty slots are not ext 0
				{store: true, ext: 0, want: true},
				{ext: 0, want: true},
				{store: true, ext: 0, want: false},
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCache(16)
			stored := make(map[uint64][]byte)
			for i, o := range tt.ops {
				if o.store {
					var pkt []byte
					switch {
					case o.size < 0:
						pkt = []byte{}
					case o.size > 0:
						pkt = bytes.Repeat([]byte{byte(o.ext)}, o.size)
					default:
						pkt = testPacket(o.ext, make([]byte, MaxPacketSize))
					}
					if got := c.Store(o.ext, pkt); got != o.want {
						t.Fatalf("op %d: Store(%d, %d bytes) = %v, want %v", i, o.ext, len(pkt), got, o.want)
					}
					if o.want {
						stored[o.ext] = pkt
					}
					continue
				}
				size := o.size
				if size == 0 {
					size = MaxPacketSize
				}
				buf := make([]byte, size)
				n := c.Get(o.ext, buf)
				if got := n > 0; got != o.want {
					t.Fatalf("op %d: Get(%d) = %d, want found=%v", i, o.ext, n, o.want)
				}
				if o.want && !bytes.Equal(buf[:n], stored[o.ext]) {
					t.Fatalf("op %d: Get(%d) returned the wrong bytes", i, o.ext)
				}
				if size == MaxPacketSize {
					if got := c.Has(o.ext); got != o.want {
						t.Fatalf("op %d: Has(%d) = %v, want %v", i, o.ext, got, o.want)
					}
				}
			}
		})
	}
}

func TestCacheNoAllocs(t *testing.T) {
	c := NewCache(512)
	pkt := make([]byte, 1200)
	buf := make([]byte, MaxPacketSize)
	ext := uint64(1 << 16)

	if a := testing.AllocsPerRun(1000, func() {
		ext++
		c.Store(ext, pkt)
	}); a != 0 {
		t.Errorf("Store: %v allocs per run, want 0", a)
	}
	if a := testing.AllocsPerRun(1000, func() {
		if c.Get(ext, buf) == 0 {
			t.Fatal("Get missed")
		}
		c.Has(ext - 1)
	}); a != 0 {
		t.Errorf("Get: %v allocs per run, want 0", a)
	}
}

// TestCacheConcurrent runs one storer against many getters; run it with -race.
// Every non-zero Get must return exactly the packet stored for that ext.
func TestCacheConcurrent(t *testing.T) {
	const (
		packets = 20000
		getters = 8
	)
	c := NewCache(64)
	var newest atomic.Uint64 // last ext stored, published for the getters
	var done atomic.Bool

	var wg sync.WaitGroup
	var hits, misses atomic.Int64
	for g := range getters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, MaxPacketSize)
			want := make([]byte, MaxPacketSize)
			for i := 0; !done.Load(); i++ {
				top := newest.Load()
				if top == 0 {
					continue
				}
				// Ask for recent packets, some of them already overwritten
				// and some not yet stored.
				ext := top - uint64((i*7+g)%100) + 4
				n := c.Get(ext, buf)
				if n == 0 {
					misses.Add(1)
					continue
				}
				hits.Add(1)
				if exp := testPacket(ext, want); !bytes.Equal(buf[:n], exp) {
					t.Errorf("Get(%d) returned %d bytes for ext %d, want %d bytes",
						ext, n, binary.BigEndian.Uint64(buf), len(exp))
					return
				}
			}
		}()
	}

	pkt := make([]byte, MaxPacketSize)
	// At least packets, and on until some Get has hit: on a busy machine
	// the getters may not run at all while the first ones are stored.
	deadline := time.Now().Add(30 * time.Second)
	for ext := uint64(1); ext <= packets || (hits.Load() == 0 && time.Now().Before(deadline)); ext++ {
		// Store a few packets out of order, as a reordering network would.
		e := ext
		if ext%10 == 5 {
			e = ext + 1
		} else if ext%10 == 6 {
			e = ext - 1
		}
		c.Store(e, testPacket(e, pkt))
		newest.Store(ext)
	}
	done.Store(true)
	wg.Wait()
	t.Logf("%d hits, %d misses", hits.Load(), misses.Load())
	if hits.Load() == 0 {
		t.Error("no Get ever hit")
	}
}

func BenchmarkCacheStore(b *testing.B) {
	c := NewCache(512)
	pkt := make([]byte, 1200) // a typical browser video packet
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	ext := uint64(1 << 16)
	for b.Loop() {
		ext++
		c.Store(ext, pkt)
	}
}

func BenchmarkCacheGet(b *testing.B) {
	c := NewCache(512)
	pkt := make([]byte, 1200)
	for ext := uint64(1); ext <= 512; ext++ {
		c.Store(ext, pkt)
	}
	buf := make([]byte, MaxPacketSize)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		i++
		c.Get(1+i%512, buf)
	}
}

// BenchmarkCacheStoreGetParallel measures Get while one goroutine keeps
// storing, as the track reader does while subscribers answer NACKs.
func BenchmarkCacheStoreGetParallel(b *testing.B) {
	c := NewCache(512)
	pkt := make([]byte, 1200)
	var newest atomic.Uint64
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ext := uint64(1); !stop.Load(); ext++ {
			c.Store(ext, pkt)
			newest.Store(ext)
		}
	}()
	for newest.Load() < 512 {
		// let the storer fill the cache
	}

	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, MaxPacketSize)
		i := uint64(0)
		for pb.Next() {
			i++
			// Within the last 256 packets: mostly hits, and close
			// enough to the storer to contend for the same slots.
			c.Get(newest.Load()-i%256, buf)
		}
	})
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
}
