package sfu

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/metrics"
)

func marshal(t *testing.T, p rtp.Packet) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseRTP is the one parse of a packet: the reader's when it comes in, a
// writer's when it reads it back for its group.
func TestParseRTP(t *testing.T) {
	hdr := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, Timestamp: 9000, SSRC: 5, Marker: true}
	plain := marshal(t, rtp.Packet{Header: hdr, Payload: []byte{1, 2, 3}})
	withCSRC := hdr
	withCSRC.CSRC = []uint32{1, 2}
	withExt := hdr
	if err := withExt.SetExtension(3, []byte{0xaa, 0xbb}); err != nil {
		t.Fatal(err)
	}
	padded := hdr
	padded.Padding, padded.PaddingSize = true, 4
	// More padding announced than there is payload: taken whole.
	overPadded := append(append([]byte{0xa0}, plain[1:]...), 0x7f)
	// Only padding: an empty payload, still a packet.
	allPadding := append(append([]byte{0xa0}, plain[1:12]...), 0, 0, 3)

	tests := []struct {
		name    string
		raw     []byte
		ok      bool
		payload []byte
		seq     uint16
	}{
		{"plain", plain, true, []byte{1, 2, 3}, 7},
		{"csrc", marshal(t, rtp.Packet{Header: withCSRC, Payload: []byte{4}}), true, []byte{4}, 7},
		{"extension", marshal(t, rtp.Packet{Header: withExt, Payload: []byte{5, 6}}), true, []byte{5, 6}, 7},
		{"padding stripped", marshal(t, rtp.Packet{Header: padded, Payload: []byte{7, 8}}), true, []byte{7, 8}, 7},
		{"padding past the payload", overPadded, true, append([]byte{1, 2, 3}, 0x7f), 7},
		{"only padding", allPadding, true, []byte{}, 7},
		{"header only", plain[:12], true, []byte{}, 7},
		{"empty", nil, false, nil, 0},
		{"short header", plain[:11], false, nil, 0},
		{"csrc count past the end", append([]byte{0x8f}, plain[1:]...), false, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h rtp.Header
			payload, ok := parseRTP(tc.raw, &h)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if !bytes.Equal(payload, tc.payload) {
				t.Errorf("payload %x, want %x", payload, tc.payload)
			}
			if h.SequenceNumber != tc.seq || h.Timestamp != 9000 || !h.Marker {
				t.Errorf("header %+v", h)
			}
		})
	}
}

// cachedPacket.read is the per-writer read: one copy out of the cache and
// one parse, for every down track of the group.
func TestCachedPacketRead(t *testing.T) {
	c := NewCache(minCacheSize)
	pkt := func(seq uint16, payload ...byte) []byte {
		return marshal(t, rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 10}, Payload: payload})
	}
	padded := marshal(t, rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 2, SequenceNumber: 2, Timestamp: 20}, Payload: []byte{9, 9}})
	c.Store(1, pkt(1, 1, 1))
	c.Store(2, padded)
	c.Store(3, []byte{0x80, 1}) // stored as given; not RTP
	c.Store(4, pkt(4, 4))
	c.Store(4+minCacheSize, pkt(4+minCacheSize, 5)) // overwrites 4's slot

	tests := []struct {
		name    string
		ext     uint64
		ok      bool
		payload []byte
		ts      uint32
	}{
		{"hit", 1, true, []byte{1, 1}, 10},
		{"padding stripped", 2, true, []byte{9, 9}, 20},
		{"not RTP", 3, false, nil, 0},
		{"overwritten", 4, false, nil, 0},
		{"the newer one", 4 + minCacheSize, true, []byte{5}, (4 + minCacheSize) * 10},
		{"never stored", 99, false, nil, 0},
	}
	// One cachedPacket for all, as a writer reuses its own: a miss must
	// not leave the previous packet's payload behind.
	p := newCachedPacket()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.read(c, tc.ext); got != tc.ok || p.ok != tc.ok || p.ext != tc.ext {
				t.Fatalf("read = %v (ok %v, ext %d), want %v", got, p.ok, p.ext, tc.ok)
			}
			if !bytes.Equal(p.payload, tc.payload) {
				t.Errorf("payload %x, want %x", p.payload, tc.payload)
			}
			if tc.ok && p.hdr.Timestamp != tc.ts {
				t.Errorf("timestamp %d, want %d", p.hdr.Timestamp, tc.ts)
			}
		})
	}
}

