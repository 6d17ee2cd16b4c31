package codec

import "strings"

// KeyframeSize returns the picture size a keyframe start packet carries
// (KeyframeStart true), for the track object's layers: VP8's keyframe
// header, or an H.264 SPS (single NAL unit or STAP-A). ok is false for
// other codecs and for anything that does not parse. It never panics.
func KeyframeSize(mimeType string, payload []byte) (width, height int, ok bool) {
	switch {
	case strings.EqualFold(mimeType, "video/VP8"):
		return vp8Size(payload)
	case strings.EqualFold(mimeType, "video/H264"):
		return h264Size(payload)
	}
	return 0, 0, false
}

// vp8Size reads a VP8 keyframe's size (RFC 6386 section 9.1): after the
// payload descriptor (see vp8KeyframeStart) come the 3-byte frame tag,
// the start code 9d 01 2a, then width and height as 14-bit little-endian
// values (the top 2 bits are scaling).
func vp8Size(payload []byte) (int, int, bool) {
	if !vp8KeyframeStart(payload) {
		return 0, 0, false
	}
	i := 1
	if payload[0]&0x80 != 0 {
		x := payload[1]
		i = 2
		if x&0x80 != 0 {
			if payload[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 {
			i++
		}
		if x&0x30 != 0 {
			i++
		}
	}
	b := payload[i:]
	if len(b) < 10 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
		return 0, 0, false
	}
	w := int(b[6]) | int(b[7]&0x3f)<<8
	h := int(b[8]) | int(b[9]&0x3f)<<8
	return w, h, w > 0 && h > 0
}

// h264Size finds an SPS in a single NAL unit packet or a STAP-A and reads
// its size.
func h264Size(payload []byte) (int, int, bool) {
	if len(payload) < 2 {
		return 0, 0, false
	}
	switch typ := payload[0] & 0x1f; {
	case typ == h264NALSPS:
		return spsSize(payload[1:])
	case typ == h264NALSTAPA:
		for i := 1; i+2 <= len(payload); {
			size := int(payload[i])<<8 | int(payload[i+1])
			i += 2
			if size == 0 || size > len(payload)-i {
				return 0, 0, false
			}
			if payload[i]&0x1f == h264NALSPS {
				return spsSize(payload[i+1 : i+size])
			}
			i += size
		}
	}
	return 0, 0, false
}

// bitReader reads an H.264 RBSP: bits MSB first, emulation prevention
// bytes (00 00 03) skipped. Reading past the end sets bad.
type bitReader struct {
	b     []byte
	i     int // byte index
	bit   uint
	zeros int // zero bytes just passed, for emulation prevention
	bad   bool
}

func (r *bitReader) u1() uint {
	if r.i >= len(r.b) {
		r.bad = true
		return 0
	}
	if r.bit == 0 && r.zeros >= 2 && r.b[r.i] == 3 {
		r.zeros = 0
		r.i++
		if r.i >= len(r.b) {
			r.bad = true
			return 0
		}
	}
	v := uint(r.b[r.i]>>(7-r.bit)) & 1
	r.bit++
	if r.bit == 8 {
		if r.b[r.i] == 0 {
			r.zeros++
		} else {
			r.zeros = 0
		}
		r.bit = 0
		r.i++
	}
	return v
}

func (r *bitReader) u(n int) uint {
	var v uint
	for ; n > 0; n-- {
		v = v<<1 | r.u1()
	}
	return v
}

// ue reads an Exp-Golomb code; more than 31 leading zeros is garbage.
func (r *bitReader) ue() uint {
	zeros := 0
	for r.u1() == 0 {
		if zeros++; zeros > 31 || r.bad {
			r.bad = true
			return 0
		}
	}
	return 1<<zeros - 1 + r.u(zeros)
}

func (r *bitReader) se() int {
	v := r.ue()
	if v&1 == 1 {
		return int(v+1) / 2
	}
	return -int(v / 2)
}

// spsSize reads the picture size of an H.264 sequence parameter set (the
// RBSP after the NAL header; H.264 section 7.3.2.1.1), cropping applied.
func spsSize(b []byte) (int, int, bool) {
	r := &bitReader{b: b}
	profile := r.u(8)
	r.u(16) // constraint flags, level
	r.ue()  // seq_parameter_set_id
	chroma := uint(1)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.ue()
		if chroma == 3 {
			r.u1() // separate_colour_plane_flag
		}
		r.ue()           // bit_depth_luma_minus8
		r.ue()           // bit_depth_chroma_minus8
		r.u1()           // qpprime_y_zero_transform_bypass_flag
		if r.u1() == 1 { // seq_scaling_matrix_present_flag
			n := 8
			if chroma == 3 {
				n = 12
			}
			for i := 0; i < n && !r.bad; i++ {
				if r.u1() == 0 {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				last, next := 8, 8
				for j := 0; j < size && !r.bad; j++ {
					if next != 0 {
						next = (last + r.se() + 256) % 256
					}
					if next != 0 {
						last = next
					}
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.u1()
		r.se()
		r.se()
		n := r.ue()
		if n > 255 {
			return 0, 0, false
		}
		for i := uint(0); i < n && !r.bad; i++ {
			r.se()
		}
	}
	r.ue() // max_num_ref_frames
	r.u1() // gaps_in_frame_num_value_allowed_flag
	wmbs := int(r.ue()) + 1
	hmaps := int(r.ue()) + 1
	frameMbsOnly := int(r.u1())
	if frameMbsOnly == 0 {
		r.u1() // mb_adaptive_frame_field_flag
	}
	r.u1() // direct_8x8_inference_flag
	w := wmbs * 16
	h := (2 - frameMbsOnly) * hmaps * 16
	if r.u1() == 1 { // frame_cropping_flag
		left, right, top, bottom := int(r.ue()), int(r.ue()), int(r.ue()), int(r.ue())
		cx, cy := 1, 2-frameMbsOnly
		switch chroma {
		case 1:
			cx, cy = 2, 2*(2-frameMbsOnly)
		case 2:
			cx = 2
		}
		w -= (left + right) * cx
		h -= (top + bottom) * cy
	}
	if r.bad || w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return 0, 0, false
	}
	return w, h, true
}
