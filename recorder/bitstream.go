package recorder

import "encoding/binary"

// vp8Keyframe reads the start of a VP8 frame (RFC 6386 section 9.1): a
// 3-byte frame tag whose lowest bit is 0 on a keyframe, then, on keyframes
// only, the start code 9d 01 2a and two little-endian 16-bit fields (bytes
// 6..9) holding a 14-bit width and height (the top 2 bits are a scaling
// hint). A keyframe without its start code is corrupt and reported as not
// a keyframe.
func vp8Keyframe(b []byte) (key bool, width, height int) {
	if len(b) < 10 || b[0]&0x01 != 0 {
		return false, 0, 0
	}
	if b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
		return false, 0, 0
	}
	width = int(binary.LittleEndian.Uint16(b[6:]) & 0x3fff)
	height = int(binary.LittleEndian.Uint16(b[8:]) & 0x3fff)
	return true, width, height
}

// vp9Keyframe reads the start of a VP9 uncompressed header (VP9 bitstream
// specification section 6.2): frame_marker, profile, show_existing_frame,
// frame_type (0 = key frame), show_frame, error_resilient_mode; then on a
// key frame the sync code 49 83 42, the color config and frame_size
// (width-1 and height-1, 16 bits each). The first frame of a superframe is
// the one read.
func vp9Keyframe(b []byte) (key bool, width, height int) {
	r := bitReader{b: b}
	if r.bits(2) != 2 { // frame_marker
		return false, 0, 0
	}
	profile := r.bits(1) | r.bits(1)<<1 // profile_low_bit, profile_high_bit
	if profile == 3 {
		r.bits(1) // reserved_zero
	}
	if r.bits(1) == 1 { // show_existing_frame: shows an old frame, no new data
		return false, 0, 0
	}
	if r.bits(1) != 0 { // frame_type: 1 = non-key frame
		return false, 0, 0
	}
	r.bits(2) // show_frame, error_resilient_mode
	if r.bits(24) != 0x498342 {
		return false, 0, 0 // frame_sync_code: corrupt
	}
	// color_config
	if profile >= 2 {
		r.bits(1) // ten_or_twelve_bit
	}
	const csRGB = 7
	if r.bits(3) != csRGB { // color_space
		r.bits(1) // color_range
		if profile == 1 || profile == 3 {
			r.bits(3) // subsampling_x, subsampling_y, reserved_zero
		}
	} else if profile == 1 || profile == 3 {
		r.bits(1) // reserved_zero
	}
	width = int(r.bits(16)) + 1
	height = int(r.bits(16)) + 1
	if r.short {
		return true, 0, 0 // a keyframe too short to tell its size
	}
	return true, width, height
}

// bitReader reads big-endian bit fields; past the end it reads zeros and
// sets short.
type bitReader struct {
	b     []byte
	pos   int // in bits
	short bool
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for range n {
		bit := uint32(0)
		if i := r.pos / 8; i < len(r.b) {
			bit = uint32(r.b[i]>>(7-r.pos%8)) & 1
		} else {
			r.short = true
		}
		v = v<<1 | bit
		r.pos++
	}
	return v
}
