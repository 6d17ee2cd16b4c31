package bench

import (
	"testing"
	"time"
)

// frame returns the packets of one frame: n packets from seq first, all of
// timestamp ts.
func frame(ts uint32, first uint16, n int, key bool) []packetInfo {
	var ps []packetInfo
	for i := 0; i < n; i++ {
		ps = append(ps, packetInfo{seq: first + uint16(i), ts: ts, start: i == 0, key: key && i == 0, marker: i == n-1})
	}
	return ps
}

// cat joins packet lists.
func cat(lists ...[]packetInfo) []packetInfo {
	var out []packetInfo
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// without removes the packets of the given sequence numbers.
func without(ps []packetInfo, seqs ...uint16) []packetInfo {
	var out []packetInfo
next:
	for _, p := range ps {
		for _, s := range seqs {
			if p.seq == s {
				continue next
			}
		}
		out = append(out, p)
	}
	return out
}

// only returns the packets of the given sequence numbers, in that order.
func only(ps []packetInfo, seqs ...uint16) []packetInfo {
	var out []packetInfo
	for _, s := range seqs {
		for _, p := range ps {
			if p.seq == s {
				out = append(out, p)
			}
		}
	}
	return out
}

func TestFrameTracker(t *testing.T) {
	k1 := frame(1000, 100, 4, true)  // seq 100-103
	d1 := frame(4000, 104, 2, false) // 104-105
	d2 := frame(7000, 106, 2, false) // 106-107
	d3 := frame(10000, 108, 2, false)
	k2 := frame(13000, 110, 4, true) // 110-113
	d4 := frame(16000, 114, 2, false)
	all := cat(k1, d1, d2, d3, k2, d4)

	tests := []struct {
		name    string
		packets []packetInfo
		// shows[i] is what onPacket returns for packets[i]; only the
		// non-zero entries are given, by index
		shows map[int]int
		total int
	}{
		{name: "in order: each frame at its last packet",
			packets: all, shows: map[int]int{3: 1, 5: 1, 7: 1, 9: 1, 13: 1, 15: 1}, total: 6},
		{name: "a delta frame waits for the frame before it, then both show",
			// d1's second packet (105) comes last, as a retransmission
			packets: cat(k1, only(d1, 104), d2, only(d1, 105)),
			shows:   map[int]int{3: 1, 7: 2}, total: 3},
		{name: "a lost packet stops the picture until the next keyframe",
			packets: without(all, 105), shows: map[int]int{3: 1, 12: 1, 14: 1}, total: 3},
		{name: "a frame whose first packet is lost is never complete",
			packets: without(all, 104), shows: map[int]int{3: 1, 12: 1, 14: 1}, total: 3},
		{name: "a frame whose marker packet is lost is never complete, even when the next frame starts right after",
			packets: without(all, 103), shows: map[int]int{12: 1, 14: 1}, total: 2},
		{name: "a frame cut short by the server (gap hidden, no marker) then a keyframe",
			packets: cat(k1, frame(4000, 104, 3, false)[:2], frame(13000, 106, 4, true), frame(16000, 110, 2, false)),
			shows:   map[int]int{3: 1, 9: 1, 11: 1}, total: 3},
		{name: "nothing shows before the first keyframe",
			packets: cat(d1, d2, k2, d4), shows: map[int]int{7: 1, 9: 1}, total: 2},
		{name: "a keyframe older than what was shown is skipped",
			packets: cat(d1, d2, k2, d4, k1), shows: map[int]int{7: 1, 9: 1}, total: 2},
		{name: "duplicates and late copies change nothing",
			packets: cat(k1, k1, d1, only(d1, 105), d2), shows: map[int]int{3: 1, 9: 1, 12: 1}, total: 3},
		{name: "across the sequence number wrap",
			packets: cat(frame(1, 65534, 3, true), frame(2, 1, 2, false), frame(3, 3, 2, false)),
			shows:   map[int]int{2: 1, 4: 1, 6: 1}, total: 3},
		{name: "a frame arriving after many lost frames is matched by timestamp, not confused with an older one",
			packets: cat(k1, without(frame(4000, 104, 2, false), 104), frame(13000, 106, 2, true)),
			shows:   map[int]int{3: 1, 6: 1}, total: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFrameTracker()
			total := 0
			for i, p := range tt.packets {
				got := f.onPacket(p)
				if got != tt.shows[i] {
					t.Errorf("packet %d (seq %d ts %d): %d frames shown, want %d", i, p.seq, p.ts, got, tt.shows[i])
				}
				total += got
			}
			if total != tt.total || f.shown != uint64(tt.total) {
				t.Errorf("shown %d (counter %d), want %d", total, f.shown, tt.total)
			}
		})
	}
}

