package recorder

import (
	"bufio"
	"os"
	"sync"
)

// writeBuffer batches ebml-go's many small writes (an element header, then
// its body) into few system calls: 64 KiB is ~0.25 s of 2 Mbit/s video.
const writeBuffer = 64 << 10

// latchFile is the file under the muxer. It keeps the first I/O error and
// then swallows every later write: ebml-go panics (its default) or stops
// its writer goroutine on a write error, and a stopped writer goroutine
// would leave the recorder blocked on its next frame. With a full disk the
// file ends early, and Close reports the error.
//
// ebml-go calls it from its own goroutine; the mutex orders that with the
// header written from the recorder's.
type latchFile struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	err error
}

func newLatchFile(f *os.File) *latchFile {
	return &latchFile{f: f, w: bufio.NewWriterSize(f, writeBuffer)}
}

func (l *latchFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		_, l.err = l.w.Write(p)
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
