package recorder

import (
	"bufio"
	"os"
	"sync"
	"time"
)

// writeBuffer batches ebml-go's many small writes (an element header, then
// its body) into few system calls: 64 KiB is ~0.25 s of 2 Mbit/s video.
//
// flushEvery bounds how long written media stays in the buffer: at a low
// bitrate 64 KiB is many seconds (~2 s of 250 kbit/s), all lost if the
// process is killed. Flushed at least once a second, the file on disk
// (page cache: a killed process loses nothing written) lags ebml-go by at
// most ~1 s, and a cut recording (repair.go) keeps all but that and the
// sorter's sortDelayMs. The check costs one clock read per write.
const (
	writeBuffer = 64 << 10
	flushEvery  = time.Second
)

// latchFile is the file under the muxer. It keeps the first I/O error and
// then swallows every later write: ebml-go panics (its default) or stops
// its writer goroutine on a write error, and a stopped writer goroutine
// would leave the recorder blocked on its next frame. With a full disk the
// file ends early, and Close reports the error.
//
// ebml-go calls it from its own goroutine; the mutex orders that with the
// header written from the recorder's.
type latchFile struct {
	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	err     error
	flushed time.Time // last time the buffer went to the file
}

func newLatchFile(f *os.File) *latchFile {
	return &latchFile{f: f, w: bufio.NewWriterSize(f, writeBuffer), flushed: time.Now()}
}

func (l *latchFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		_, l.err = l.w.Write(p)
	}
	if now := time.Now(); l.err == nil && now.Sub(l.flushed) >= flushEvery {
		l.err, l.flushed = l.w.Flush(), now
	}
	return len(p), nil
}

// WriteAt patches earlier bytes (cues, duration) at finalization.
func (l *latchFile) WriteAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = l.w.Flush()
	}
	if l.err == nil {
		_, l.err = l.f.WriteAt(p, off)
	}
	return len(p), nil
}

// Close flushes, syncs (the file is final once Close returns) and closes.
func (l *latchFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = l.w.Flush()
	}
	if l.err == nil {
		l.err = l.f.Sync()
	}
	if err := l.f.Close(); l.err == nil {
		l.err = err
	}
	return nil
}

// Err returns the first error, once Close has returned.
func (l *latchFile) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