// TestFrameTrackerRing: more frames than the ring holds in flight, in
// order, all show; a frame pushed out of the ring before it completes is
// lost, and the stream resumes at the next keyframe.
func TestFrameTrackerRing(t *testing.T) {
	f := newFrameTracker()
	seq := uint16(60000)
	shown := 0
	for i := 0; i < 3*frameRing; i++ {
		for _, p := range frame(uint32(i*3000), seq, 3, i == 0) {
			shown += f.onPacket(p)
		}
		seq += 3
	}
	if shown != 3*frameRing {
		t.Fatalf("in order: %d frames shown, want %d", shown, 3*frameRing)
	}

	f = newFrameTracker()
	shown = 0
	for _, p := range frame(1, 10, 2, true) {
		shown += f.onPacket(p)
	}
	late := frame(2, 12, 2, false)
	shown += f.onPacket(late[0]) // its second packet comes too late
	for i := 0; i < frameRing; i++ {
		for _, p := range frame(uint32(100+i), uint16(14+2*i), 2, false) {
			shown += f.onPacket(p)
		}
	}
	shown += f.onPacket(late[1])
	if shown != 1 {
		t.Errorf("after a frame left the ring incomplete: %d frames shown, want only the keyframe", shown)
	}
	for _, p := range frame(5000, uint16(14+2*frameRing), 2, true) {
		shown += f.onPacket(p)
	}
	if shown != 2 {
		t.Errorf("the next keyframe: %d frames shown in all, want 2", shown)
	}
}

