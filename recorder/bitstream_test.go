package recorder

import (
	"encoding/hex"
	"testing"
)

// Frames made with ffmpeg's libvpx from a 64x48 (VP8) and a 66x50 (VP9)
// solid color: a keyframe and the next (inter) frame; VP9 truncated to the
// part the parser reads.
var (
	vp8Key   = mustHex("d003009d012a40003000390500011c240c2c2c442c2440100013ad501fc0103846aa801a6d3fa000fef936cfffaf32faf32faf32ffaf32ffeef37ede6fdbcdfefc80")
	vp8Inter = mustHex("110300e39b380467af104f4fae8f2fde3f801fc06160bfd000222400")
	vp9Key   = mustHex("8249834200041003160038241c184a0000306000007ca9ff")
	vp9Inter = mustHex("860040929c0050000003200000550a00")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestVP8Keyframe(t *testing.T) {
	for _, tc := range []struct {
		name       string
		b          []byte
		key        bool
		width, hgt int
	}{
		{"keyframe", vp8Key, true, 64, 48},
		{"inter", vp8Inter, false, 0, 0},
		{"short", vp8Key[:9], false, 0, 0},
		{"bad start code", append([]byte{0xd0, 0x03, 0x00, 0x9d, 0x01, 0x2b}, vp8Key[6:]...), false, 0, 0},
		{"empty", nil, false, 0, 0},
	} {
		key, w, h := vp8Keyframe(tc.b)
		if key != tc.key || w != tc.width || h != tc.hgt {
			t.Errorf("%s: got key=%v %dx%d, want key=%v %dx%d", tc.name, key, w, h, tc.key, tc.width, tc.hgt)
		}
	}
}

func TestVP9Keyframe(t *testing.T) {
	for _, tc := range []struct {
		name       string
		b          []byte
		key        bool
		width, hgt int
	}{
		{"keyframe", vp9Key, true, 66, 50},
		{"inter", vp9Inter, false, 0, 0},
		{"truncated keyframe", vp9Key[:6], true, 0, 0},
		{"bad sync code", []byte{0x82, 0x49, 0x83, 0x43, 0, 0, 0, 0, 0, 0}, false, 0, 0},
		{"not a frame", []byte{0x42}, false, 0, 0},
		{"empty", nil, false, 0, 0},
	} {
		key, w, h := vp9Keyframe(tc.b)
		if key != tc.key || w != tc.width || h != tc.hgt {
			t.Errorf("%s: got key=%v %dx%d, want key=%v %dx%d", tc.name, key, w, h, tc.key, tc.width, tc.hgt)
		}
	}
}

func FuzzKeyframeParsers(f *testing.F) {
	f.Add(vp8Key)
	f.Add(vp9Key)
	f.Fuzz(func(t *testing.T, b []byte) {
		vp8Keyframe(b) // must not panic
		vp9Keyframe(b)
	})
}
