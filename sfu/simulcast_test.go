package sfu

import (
	"reflect"
	"testing"

	"github.com/relaysfu/relayd/internal/codec"
)

func TestSimulcastRIDs(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
	video := func(attrs string) string {
		return head + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n" + attrs
	}
	for _, tc := range []struct {
		name string
		sdp  string
		want map[string][]RIDInfo
	}{
		{"none", video(""), map[string][]RIDInfo{}},
		{"simulcast order", video("a=rid:f send\r\na=rid:h send\r\na=rid:q send max-br=150000\r\na=simulcast:send q;h;f\r\n"),
			map[string][]RIDInfo{"0": {{RID: "q", MaxBitrate: 150000}, {RID: "h"}, {RID: "f"}}}},
		{"rid order without simulcast", video("a=rid:a send\r\na=rid:b send max-width=640;max-br=500000\r\n"),
			map[string][]RIDInfo{"0": {{RID: "a"}, {RID: "b", MaxBitrate: 500000}}}},
		{"paused and alternatives", video("a=rid:q send\r\na=rid:h send\r\na=simulcast:send ~q;h,x\r\n"),
			map[string][]RIDInfo{"0": {{RID: "q", Paused: true}, {RID: "h"}}}},
		{"recv rids are not ours", video("a=rid:q recv\r\n"), map[string][]RIDInfo{}},
		{"at most 3", video("a=rid:a send\r\na=rid:b send\r\na=rid:c send\r\na=rid:d send\r\n"),
			map[string][]RIDInfo{"0": {{RID: "a"}, {RID: "b"}, {RID: "c"}}}},
		{"bad max-br", video("a=rid:a send max-br=x\r\n"), map[string][]RIDInfo{"0": {{RID: "a"}}}},
	} {
		if got := SimulcastRIDs(tc.sdp); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if got := SimulcastRIDs("garbage"); got != nil {
		t.Errorf("garbage: %+v", got)
	}
}

func TestRankSlots(t *testing.T) {
	for _, tc := range []struct {
		sizes []int
		want  []int
	}{
		{[]int{0, 0, 0}, []int{0, 1, 2}},
		{[]int{100, 0, 50}, []int{0, 1, 2}}, // one unknown: simulcast order
		{[]int{300, 200, 100}, []int{2, 1, 0}},
		{[]int{200, 100}, []int{1, 0}},
		{[]int{5}, []int{0}},
	} {
		if got := rankSlots(tc.sizes); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("rankSlots(%v) = %v, want %v", tc.sizes, got, tc.want)
		}
	}
	if q := layerQualities(2); !reflect.DeepEqual(q, []string{QualityLow, QualityHigh}) {
		t.Errorf("two layers: %v", q)
	}
	if q := layerQualities(1); !reflect.DeepEqual(q, []string{QualityHigh}) {
		t.Errorf("one layer: %v", q)
	}
}

func TestKeyframeSize(t *testing.T) {
	// A 1280x720 H.264 SPS (Chrome's constrained baseline, level 3.1) and
	// a 640x360 one with cropping (360 = 23 macroblocks - 8 lines), as
	// single NAL units and in a STAP-A.
	sps720 := []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0f, 0x03, 0xc6, 0x0c, 0xa8}
	sps360 := []byte{0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x58, 0xba, 0x80}
	stap := append([]byte{0x78, 0x00, byte(len(sps360))}, sps360...)
	stap = append(stap, 0x00, 0x02, 0x68, 0xce)
	for _, tc := range []struct {
		name    string
		mime    string
		payload []byte
		w, h    int
		ok      bool
	}{
		{"vp8", "video/VP8", vp8Frame(1, true, 40), 640, 360, true},
		{"vp8 with extension bytes", "video/VP8", append([]byte{0x90, 0x80, 0x05}, vp8Frame(0, true, 40)[1:]...), 320, 180, true},
		{"vp8 inter frame", "video/VP8", vp8Frame(1, false, 40), 0, 0, false},
		{"vp8 truncated", "video/VP8", vp8Frame(2, true, 40)[:6], 0, 0, false},
		{"h264 sps 720p", "video/H264", sps720, 1280, 720, true},
		{"h264 stap-a 360p", "video/H264", stap, 640, 360, true},
		{"h264 idr slice", "video/H264", []byte{0x65, 0x88, 0x84}, 0, 0, false},
		{"h264 truncated sps", "video/H264", sps720[:6], 0, 0, false},
		{"opus", "audio/opus", []byte{1, 2, 3}, 0, 0, false},
	} {
		w, h, ok := codec.KeyframeSize(tc.mime, tc.payload)
		if w != tc.w || h != tc.h || ok != tc.ok {
			t.Errorf("%s: %dx%d %v, want %dx%d %v", tc.name, w, h, ok, tc.w, tc.h, tc.ok)
		}
	}
}

func FuzzKeyframeSize(f *testing.F) {
	f.Add([]byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec})
	f.Add(vp8Frame(2, true, 30))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []string{"video/VP8", "video/H264"} {
			if w, h, ok := codec.KeyframeSize(m, b); ok && (w <= 0 || h <= 0) {
				t.Fatalf("%s: %dx%d ok", m, w, h)
			}
		}
	})
}
