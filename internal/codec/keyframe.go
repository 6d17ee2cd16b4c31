package codec

import "strings"

// KeyframeStart reports whether payload (an RTP payload, without the RTP header) is the first
// packet of a keyframe for the codec with the given MIME type (case-insensitive: "video/VP8",
// "video/VP9", "video/H264", "video/AV1"; anything else, audio included, returns false).
// It never panics, whatever the bytes.
func KeyframeStart(mimeType string, payload []byte) bool {
	switch {
	case strings.EqualFold(mimeType, "video/VP8"):
		return vp8KeyframeStart(payload)
	case strings.EqualFold(mimeType, "video/VP9"):
		return vp9KeyframeStart(payload)
	case strings.EqualFold(mimeType, "video/H264"):
		return h264KeyframeStart(payload)
	case strings.EqualFold(mimeType, "video/AV1"):
		return av1KeyframeStart(payload)
	}
	return false
}

// vp8KeyframeStart parses the VP8 payload descriptor of RFC 7741 section 4.2:
//
//	     0 1 2 3 4 5 6 7
//	    +-+-+-+-+-+-+-+-+
//	    |X|R|N|S|R| PID | (REQUIRED)
//	    +-+-+-+-+-+-+-+-+
//	X:  |I|L|T|K| RSV   | (OPTIONAL)
//	    +-+-+-+-+-+-+-+-+
//	I:  |M| PictureID   | (OPTIONAL, 7 bits, or 15 bits when M is set)
//	    +-+-+-+-+-+-+-+-+
//	M:  | PictureID     |
//	    +-+-+-+-+-+-+-+-+
//	L:  |   TL0PICIDX   | (OPTIONAL)
//	    +-+-+-+-+-+-+-+-+
//	T/K:|TID|Y| KEYIDX  | (OPTIONAL, one byte for both T and K)
//	    +-+-+-+-+-+-+-+-+
//
// A frame starts in the packet with S=1 and PID=0, whose data begins with the
// VP8 payload header (section 4.3): |Size0|H| VER |P|, where P=0 is a key frame.
func vp8KeyframeStart(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	b := payload[0]
	start := b&0x10 != 0 // S
	pid := b & 0x07      // partition index
	if !start || pid != 0 {
		return false
	}

	i := 1
	if b&0x80 != 0 { // X: extension byte present
		if i >= len(payload) {
			return false
		}
		x := payload[i]
		i++
		if x&0x80 != 0 { // I: PictureID present
			if i >= len(payload) {
				return false
			}
			if payload[i]&0x80 != 0 { // M: 15-bit PictureID, two bytes
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX present
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX byte present
			i++
		}
	}

	// i may have run past the end above; this single check covers it.
	if i >= len(payload) {
		return false
	}
	return payload[i]&0x01 == 0 // P bit of the VP8 payload header
}

// vp9KeyframeStart parses the first byte of the VP9 payload descriptor
// (draft-ietf-payload-vp9 section 4.2, RFC 9628):
//
//	     0 1 2 3 4 5 6 7
//	    +-+-+-+-+-+-+-+-+
//	    |I|P|L|F|B|E|V|Z| (REQUIRED)
//	    +-+-+-+-+-+-+-+-+
//	I:  |M| PICTURE ID  | (7 bits, or 15 bits when M is set)
//	    +-+-+-+-+-+-+-+-+
//	M:  | EXTENDED PID  |
//	    +-+-+-+-+-+-+-+-+
//	L:  | TID |U| SID |D|
//	    +-+-+-+-+-+-+-+-+
//	    |   TL0PICIDX   | (non-flexible mode only)
//	    +-+-+-+-+-+-+-+-+
//	    ...               (P_DIFF when P and F, scalability structure when V)
//
// A key frame starts in the packet with B=1 (beginning of a frame) and P=0 (not
// inter-picture predicted), on the base spatial layer (SID 0) when layer
// indices are present. Only the picture ID and the layer byte need skipping.
func vp9KeyframeStart(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	b := payload[0]
	begin := b&0x08 != 0     // B
	predicted := b&0x40 != 0 // P
	if !begin || predicted {
		return false
	}
	if b&0x20 == 0 { // L: no layer indices, a single spatial layer
		return true
	}

	i := 1
	if b&0x80 != 0 { // I: picture ID present
		if i >= len(payload) {
			return false
		}
		if payload[i]&0x80 != 0 { // M: 15-bit picture ID
			i += 2
		} else {
			i++
		}
	}
	if i >= len(payload) {
		return false
	}
	sid := (payload[i] >> 1) & 0x07 // |TID(3)|U|SID(3)|D|
	return sid == 0
}

// H.264 NAL unit types (RFC 6184 section 5.2 and H.264 table 7-1).
const (
	h264NALIDR   = 5  // coded slice of an IDR picture
	h264NALSPS   = 7  // sequence parameter set
	h264NALSTAPA = 24 // single-time aggregation packet
	h264NALFUA   = 28 // fragmentation unit
)

func h264IsKeyNAL(typ byte) bool {
	return typ == h264NALIDR || typ == h264NALSPS
}

// h264KeyframeStart looks for an SPS or an IDR slice at the start of a NAL unit
// (RFC 6184 section 5). Only the packetization modes used by WebRTC (single NAL
// unit, STAP-A, FU-A) are understood; STAP-B, MTAP and FU-B return false.
func h264KeyframeStart(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	typ := payload[0] & 0x1f // |F|NRI(2)|Type(5)|
	switch {
	case typ >= 1 && typ <= 23: // single NAL unit packet
		return h264IsKeyNAL(typ)

	case typ == h264NALSTAPA:
		// After the STAP-A header byte: repeated |size (16 bits)|NAL unit|.
		i := 1
		for i+2 <= len(payload) {
			size := int(payload[i])<<8 | int(payload[i+1])
			i += 2
			if size == 0 || size > len(payload)-i {
				return false // malformed: empty or truncated NAL unit
			}
			if h264IsKeyNAL(payload[i] & 0x1f) {
				return true
			}
			i += size
		}
		return false

	case typ == h264NALFUA:
		// FU header: |S|E|R|Type(5)|, S marks the first fragment.
		if len(payload) < 2 {
			return false
		}
		fu := payload[1]
		return fu&0x80 != 0 && h264IsKeyNAL(fu&0x1f)
	}
	return false
}

// av1KeyframeStart reads the aggregation header of the AV1 RTP payload format
// (section 4.4):
//
//	 0 1 2 3 4 5 6 7
//	+-+-+-+-+-+-+-+-+
//	|Z|Y| W |N|-|-|-|
//	+-+-+-+-+-+-+-+-+
//
// N=1 marks the first packet of a coded video sequence, which begins with a
// sequence header and a key frame. Z=1 (first OBU continues a fragment from
// the previous packet) contradicts N=1, so such a packet is not a start.
func av1KeyframeStart(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	b := payload[0]
	return b&0x08 != 0 && b&0x80 == 0
}
