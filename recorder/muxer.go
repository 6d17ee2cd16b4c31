package recorder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
)

// Muxer settings, in milliseconds (the file's TimecodeScale is 1 ms).
//
// sortDelayMs: ebml-go's block sorter interleaves the tracks by time,
// holding up to this much media of one track while the other is late. The
// jitter buffers release a frame at most maxWait (1 s) late, so 2 s keeps
// every frame; a frame later than that is dropped (written, it would go
// back in time).
//
// A cluster starts at a keyframe of the main track (video, else audio)
// once the current one is clusterMinMs long, and anyway at clusterMaxMs,
// the most a SimpleBlock's signed 16-bit offset can reach. Each cluster
// gets a cue (a seek point).
//
// cuesReserve: the cues are written at the front of the file, into space
// reserved when it starts. A cue point takes ~20 bytes, one per >= 5 s
// cluster: 64 KiB index ~4.5 hours, and ebml-go thins the cues out to fit a
// longer recording.
const (
	sortDelayMs  = 2000
	clusterMinMs = 5000
	clusterMaxMs = 0x7FFF
	cuesReserve  = 64 << 10
)

// timecodeScale is the file's time unit in nanoseconds: 1 ms.
const timecodeScale = 1_000_000

// muxFile is what the muxer writes into: a latchFile, or a test's buffer.
// Err returns the first write error, once Close has returned.
type muxFile interface {
	io.WriteCloser
	io.WriterAt
	Err() error
}

// muxer writes frames into the WebM file through ebml-go, which runs its
// own goroutines (a sorter and a writer) until every track writer is
// closed: close stops them.
type muxer struct {
	file    muxFile
	writers [numKinds]webm.BlockWriteCloser // nil for a kind the file lacks
	tracks  []string

	wrote       bool
	first, last int64 // ms of the first and last frames written

	mu    sync.Mutex
	fatal error // reported by ebml-go from its writer goroutine
}

// newMuxer writes the header of a file with the registered slots (audio
// first) and starts ebml-go. f is closed in any case, now or by close.
// date is the wall-clock time of the first frame: the file's DateUTC, which
// is how a repaired file (repair.go) knows when it started.
func newMuxer(f *os.File, slots [numKinds]*slot, date time.Time) (*muxer, error) {
	return muxTo(newLatchFile(f), slots, date)
}

func muxTo(f muxFile, slots [numKinds]*slot, date time.Time) (*muxer, error) {
	m := &muxer{file: f}
	var entries []webm.TrackEntry
	var kinds []int
	main := uint64(0) // the track whose keyframes start clusters
	for kind, sl := range slots {
		if sl == nil {
			continue
		}
		n := uint64(len(entries) + 1)
		entries = append(entries, sl.trackEntry(n))
		kinds = append(kinds, kind)
		m.tracks = append(m.tracks, sl.mime)
		if main == 0 || sl.video() {
			main = n
		}
	}
	if len(entries) == 0 {
		_ = m.file.Close()
		return nil, errors.New("recorder: no track to write")
	}
	sorter, err := mkvcore.NewMultiTrackBlockSorter(
		mkvcore.WithMaxTimescaleDelay(sortDelayMs),
		mkvcore.WithSortRule(mkvcore.BlockSorterDropOutdated),
	)
	if err != nil {
		_ = m.file.Close()
		return nil, fmt.Errorf("recorder: %w", err)
	}
	ws, err := webm.NewSimpleBlockWriter(m.file, entries,
		// A fresh Info per file: ebml-go sets its Duration at the end,
		// and webm.DefaultSegmentInfo is shared by every file.
		mkvcore.WithSegmentInfo(&webm.Info{TimecodeScale: timecodeScale, MuxingApp: "relayd", WritingApp: "relayd", DateUTC: date.UTC()}),
		mkvcore.WithBlockInterceptor(sorter),
		mkvcore.WithSeekHead(true),
		mkvcore.WithCues(cuesReserve),
		mkvcore.WithMinMaxClusterDuration(main, clusterMinMs, clusterMaxMs),
		mkvcore.WithOnErrorHandler(func(error) {}), // a frame dropped as too old: nothing to do
		mkvcore.WithOnFatalHandler(m.setFatal),     // instead of ebml-go's default panic
	)
	if err != nil {
		_ = m.file.Close()
		return nil, fmt.Errorf("recorder: webm: %w", err)
	}
	for i, w := range ws {
		m.writers[kinds[i]] = w
	}
	return m, nil
}

func (m *muxer) setFatal(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fatal == nil {
		m.fatal = err
	}
}

// write adds one frame. Frames of one track come in time order.
func (m *muxer) write(f frame) {
	w := m.writers[f.slot.kind]
	if w == nil {
		return
	}
	if !m.wrote {
		m.wrote, m.first, m.last = true, f.ms, f.ms
	}
	m.first = min(m.first, f.ms)
	m.last = max(m.last, f.ms)
	_, _ = w.Write(f.key, f.ms, f.data) // returns no error; I/O errors are latched in file
}

// close finalizes the file: the last writer's Close returns once ebml-go
// has written the cues and the duration and closed the file.
func (m *muxer) close() error {
	for _, w := range m.writers {
		if w != nil {
			_ = w.Close()
		}
	}
	m.mu.Lock()
	fatal := m.fatal
	m.mu.Unlock()
	return errors.Join(fatal, m.file.Err())
}
