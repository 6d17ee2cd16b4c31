package sfu

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// Ops run one at a time, in the order they were queued, and do returns
// each one's error.
func TestOpQueueRunsInOrder(t *testing.T) {
	q := newOpQueue()
	defer q.stop(func() {})
	var mu sync.Mutex
	var ran []int
	running := 0
	for i := range 100 {
		q.post(func() {
			mu.Lock()
			running++
			if running > 1 {
				t.Error("two ops at once")
			}
			ran = append(ran, i)
			mu.Unlock()
			time.Sleep(10 * time.Microsecond)
			mu.Lock()
			running--
			mu.Unlock()
		})
	}
	errBoom := errors.New("boom")
	if err := q.do(func() error { return errBoom }); err != errBoom {
		t.Fatalf("do returned %v, want the op's error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 100 {
		t.Fatalf("%d ops ran before the one queued after them", len(ran))
	}
	for i, v := range ran {
		if v != i {
			t.Fatalf("op %d ran at position %d", v, i)
		}
	}
}

// stop lets the op in progress finish (its caller gets its result), drops
// the queued ones (their callers get ErrClosed at once rather than waiting
// forever), runs the last op, and ends the goroutine; later posts are
// refused.
func TestOpQueueStop(t *testing.T) {
	q := newOpQueue()
	started, release := make(chan struct{}), make(chan struct{})
	errSlow := errors.New("slow op done")
	slow := make(chan error, 1)
	go func() {
		slow <- q.do(func() error {
			close(started)
			<-release
			return errSlow
		})
	}()
	<-started
	dropped := make(chan error, 1)
	ranDropped := false
	go func() { dropped <- q.do(func() error { ranDropped = true; return nil }) }()
	waitFor(t, "the second op queued", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.ops) == 1
	})

	lastRan := false
	stopped := make(chan struct{})
	go func() {
		q.stop(func() { lastRan = true })
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("stop returned while an op was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	for _, c := range []chan struct{}{stopped} {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal("stop did not return")
		}
	}
	if err := <-slow; err != errSlow {
		t.Errorf("the running op's caller got %v, want its result", err)
	}
	if err := <-dropped; !errors.Is(err, ErrClosed) {
		t.Errorf("a dropped op's caller got %v, want ErrClosed", err)
	}
	if ranDropped || !lastRan {
		t.Errorf("dropped op ran: %v; last op ran: %v", ranDropped, lastRan)
	}
	if q.post(func() { t.Error("an op ran after stop") }) {
		t.Error("post accepted after stop")
	}
	if err := q.do(func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("do after stop: %v, want ErrClosed", err)
	}
	q.stop(func() { t.Error("a second stop ran its op") }) // only waits
	select {
	case <-q.done:
	default:
		t.Error("the goroutine has not ended")
	}
}
