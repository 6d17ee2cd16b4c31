package recorder

import (
	"time"

	"github.com/pion/webrtc/v4"
)

// TestFrame is one frame for MuxForTest.
type TestFrame struct {
	Video, Key bool
	Ms         int64
	Data       []byte
}

// MuxForTest muxes frames (each track's in time order) into WebM with the
// recorder's muxer: audio/opus and, if any frame is video, a 64x48
// video/VP8 track. It returns the bytes the muxer wrote in sequence (what a
// process killed just before finalization leaves on disk) and the finished
// file (the same, with the cues and the duration patched in).
func MuxForTest(frames []TestFrame, date time.Time) (cut, final []byte, err error) {
	var slots [numKinds]*slot
	slots[kindAudio], _ = newSlot(webrtc.RTPCodecTypeAudio, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	for _, f := range frames {
		if f.Video && slots[kindVideo] == nil {
			slots[kindVideo], _ = newSlot(webrtc.RTPCodecTypeVideo, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
			slots[kindVideo].width, slots[kindVideo].height = 64, 48
		}
	}
	mf := &memFile{}
	m, err := muxTo(mf, slots, date)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range frames {
		sl := slots[kindAudio]
		if f.Video {
			sl = slots[kindVideo]
		}
		m.write(frame{slot: sl, key: f.Key, ms: f.Ms, data: f.Data})
	}
	if err := m.close(); err != nil {
		return nil, nil, err
	}
	final = append([]byte(nil), mf.stream...)
	for _, p := range mf.patches {
		copy(final[p.off:], p.b)
	}
	return mf.stream, final, nil
}

// memFile keeps the sequential writes and, apart, the patches.
type memFile struct {
	stream  []byte
	patches []patch
}

func (f *memFile) Write(p []byte) (int, error) {
	f.stream = append(f.stream, p...)
	return len(p), nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.patches = append(f.patches, patch{off, append([]byte(nil), p...)})
	return len(p), nil
}

func (f *memFile) Close() error { return nil }
func (f *memFile) Err() error   { return nil }