// Each writer reads each packet out of the cache once for its whole
// group, however many subscribers the group has, and every subscriber
// still gets every packet.
func TestWriterReadsOncePerGroup(t *testing.T) {
	defer func(n int) { writerTracks = n }(writerTracks)
	tests := []struct {
		subs, group, writers int
	}{
		{subs: 1, group: 32, writers: 1},
		{subs: 32, group: 32, writers: 1},
		{subs: 33, group: 32, writers: 2},
		{subs: 5, group: 2, writers: 3},
	}
	const packets = 10
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d subscribers in groups of %d", tc.subs, tc.group), func(t *testing.T) {
			writerTracks = tc.group
			m := metrics.New()
			up := newTestUpTrack(m, &fakeSource{})
			ws := make([]*fakeWriter, tc.subs)
			for i := range ws {
				ws[i] = &fakeWriter{keep: true}
				d := newBoundDownTrack(t, m, up, ws[i], webrtc.SSRC(1000+i))
				defer d.Close()
			}
			up.mu.Lock()
			writers := append([]*writer(nil), up.writers...)
			up.mu.Unlock()
			if len(writers) != tc.writers {
				t.Fatalf("%d writers, want %d", len(writers), tc.writers)
			}
			for i := uint16(0); i < packets; i++ {
				up.ingest(vp8Packet(i, uint32(i)*3000, true, i == 0, 100))
			}
			for i, w := range ws {
				waitFor(t, fmt.Sprintf("subscriber %d's packets", i), func() bool { return w.count.Load() == packets })
			}
			up.finish() // the writers have stopped: their counts can be read
			for i, w := range writers {
				if w.reads != packets {
					t.Errorf("writer %d read %d packets for its group, want %d (one each)", i, w.reads, packets)
				}
			}
			for i, w := range ws {
				for j, p := range w.packets() {
					if p.SSRC != uint32(1000+i) || p.Payload[len(p.Payload)-1] != byte(j) {
						t.Errorf("subscriber %d packet %d: ssrc %d upstream %d", i, j, p.SSRC, p.Payload[len(p.Payload)-1])
					}
				}
			}
		})
	}
}

// memberLog is a groupMember that records what its writer hands it.
type memberLog struct {
	mu   sync.Mutex
	got  []*cachedPacket
	seqs []uint16
}

func (l *memberLog) deliver(_ queueItem, p, _ *cachedPacket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, p)
	l.seqs = append(l.seqs, p.hdr.SequenceNumber)
}
func (l *memberLog) start(*cachedPacket)              {}
func (l *memberLog) wants(queueItem) bool             { return true }
func (l *memberLog) pad(int, *cachedPacket)           {}
func (l *memberLog) retransmit(uint16, *cachedPacket) {}
func (l *memberLog) upEnded()                         {}

// Every member of a group is handed the one parsed copy: the same
// cachedPacket, not one read of its own.
func TestWriterHandsOneCopyToEveryMember(t *testing.T) {
	up := newTestUpTrack(metrics.New(), &fakeSource{})
	defer up.finish()
	w := newIdleWriter(up)
	members := []*memberLog{{}, {}, {}}
	up.mu.Lock()
	for _, l := range members {
		w.addLocked(l)
	}
	up.mu.Unlock()
	for i := uint16(0); i < 3; i++ {
		raw := vp8Packet(i, 0, true, i == 0, 50)
		up.cache.Store(uint64(i), raw)
		w.writeItem(queueItem{ext: uint64(i)})
	}
	if w.reads != 3 {
		t.Errorf("%d reads for 3 packets", w.reads)
	}
	for i, l := range members {
		if len(l.got) != 3 {
			t.Fatalf("member %d got %d packets", i, len(l.got))
		}
		for j, p := range l.got {
			if p != &w.cur || l.seqs[j] != uint16(j) {
				t.Errorf("member %d packet %d: %p seq %d, want the writer's copy %p seq %d", i, j, p, l.seqs[j], &w.cur, j)
			}
		}
	}
}
