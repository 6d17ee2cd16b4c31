package sfu

// Tests of codec.KeyframeStart (internal/codec) live here, beside the
// real media seeds (rtpseeds_fuzz_test.go) and the ingest fuzz targets
// that share their table.

import (
	"testing"

	"github.com/relaysfu/relayd/internal/codec"
)

// VP8 payload header bytes (RFC 7741 section 4.3, |Size0|H|VER|P|): a key
// frame as sent by libvpx (P=0), and an inter frame (P=1).
const (
	vp8Key   = 0x50
	vp8Inter = 0x31
)

var keyframeTests = []struct {
	name string
	mime string
	data []byte
	want bool
}{
	// VP8. Bytes before the payload header are odd where possible, so a
	// descriptor parsed one byte short would read P=1 and fail the test.
	{"vp8 key, no extension", "video/VP8", []byte{0x10, vp8Key, 0x02, 0x00, 0x9d, 0x01, 0x2a}, true},
	{"vp8 inter, no extension", "video/VP8", []byte{0x10, vp8Inter, 0x02, 0x00}, false},
	{"vp8 key, 7-bit picture id", "video/VP8", []byte{0x90, 0x80, 0x05, vp8Key, 0x02}, true},
	{"vp8 key, 15-bit picture id", "video/VP8", []byte{0x90, 0x80, 0x81, 0x23, vp8Key, 0x02}, true},
	{"vp8 inter, 15-bit picture id", "video/VP8", []byte{0x90, 0x80, 0x81, 0x22, vp8Inter}, false},
	{"vp8 key, TL0PICIDX only", "video/VP8", []byte{0x90, 0x40, 0x03, vp8Key}, true},
	{"vp8 key, T only", "video/VP8", []byte{0x90, 0x20, 0x41, vp8Key}, true},
	{"vp8 key, all extensions", "video/VP8", []byte{0x90, 0xf0, 0x81, 0x01, 0x07, 0x41, vp8Key, 0x02}, true},
	{"vp8 inter, all extensions", "video/VP8", []byte{0x90, 0xf0, 0x81, 0x00, 0x06, 0x40, vp8Inter, 0x02}, false},
	{"vp8 continuation S=0", "video/VP8", []byte{0x00, vp8Key, 0x02}, false},
	{"vp8 continuation S=0, extensions", "video/VP8", []byte{0x80, 0x80, 0x05, vp8Key}, false},
	{"vp8 start of partition 1", "video/VP8", []byte{0x11, vp8Key}, false},
	{"vp8 N bit set, key", "video/VP8", []byte{0x30, vp8Key}, true},
	{"vp8 descriptor only", "video/VP8", []byte{0x10}, false},
	{"vp8 truncated extension", "video/VP8", []byte{0x90}, false},
	{"vp8 truncated picture id", "video/VP8", []byte{0x90, 0x80}, false},
	{"vp8 truncated 15-bit picture id", "video/VP8", []byte{0x90, 0x80, 0x81}, false},
	{"vp8 truncated after extensions", "video/VP8", []byte{0x90, 0xf0, 0x81, 0x00, 0x06, 0x40}, false},
	{"vp8 empty", "video/VP8", nil, false},

	// VP9
	{"vp9 key, non-flexible with SS", "video/VP9", []byte{0x8b, 0x80, 0x01, 0x18, 0x02, 0x80, 0x01, 0x68, 0x01, 0x14, 0x01}, true},
	{"vp9 non-key", "video/VP9", []byte{0xcd, 0x80, 0x02, 0x00}, false},
	{"vp9 key, middle packet B=0", "video/VP9", []byte{0x85, 0x80, 0x01, 0x00}, false},
	{"vp9 key, flexible", "video/VP9", []byte{0x98, 0x81, 0x00, 0x00}, true},
	{"vp9 key, no picture id", "video/VP9", []byte{0x08, 0x00}, true},
	// With L set, the layer byte follows a 15-bit picture id whose second
	// byte (0x02) would read as SID=1 if the id were taken as 7-bit.
	{"vp9 key, L, SID=0, 15-bit picture id", "video/VP9", []byte{0xa8, 0x81, 0x02, 0x00, 0x00}, true},
	{"vp9 key, L, SID=1", "video/VP9", []byte{0xa8, 0x81, 0x00, 0x02, 0x00}, false},
	{"vp9 key, L, SID=2, 7-bit picture id", "video/VP9", []byte{0xa8, 0x05, 0x04, 0x00}, false},
	{"vp9 key, L, TID=2 U D, SID=0", "video/VP9", []byte{0xa8, 0x05, 0x51, 0x00}, true},
	{"vp9 key, L, no picture id", "video/VP9", []byte{0x28, 0x00, 0x00}, true},
	{"vp9 key, L, no picture id, SID=1", "video/VP9", []byte{0x28, 0x02, 0x00}, false},
	{"vp9 truncated picture id", "video/VP9", []byte{0xa8}, false},
	{"vp9 truncated 15-bit picture id", "video/VP9", []byte{0xa8, 0x81}, false},
	{"vp9 truncated layer byte", "video/VP9", []byte{0xa8, 0x81, 0x02}, false},
	{"vp9 empty", "video/VP9", []byte{}, false},

	// H.264
	{"h264 SPS", "video/H264", []byte{0x67, 0x42, 0xc0, 0x1f}, true},
	{"h264 IDR slice", "video/H264", []byte{0x65, 0x88, 0x84, 0x00}, true},
	{"h264 PPS", "video/H264", []byte{0x68, 0xce, 0x3c, 0x80}, false},
	{"h264 P slice type 1", "video/H264", []byte{0x41, 0x9a, 0x02}, false},
	{"h264 STAP-A SPS+PPS+IDR", "video/H264", []byte{
		0x78,
		0x00, 0x04, 0x67, 0x42, 0xc0, 0x1f,
		0x00, 0x04, 0x68, 0xce, 0x3c, 0x80,
		0x00, 0x03, 0x65, 0x88, 0x84,
	}, true},
	{"h264 STAP-A PPS+IDR", "video/H264", []byte{
		0x78,
		0x00, 0x04, 0x68, 0xce, 0x3c, 0x80,
		0x00, 0x03, 0x65, 0x88, 0x84,
	}, true},
	{"h264 STAP-A SEI+P slice", "video/H264", []byte{
		0x78,
		0x00, 0x02, 0x06, 0x05,
		0x00, 0x02, 0x41, 0x9a,
	}, false},
	// The IDR byte sits where a size is expected: only a correct walk skips it.
	{"h264 STAP-A IDR byte inside a NALU", "video/H264", []byte{
		0x78,
		0x00, 0x03, 0x06, 0x65, 0x65,
		0x00, 0x02, 0x41, 0x65,
	}, false},
	{"h264 STAP-A truncated NALU", "video/H264", []byte{0x78, 0x00, 0x10, 0x67, 0x42}, false},
	{"h264 STAP-A zero size", "video/H264", []byte{0x78, 0x00, 0x00, 0x67}, false},
	{"h264 STAP-A half a size", "video/H264", []byte{0x78, 0x00}, false},
	{"h264 STAP-A header only", "video/H264", []byte{0x78}, false},
	{"h264 STAP-A trailing byte", "video/H264", []byte{0x78, 0x00, 0x02, 0x41, 0x9a, 0x00}, false},
	{"h264 FU-A start IDR", "video/H264", []byte{0x7c, 0x85, 0xb8, 0x00}, true},
	{"h264 FU-A start SPS", "video/H264", []byte{0x7c, 0x87, 0x42}, true},
	{"h264 FU-A middle IDR", "video/H264", []byte{0x7c, 0x05, 0x12}, false},
	{"h264 FU-A end IDR", "video/H264", []byte{0x7c, 0x45, 0x12}, false},
	{"h264 FU-A start P slice", "video/H264", []byte{0x5c, 0x81, 0x9a}, false},
	{"h264 FU-A header only", "video/H264", []byte{0x7c}, false},
	{"h264 STAP-B", "video/H264", []byte{0x79, 0x00, 0x01, 0x00, 0x02, 0x65, 0x88}, false},
	{"h264 type 0", "video/H264", []byte{0x00, 0x65}, false},
	{"h264 empty", "video/H264", nil, false},

	// AV1 aggregation header |Z|Y|W(2)|N|-|-|-|
	{"av1 new coded video sequence", "video/AV1", []byte{0x18, 0x0a, 0x0b}, true},
	{"av1 N=1, Y=1", "video/AV1", []byte{0x58, 0x0a}, true},
	{"av1 N=0", "video/AV1", []byte{0x10, 0x32}, false},
	{"av1 continuation Z=1", "video/AV1", []byte{0x80, 0x32}, false},
	{"av1 Z=1 and N=1", "video/AV1", []byte{0x98, 0x32}, false},
	{"av1 empty", "video/AV1", nil, false},

	// MIME types
	{"lower-case mime", "video/vp8", []byte{0x10, vp8Key}, true},
	{"upper-case mime", "VIDEO/H264", []byte{0x65, 0x88}, true},
	{"audio", "audio/opus", []byte{0x10, vp8Key}, false},
	{"H265 unsupported", "video/H265", []byte{0x26, 0x01}, false},
	{"empty mime", "", []byte{0x65}, false},
	{"codec without type", "VP8", []byte{0x10, vp8Key}, false},
}

func TestKeyframeStart(t *testing.T) {
	for _, tt := range keyframeTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := codec.KeyframeStart(tt.mime, tt.data); got != tt.want {
				t.Errorf("codec.KeyframeStart(%q, % x) = %v, want %v", tt.mime, tt.data, got, tt.want)
			}
		})
	}
}

// asciiUpper upper-cases ASCII letters only: strings.ToUpper would also map
// letters such as the dotless ı to I, which EqualFold rightly does not match.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzKeyframeStart checks that no input panics, and that the case of the
// MIME type's ASCII letters never matters. The seeds run in every go test;
// fuzz with: go test -run '^$' -fuzz FuzzKeyframeStart -fuzztime 20s ./sfu/
func FuzzKeyframeStart(f *testing.F) {
	for _, tt := range keyframeTests {
		f.Add(tt.mime, tt.data)
	}
	f.Fuzz(func(t *testing.T, mime string, data []byte) {
		got := codec.KeyframeStart(mime, data)
		if upper := codec.KeyframeStart(asciiUpper(mime), data); upper != got {
			t.Errorf("codec.KeyframeStart(%q) = %v but %v for the upper-case type", mime, got, upper)
		}
	})
}
