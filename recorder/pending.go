package recorder

import (
	"cmp"
	"slices"
)

// A WebM header declares every track, and the video size, before the first
// frame; ebml-go writes it when the muxer is created. So the first frames
// wait in a pending buffer until the file can start: when every kind has a
// track with a frame ready (video: a keyframe, whose size then goes in the
// header), or when waiting longer would cost too much. A participant
// publishing audio only is therefore written after openGraceMs, and a kind
// published after the file started cannot be added (Sink logs it).
//
// openGraceMs: browsers publish the microphone and the camera within a
// second or two of each other; 5 s of media covers that with margin.
// pendingMaxBytes: 5 s of 2.5 Mbit/s video and its audio are ~1.6 MB; 4 MiB
// bounds the buffer whatever the bitrate, starting the file early instead.
const (
	openGraceMs     = 5000
	pendingMaxBytes = 4 << 20
)

// pending holds the frames produced before the file started.
type pending struct {
	frames       []frame
	bytes        int
	minMs, maxMs int64
}

func (p *pending) add(f frame) {
	if len(p.frames) == 0 || f.ms < p.minMs {
		p.minMs = f.ms
	}
	if len(p.frames) == 0 || f.ms > p.maxMs {
		p.maxMs = f.ms
	}
	p.frames = append(p.frames, f)
	p.bytes += len(f.data)
}

func (p *pending) empty() bool { return len(p.frames) == 0 }

// full reports whether the file must start now, whatever tracks are ready.
func (p *pending) full() bool {
	return !p.empty() && (p.maxMs-p.minMs >= openGraceMs || p.bytes >= pendingMaxBytes)
}

// take returns the frames in time order (stable: a track's own order is
// kept) and empties the buffer.
func (p *pending) take() []frame {
	fs := p.frames
	slices.SortStableFunc(fs, func(a, b frame) int { return cmp.Compare(a.ms, b.ms) })
	*p = pending{}
	return fs
}
