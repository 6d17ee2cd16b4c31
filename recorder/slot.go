package recorder

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"

	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/webrtc/v4"
)

// The kinds of track a file holds, at most one of each. Audio comes first:
// ebml-go's block sorter orders equal timestamps by track index, and WebM
// muxing guidelines want audio before video at the same time.
const (
	kindAudio = iota
	kindVideo
	numKinds
)

// The video size declared in the header when the file must start before
// the first keyframe told the real one. Decoders take the size from the
// bitstream anyway; players use this only for the initial layout.
const (
	defaultWidth  = 640
	defaultHeight = 480
)

// opusSeekPreRoll is the WebM SeekPreRoll of Opus in nanoseconds: the
// decoder needs 80 ms of audio before a seek point to converge (RFC 7845
// section 4.6 and the WebM Opus mapping).
const opusSeekPreRoll = 80_000_000

// slot is one track of the file. Its first fields are fixed when Sink
// registers it; the rest belong to the recorder's goroutine.
type slot struct {
	kind     int
	mime     string // canonical MIME type: audio/opus, video/VP8, video/VP9
	codecID  string // the Matroska codec ID
	clock    uint32 // RTP clock rate
	channels uint8  // audio only

	// owned by the loop
	ready         bool // a frame of this track waits in the pending buffer (video: from a keyframe)
	width, height int  // from the first keyframe; 0 until then
}

// newSlot describes the track a codec needs, or reports that the codec
// cannot be recorded.
func newSlot(kind webrtc.RTPCodecType, c webrtc.RTPCodecCapability) (*slot, bool) {
	var s slot
	switch {
	case kind == webrtc.RTPCodecTypeAudio && strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus):
		// Opus RTP always runs at 48 kHz and is negotiated as 2 channels
		// (RFC 7587 section 7); mono streams decode fine as stereo.
		s = slot{kind: kindAudio, mime: webrtc.MimeTypeOpus, codecID: "A_OPUS", clock: 48000, channels: 2}
		if c.Channels == 1 {
			s.channels = 1
		}
	case kind == webrtc.RTPCodecTypeVideo && strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8):
		s = slot{kind: kindVideo, mime: webrtc.MimeTypeVP8, codecID: "V_VP8", clock: 90000}
	case kind == webrtc.RTPCodecTypeVideo && strings.EqualFold(c.MimeType, webrtc.MimeTypeVP9):
		s = slot{kind: kindVideo, mime: webrtc.MimeTypeVP9, codecID: "V_VP9", clock: 90000}
	default:
		return nil, false
	}
	if c.ClockRate != 0 {
		s.clock = c.ClockRate
	}
	return &s, true
}

func (s *slot) video() bool { return s.kind == kindVideo }

// trackEntry is the slot's WebM TrackEntry, numbered n (from 1).
func (s *slot) trackEntry(n uint64) webm.TrackEntry {
	e := webm.TrackEntry{
		TrackNumber: n,
		TrackUID:    rand.Uint64() | 1, // any non-zero value, unique in the file
		CodecID:     s.codecID,
	}
	if s.video() {
		w, h := s.width, s.height
		if w == 0 || h == 0 {
			w, h = defaultWidth, defaultHeight
		}
		e.Name, e.TrackType = "Video", 1 // Matroska track type 1: video
		e.Video = &webm.Video{PixelWidth: uint64(w), PixelHeight: uint64(h)}
		return e
	}
	e.Name, e.TrackType = "Audio", 2 // Matroska track type 2: audio
	e.CodecPrivate = opusHead(s.channels)
	e.SeekPreRoll = opusSeekPreRoll
	e.Audio = &webm.Audio{SamplingFrequency: 48000, Channels: uint64(s.channels)}
	return e
}

// opusHead is the 19-byte Opus identification header (RFC 7845 section
// 5.1) that WebM carries as the Opus track's CodecPrivate. Pre-skip is 0:
// the recording joins a running stream, there is no encoder delay to trim.
func opusHead(channels uint8) []byte {
	b := make([]byte, 19)
	copy(b, "OpusHead")
	b[8] = 1 // version
	b[9] = channels
	binary.LittleEndian.PutUint16(b[10:], 0)     // pre-skip
	binary.LittleEndian.PutUint32(b[12:], 48000) // input sample rate, informational
	binary.LittleEndian.PutUint16(b[16:], 0)     // output gain
	b[18] = 0                                    // channel mapping family 0: mono or stereo
	return b
}