func TestKeyframePolicy(t *testing.T) {
	ms := func(v int) int64 { return int64(v) * int64(time.Millisecond) }
	type ev struct {
		at    int    // ms
		ts    uint32 // RTP timestamp
		key   bool   // the packet starts a keyframe
		shown int
		want  bool // a request is sent
	}
	tests := []struct {
		name   string
		events []ev
	}{
		{"a stream that decodes never asks", []ev{
			{at: 1000, ts: 1, key: true, shown: 1}, {at: 1033, ts: 2, shown: 1}, {at: 2500, ts: 3, shown: 1},
			{at: 5400, ts: 4, shown: 1}, {at: 8300, ts: 5, shown: 1},
		}},
		{"no first frame: every 200 ms", []ev{
			{at: 1000, ts: 1}, {at: 1150, ts: 2}, {at: 1200, ts: 3, want: true}, {at: 1300, ts: 4},
			{at: 1400, ts: 5, want: true}, {at: 1650, ts: 6, want: true},
		}},
		{"not while the packets of a keyframe arrive", []ev{
			{at: 1000, ts: 7, key: true}, {at: 1150, ts: 7}, {at: 1210, ts: 7}, {at: 1250, ts: 7},
			{at: 1420, ts: 7}, {at: 1500, ts: 8}, {at: 1630, ts: 9, want: true},
		}},
		{"stalled after frames: 3 s after the last shown frame, then every 3 s", []ev{
			{at: 1000, ts: 1, key: true, shown: 1}, {at: 2000, ts: 2}, {at: 3999, ts: 3}, {at: 4000, ts: 4, want: true},
			{at: 6000, ts: 5}, {at: 7000, ts: 6, want: true},
		}},
		{"a shown frame restarts the wait", []ev{
			{at: 1000, ts: 1, key: true, shown: 1}, {at: 3000, ts: 2, shown: 1}, {at: 5500, ts: 3}, {at: 6000, ts: 4, want: true},
		}},
		{"the timeout fires while a keyframe arrives: no request, and the wait restarts", []ev{
			{at: 1000, ts: 1, key: true, shown: 1}, {at: 3900, ts: 2, key: true}, {at: 4000, ts: 2},
			{at: 6900, ts: 3}, {at: 7000, ts: 4, want: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k keyframePolicy
			for _, e := range tt.events {
				if got := k.onPacket(ms(e.at), e.ts, e.key, e.shown); got != e.want {
					t.Errorf("at %d ms: request %v, want %v", e.at, got, e.want)
				}
			}
		})
	}
	// An inactive stream (no packet for 5 s) is not asked.
	var k keyframePolicy
	k.onPacket(ms(1000), 1, true, 1)
	if k.due(ms(7000)) {
		t.Error("request after 6 s without a packet")
	}
}

func TestFreezeOverlap(t *testing.T) {
	s := int64(time.Second)
	ms := int64(time.Millisecond)
	ws, we := 10*s, 20*s
	tests := []struct {
		name       string
		prev, next int64
		want       int64
	}{
		{"short gap inside", 12 * s, 12*s + 33*ms, 0},
		{"exactly the threshold is not a freeze", 12 * s, 12*s + 500*ms, 0},
		{"long gap inside counts whole", 12 * s, 12*s + 501*ms, 501 * ms},
		{"long gap across the start: the part inside", 9 * s, 11 * s, 1 * s},
		{"long gap across the end: the part inside", 19 * s, 22 * s, 1 * s},
		{"long gap around the window", 5 * s, 25 * s, 10 * s},
		{"long gap before the window", 5 * s, 8 * s, 0},
		{"no frame before: from the window start", 0, 13 * s, 3 * s},
		{"no frame before, first frame before the window", 0, 9 * s, 0},
	}
	for _, tt := range tests {
		if got := freezeOverlap(tt.prev, tt.next, ws, we); got != tt.want {
			t.Errorf("%s: freezeOverlap(%v, %v) = %v, want %v", tt.name, tt.prev, tt.next, time.Duration(got), time.Duration(tt.want))
		}
	}
}

func TestSeqUnwrapper(t *testing.T) {
	var u seqUnwrapper
	in := []uint16{65530, 65535, 2, 65534, 5, 40000, 7000}
	var got []int64
	for _, s := range in {
		got = append(got, u.unwrap(s))
	}
	base := int64(65530) + 1<<16
	// 40000 is read as 25541 packets before 5 (a late packet), not as one
	// 39995 after it; the highest stays base+11
	want := []int64{base, base + 5, base + 8, base + 4, base + 11, base + 11 - 25541, base + 11 + 6995}
	for i := range in {
		if got[i] != want[i] {
			t.Errorf("unwrap #%d (%d) = %d, want %d", i, in[i], got[i], want[i])
		}
	}
}

// Padding-only packets between two frames (a server probing the downlink)
// do not break the chain of delta frames, whenever they arrive.
func TestFrameTrackerPadding(t *testing.T) {
	f := newFrameTracker()
	if n := f.onPacket(packetInfo{seq: 10, ts: 1, start: true, key: true, marker: true}); n != 1 {
		t.Fatalf("keyframe: %d shown", n)
	}
	f.onPacket(packetInfo{seq: 11, ts: 1, padding: true})
	f.onPacket(packetInfo{seq: 12, ts: 1, padding: true})
	if n := f.onPacket(packetInfo{seq: 13, ts: 2, start: true, marker: true}); n != 1 {
		t.Fatalf("the delta frame after padding: %d shown", n)
	}
	// The padding after the next frame arrives after the frame that
	// follows it: that frame is shown when the padding comes.
	if n := f.onPacket(packetInfo{seq: 15, ts: 3, start: true, marker: true}); n != 0 {
		t.Fatalf("a frame after a gap: %d shown", n)
	}
	if n := f.onPacket(packetInfo{seq: 14, ts: 2, padding: true}); n != 1 {
		t.Fatalf("the padding closing the gap: %d shown", n)
	}
}
