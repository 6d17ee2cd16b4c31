package sfu

import (
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaysfu/relayd/metrics"
)

func TestSameDTLS(t *testing.T) {
	const a = "v=0\r\na=fingerprint:sha-256 AA:BB\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB\r\n"
	const b = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 CC:DD\r\n"
	const lower = "v=0\r\na=fingerprint:SHA-256 aa:bb\r\n"
	for _, tc := range []struct {
		prev, offer string
		want        bool
	}{
		{a, a, true},
		{a, b, false},        // a reloaded page: another certificate
		{a, lower, true},     // case does not matter
		{"v=0\r\n", b, true}, // no fingerprint to compare
		{a, "", true},
	} {
		if got := SameDTLS(tc.prev, tc.offer); got != tc.want {
			t.Errorf("SameDTLS(%q, %q) = %v", tc.prev, tc.offer, got)
		}
	}
}

func TestMatchMids(t *testing.T) {
	m := func(kind, mid, dir string) string {
		return "m=" + kind + " 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:" + mid + "\r\na=" + dir + "\r\n"
	}
	const head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
	old := head + m("audio", "0", "sendonly") + m("video", "1", "sendonly") + m("video", "2", "sendonly")
	for _, tc := range []struct {
		name, offer string
		want        map[string]string
	}{
		{"same order", head + m("audio", "0", "sendonly") + m("video", "1", "sendonly") + m("video", "2", "sendonly"),
			map[string]string{"0": "0", "1": "1", "2": "2"}},
		{"video first, other mids", head + m("video", "a", "sendonly") + m("audio", "b", "sendonly") + m("video", "c", "sendonly"),
			map[string]string{"a": "1", "b": "0", "c": "2"}},
		{"a recvonly m-line takes nothing", head + m("video", "x", "recvonly") + m("video", "y", "sendrecv"),
			map[string]string{"y": "1"}},
		{"more than before", head + m("audio", "0", "sendonly") + m("audio", "1", "sendonly"),
			map[string]string{"0": "0"}},
		{"garbage", "not sdp", map[string]string{}},
	} {
		if got := MatchMids(old, tc.offer); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRebaseShift(t *testing.T) {
	for _, tc := range []struct {
		newest uint64
		seq    uint16
	}{{1<<16 + 100, 5}, {1<<16 + 100, 65000}, {5 << 20, 0}, {1 << 16, 40000}} {
		var u SeqUnwrapper
		shift := rebaseShift(tc.newest, tc.seq)
		if got := u.Unwrap(tc.seq) + shift; got != tc.newest+1 {
			t.Errorf("newest %d, seq %d: first ext %d, want %d", tc.newest, tc.seq, got, tc.newest+1)
		}
		// The next packets follow, across a wrap.
		if got := u.Unwrap(tc.seq+1) + shift; got != tc.newest+2 {
			t.Errorf("newest %d, seq %d: second ext %d", tc.newest, tc.seq, got)
		}
	}
}

// chanSource is a Source fed by a channel; closing it ends the source.
type chanSource struct {
	ch        chan []byte
	keyframes atomic.Int32
}

func newChanSource() *chanSource { return &chanSource{ch: make(chan []byte, 16)} }

func (s *chanSource) ReadRTP(buf []byte) (int, error) {
	b, ok := <-s.ch
	if !ok {
		return 0, io.EOF
	}
	return copy(buf, b), nil
}

func (s *chanSource) RequestKeyframe() error { s.keyframes.Add(1); return nil }

// A kept track whose source ends waits for a new one: its down track
// goes on from the new source's keyframe with its sequence numbers
// continuing and its timestamps advancing by the time between (not by
// the new source's base); the new source's packets before its keyframe
// are dropped, and it is asked for one. Ended keeping: the track ends
// with its source.
func TestReplaceSourceContinues(t *testing.T) {
	m := metrics.New()
	a := newChanSource()
	up := newTestUpTrack(m, a)
	up.KeepOnSourceEnd(true)
	w := &fakeWriter{keep: true}
	newBoundDownTrack(t, m, up, w, 0x1234)
	go up.Run()

	a.ch <- vp8Packet(100, 1000, true, true, 20)
	a.ch <- vp8Packet(101, 4000, true, false, 20)
	waitFor(t, "the old source's packets", func() bool { return len(w.packets()) == 2 })
	close(a.ch)
	select {
	case <-up.Done():
		t.Fatal("a kept track ended with its source")
	case <-time.After(50 * time.Millisecond):
	}

	b := newChanSource()
	if _, run, ok := up.ReplaceSource("", b); !ok || run {
		t.Fatalf("ReplaceSource: run %v ok %v", run, ok)
	}
	waitFor(t, "a keyframe request to the new source", func() bool { return b.keyframes.Load() > 0 })
	b.ch <- vp8Packet(5000, 777_000, true, false, 20) // before its keyframe: dropped
	b.ch <- vp8Packet(5001, 900_000, true, true, 20)
	b.ch <- vp8Packet(5002, 903_000, true, false, 20)
	waitFor(t, "the new source's packets", func() bool { return len(w.packets()) == 4 })
	pk := w.packets()
	for i := 1; i < len(pk); i++ {
		if pk[i].SSRC != 0x1234 || pk[i].SequenceNumber != pk[0].SequenceNumber+uint16(i) {
			t.Errorf("packet %d: ssrc %x seq %d (first %d)", i, pk[i].SSRC, pk[i].SequenceNumber, pk[0].SequenceNumber)
		}
	}
	if d := pk[2].Timestamp - pk[1].Timestamp; d == 0 || d > 90_000 {
		t.Errorf("the timestamp stepped by %d across the new source (50 ms later)", d)
	}
	if d := pk[3].Timestamp - pk[2].Timestamp; d != 3000 {
		t.Errorf("the new source's own timestamp step: %d, want 3000", d)
	}

	up.EndOnSourceEnd()
	close(b.ch)
	select {
	case <-up.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the track did not end with its source once no longer kept")
	}
}

// Without keeping, a track ends with its source (v1's behaviour), and
// ReplaceSource on an ended track is refused.
func TestSourceEndEndsTrack(t *testing.T) {
	m := metrics.New()
	a := newChanSource()
	up := newTestUpTrack(m, a)
	go up.Run()
	close(a.ch)
	select {
	case <-up.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the track did not end with its source")
	}
	if _, _, ok := up.ReplaceSource("", newChanSource()); ok {
		t.Error("ReplaceSource on an ended track")
	}
}
