package recorder

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaysfu/relayd/sfu"
)

// ErrNoMedia is returned by Close when not one frame was recorded (nothing
// was published, or no video keyframe and no audio ever came): the empty
// file is removed and File is zero.
var ErrNoMedia = errors.New("recorder: no media recorded")

// queueSize is the number of packets waiting between the up tracks' readers
// and the recorder's goroutine. 1024 packets are about a second of 720p
// video plus its audio, enough to ride out a slow disk write, and at most
// 1.5 MB (1024 x 1500-byte packets) per recorded participant. When it is
// full, packets are dropped and counted (Dropped): the reader never waits.
const queueSize = 1024

// Params lists what a Recorder needs.
type Params struct {
	Dir         string // root of the recordings: the file is Dir/<room>/<participant>-<unix ms>.webm
	Room        string
	Participant string
	Logger      *slog.Logger // default slog.Default()
}

// File describes a finished recording.
type File struct {
	Path        string        // the WebM file
	Size        int64         // bytes
	Duration    time.Duration // from the first to the last frame written
	Tracks      []string      // the tracks in the file: "audio/opus", "video/VP8" or "video/VP9"
	Participant string
	StartedAt   time.Time // wall-clock time of the file's first frame
}

// Recorder records one participant's tracks into one WebM file. Its methods
// are safe for concurrent use.
//
// Lifecycle: New starts its goroutine; Sink, for each published track (the
// caller adds the sink to the track); Close, once, stops the goroutine and
// finalizes the file.
type Recorder struct {
	log         *slog.Logger
	path        string
	participant string
	file        *os.File  // created by New; the loop hands it to the muxer or removes it
	wallAtNew   time.Time // with monoAtNew, turns sfu.Now() values into wall-clock time
	monoAtNew   int64

	queue chan item     // packets from the sinks; never closed (a late WriteRTP must not panic)
	wake  chan struct{} // capacity 1: a sink was closed, its source can be flushed
	stop  chan struct{} // closed by Close
	done  chan struct{} // closed by the loop when the file is final

	closing atomic.Bool   // Close has begun: sinks drop everything
	dropped atomic.Uint64 // packets dropped because the queue was full

	mu     sync.Mutex
	slots  [numKinds]*slot   // the file's tracks by kind, registered by Sink
	active [numKinds]*source // the source feeding each slot; another waits until it ends
	frozen bool              // the header is written: no kind can be added any more
	sinks  []*sink           // every sink handed out, removed from its track by Close

	loop loopState // owned by the loop goroutine (loop.go)

	closeOnce sync.Once
	result    File  // set by the loop before done is closed
	err       error // idem
}

// New creates the recording's file (and directories) and starts the
// recorder's goroutine. The file stays empty until media arrives.
func New(p Params) (*Recorder, error) {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	dir := RoomDir(p.Dir, p.Room)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	now := time.Now()
	f, path, err := createFile(dir, p.Participant, now)
	if err != nil {
		return nil, err
	}
	r := &Recorder{
		log:         log.With("recording", path),
		path:        path,
		participant: p.Participant,
		file:        f,
		wallAtNew:   now,
		monoAtNew:   sfu.Now(),
		queue:       make(chan item, queueSize),
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	go r.run()
	return r, nil
}

// createFile creates dir/<participant>-<unix ms>.webm, never overwriting: if
// that name exists (two recordings of one participant in the same
// millisecond), the next millisecond is tried.
func createFile(dir, participant string, now time.Time) (*os.File, string, error) {
	ms := now.UnixMilli()
	for range 16 { // 16 tries: more than any real collision needs
		path := filepath.Join(dir, fmt.Sprintf("%s-%d.webm", escapeName(participant), ms))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, path, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, "", fmt.Errorf("recorder: %w", err)
		}
		ms++
	}
	return nil, "", fmt.Errorf("recorder: no free file name in %s", dir)
}

// Sink returns the sink that records up; the caller adds it:
// up.AddSink(rec.Sink(up)). The first track of each kind decides the file's
// track (audio/opus; video/VP8 or video/VP9). A later track of the same kind
// and codec continues that track once the previous one has ended (its sink
// was closed: the participant published again). Tracks that cannot be
// recorded get a sink that discards everything, with a warning logged:
// another codec, a second track of a kind while the first is live (a
// screen share next to the camera), a kind first seen after the file's
// header was written (see pending.go), or a Recorder already closed.
func (r *Recorder) Sink(up *sfu.UpTrack) sfu.Sink {
	sl, ok := newSlot(up.Kind(), up.Codec())
	if !ok {
		r.log.Warn("track not recorded: unsupported codec", "track", up.ID(), "codec", up.Codec().MimeType)
		return discard{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch cur := r.slots[sl.kind]; {
	case r.closing.Load():
		return discard{}
	case cur == nil && r.frozen:
		r.log.Warn("track not recorded: published after the recording's header was written", "track", up.ID(), "codec", sl.mime)
		return discard{}
	case cur == nil:
		r.slots[sl.kind] = sl
	case cur.mime != sl.mime:
		r.log.Warn("track not recorded: the file already has another codec", "track", up.ID(), "codec", sl.mime, "file_codec", cur.mime)
		return discard{}
	case r.active[sl.kind] != nil && !r.active[sl.kind].ended.Load():
		r.log.Warn("track not recorded: another track of this kind is being recorded", "track", up.ID(), "recorded", r.active[sl.kind].up.ID())
		return discard{}
	default:
		sl = cur
	}
	s := &sink{r: r, src: newSource(sl, up, r.log), layer: uint8(up.TopLayer())}
	r.active[sl.kind] = s.src
	r.sinks = append(r.sinks, s)
	return s
}

// Dropped returns the number of packets dropped because the recorder's
// queue was full (the disk or the recorder could not keep up).
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Close removes the recorder's sinks from their tracks, drains what they
// queued, flushes the jitter buffers, finalizes the file (cues, duration)
// and describes it. With nothing recorded it removes the file and returns
// ErrNoMedia. Later calls return the same result.
func (r *Recorder) Close() (File, error) {
	r.closeOnce.Do(func() {
		r.closing.Store(true)
		r.mu.Lock()
		sinks := r.sinks
		r.mu.Unlock()
		for _, s := range sinks {
			s.src.up.RemoveSink(s)
		}
		close(r.stop)
		<-r.done
	})
	return r.result, r.err
}

// wallTime converts an sfu.Now() value into wall-clock time.
func (r *Recorder) wallTime(mono int64) time.Time {
	return r.wallAtNew.Add(time.Duration(mono - r.monoAtNew))
}

// discard is the sink of a track that is not recorded.
type discard struct{}

func (discard) WriteRTP(*sfu.Packet) {}
func (discard) Close()               {}
