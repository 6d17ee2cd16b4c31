package sfu

import (
	"fmt"
	"testing"
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
