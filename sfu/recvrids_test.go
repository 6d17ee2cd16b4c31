package sfu

import (
	"os"
	"testing"
)

func TestWithoutRecvRIDs(t *testing.T) {
	const head = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
	for _, tc := range []struct {
		name, in, want string
	}{
		{
			name: "a browser's offer: the very string",
			in:   head + "a=rid:q send\r\na=rid:h send\r\na=simulcast:send q;h\r\n",
			want: head + "a=rid:q send\r\na=rid:h send\r\na=simulcast:send q;h\r\n",
		},
		{
			name: "pion's re-offer: the answer's rids copied as recv go",
			in:   head + "a=rid:q send\r\na=rid:h send\r\na=rid:q recv\r\na=rid:h recv\r\na=simulcast:send q;h recv q;h\r\n",
			want: head + "a=rid:q send\r\na=rid:h send\r\na=simulcast:send q;h\r\n",
		},
		{
			name: "recv first",
			in:   head + "a=rid:q send max-br=1000\r\na=rid:x recv\r\na=simulcast:recv x send q\r\n",
			want: head + "a=rid:q send max-br=1000\r\na=simulcast:send q\r\n",
		},
		{
			name: "only recv: no simulcast line left",
			in:   head + "a=rid:x recv\r\na=simulcast:recv x\r\n",
			want: head,
		},
		{
			name: "a form it does not know stays for pion to judge",
			in:   head + "a=rid:q send\r\na=simulcast:send q recv\r\n",
			want: head + "a=rid:q send\r\na=simulcast:send q recv\r\n",
		},
		{
			name: "LF line ends kept",
			in:   "m=video 9 UDP/TLS/RTP/SAVPF 96\na=rid:q send\na=rid:q recv\na=simulcast:send q recv q\n",
			want: "m=video 9 UDP/TLS/RTP/SAVPF 96\na=rid:q send\na=simulcast:send q\n",
		},
	} {
		if got := withoutRecvRIDs(tc.in); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// RTX is dropped only where a pion publisher puts it: a simulcast section
// that declares its RTX streams (FID groups). Chrome's simulcast section
// declares none (its RTX carries rrid) and keeps RTX.
func TestMidsWithFID(t *testing.T) {
	chrome, err := os.ReadFile("testdata/chrome-publisher.sdp")
	if err != nil {
		t.Fatal(err)
	}
	got := midsWithFID(string(chrome))
	if got["1"] || !got["3"] {
		t.Errorf("Chrome's offer: FID in %v, want mid 3 only (mid 1 is its simulcast section)", got)
	}
	if rids := SimulcastRIDs(string(chrome)); len(rids["1"]) != 3 {
		t.Fatalf("Chrome's simulcast section: rids %v", rids)
	}
	const pionLike = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:0\r\n" +
		"a=ssrc-group:FID 1 2\r\na=ssrc:1 cname:x\r\na=ssrc:2 cname:x\r\na=rid:q send\r\na=simulcast:send q\r\n"
	if got := midsWithFID(pionLike); !got["0"] {
		t.Errorf("a pion-like offer: FID in %v, want mid 0", got)
	}
}
