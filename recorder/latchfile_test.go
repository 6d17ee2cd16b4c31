package recorder

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// What the muxer writes reaches the file within about flushEvery, however
// little it is: a process killed then loses no more than that.
func TestLatchFileFlushesEverySecond(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.webm")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	l := newLatchFile(f)
	size := func() int64 {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	_, _ = l.Write([]byte("first"))
	if n := size(); n != 0 {
		t.Fatalf("%d bytes on disk at once: expected them buffered", n)
	}
	time.Sleep(flushEvery + 100*time.Millisecond)
	_, _ = l.Write([]byte("second"))
	if n := size(); n != int64(len("firstsecond")) {
		t.Fatalf("%d bytes on disk after %v, want all 11", n, flushEvery)
	}
	if err := l.Close(); err != nil || l.Err() != nil {
		t.Fatal(err, l.Err())
	}
}
