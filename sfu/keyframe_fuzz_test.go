package sfu

import (
	"strings"
	"testing"

	"github.com/relaysfu/relayd/internal/codec"
)

// fuzzMimes are the MIME types the keyframe and ingest targets pick from
// with their first byte: every video codec we detect keyframes of, in the
// spellings SDP gives them, and audio (never a keyframe).
var fuzzMimes = []string{"video/VP8", "video/VP9", "video/H264", "video/AV1", "audio/opus", "video/vp8", "VIDEO/h264", "video/H265"}

// mimeIndex returns the index of mime in fuzzMimes (of the same type in
// another case when mime is not there; of H.265, which we detect no
// keyframes of, for any other type).
func mimeIndex(mime string) uint8 {
	for i, m := range fuzzMimes {
		if m == mime {
			return uint8(i)
		}
	}
	for i, m := range fuzzMimes {
		if strings.EqualFold(m, mime) {
			return uint8(i)
		}
	}
	return uint8(len(fuzzMimes) - 1)
}

// FuzzKeyframeCodecs: KeyframeStart never panics, and a keyframe start is
// never reported for a payload shorter than its codec's headers or without
// the bits that mark one; appending bytes never turns a start into a
// non-start (the answer depends only on the headers, which are all there).
// FuzzKeyframeStart (keyframe_test.go) fuzzes the MIME type; this one the
// payload of each codec, seeded with real media.
func FuzzKeyframeCodecs(f *testing.F) {
	for _, p := range realPackets {
		f.Add(mimeIndex(p.mime), p.payloadBytes())
	}
	for _, tc := range keyframeTests {
		f.Add(mimeIndex(tc.mime), tc.data)
	}
	f.Fuzz(func(t *testing.T, codecPick uint8, payload []byte) {
		mime := fuzzMimes[int(codecPick)%len(fuzzMimes)]
		key := codec.KeyframeStart(mime, payload)
		if key != codec.KeyframeStart(asciiUpper(mime), payload) {
			t.Fatalf("%s: the answer depends on the MIME type's case", mime)
		}
		if !key {
			return
		}
		if why := notAKeyframeStart(strings.ToLower(mime), payload); why != "" {
			t.Fatalf("%s keyframe start reported for %x: %s", mime, payload, why)
		}
		longer := append(append([]byte(nil), payload...), 0xff, 0x00, 0x5a)
		if !codec.KeyframeStart(mime, longer) {
			t.Fatalf("%s: %x is a keyframe start, the same with bytes appended is not", mime, payload)
		}
	})
}

// notAKeyframeStart returns why payload cannot be the first packet of a
// keyframe of codec (lower case), judged from the fixed parts of each
// payload format only; "" when nothing rules it out.
func notAKeyframeStart(mime string, p []byte) string {
	switch mime {
	case "video/vp8":
		// RFC 7741: the descriptor, then the payload header.
		need := 2
		if len(p) > 0 && p[0]&0x80 != 0 {
			need++ // X: the extension byte
		}
		switch {
		case len(p) < need:
			return "shorter than descriptor and payload header"
		case p[0]&0x10 == 0:
			return "S is not set"
		case p[0]&0x07 != 0:
			return "not partition 0"
		}
	case "video/vp9":
		switch {
		case len(p) < 1:
			return "empty"
		case p[0]&0x08 == 0:
			return "B is not set"
		case p[0]&0x40 != 0:
			return "P is set"
		case p[0]&0x20 != 0 && len(p) < 2:
			return "L is set but the layer byte is missing"
		}
	case "video/h264":
		if len(p) < 1 {
			return "empty"
		}
		switch typ := p[0] & 0x1f; typ {
		case 5, 7:
		case 24: // STAP-A: header, a 16-bit size, a NAL header at least
			if len(p) < 4 {
				return "STAP-A shorter than one NAL unit"
			}
		case 28: // FU-A: indicator, FU header
			if len(p) < 2 {
				return "FU-A without its FU header"
			}
			if p[1]&0x80 == 0 {
				return "FU-A fragment that is not the first"
			}
			if t := p[1] & 0x1f; t != 5 && t != 7 {
				return "FU-A of a NAL unit that is neither IDR nor SPS"
			}
		default:
			return "a NAL unit type that never starts a keyframe"
		}
	case "video/av1":
		switch {
		case len(p) < 1:
			return "empty"
		case p[0]&0x08 == 0:
			return "N is not set"
		case p[0]&0x80 != 0:
			return "Z is set"
		}
	default:
		return "not a video codec we detect keyframes of"
	}
	return ""
}
