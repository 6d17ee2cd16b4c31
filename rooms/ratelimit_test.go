package rooms

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

var limitT0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestTakeDecision(t *testing.T) {
	const perMinute = 10
	for _, tc := range []struct {
		name   string
		b      bucket
		now    time.Time
		ok     bool
		tokens float64
	}{
		{"full bucket", bucket{10, limitT0}, limitT0, true, 9},
		{"empty, same instant", bucket{0, limitT0}, limitT0, false, 0},
		{"empty, 5.9 s later: 0.98 of a token", bucket{0, limitT0}, limitT0.Add(5900 * time.Millisecond), false, 5.9 / 6},
		{"empty, 6 s later: one token", bucket{0, limitT0}, limitT0.Add(6 * time.Second), true, 0},
		{"half a token, 3 s later", bucket{0.5, limitT0}, limitT0.Add(3 * time.Second), true, 0},
		{"refill stops at the burst", bucket{2, limitT0}, limitT0.Add(10 * time.Minute), true, 9},
		{"a clock that went back refills nothing", bucket{0, limitT0.Add(time.Minute)}, limitT0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, ok := take(tc.b, tc.now, perMinute)
			if ok != tc.ok || next.tokens < tc.tokens-1e-9 || next.tokens > tc.tokens+1e-9 {
				t.Errorf("take = %+v, %v; want %v tokens, %v", next, ok, tc.tokens, tc.ok)
			}
		})
	}
	for _, tc := range []struct {
		name string
		b    bucket
		now  time.Time
		want bool
	}{
		{"full", bucket{10, limitT0}, limitT0, true},
		{"one taken", bucket{9, limitT0}, limitT0.Add(5 * time.Second), false},
		{"one taken, refilled", bucket{9, limitT0}, limitT0.Add(6 * time.Second), true},
		{"empty, a minute later", bucket{0, limitT0}, limitT0.Add(time.Minute), true},
		{"empty, 59 s later", bucket{0, limitT0}, limitT0.Add(59 * time.Second), false},
	} {
		if got := idle(tc.b, tc.now, perMinute); got != tc.want {
			t.Errorf("idle, %s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// fakeNow is a settable clock for the limiter.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeNow) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeNow) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The limiter forgets identities once their bucket is full again, and
// never holds more than maxCreators.
func TestCreateLimiterMemory(t *testing.T) {
	clock := &fakeNow{t: limitT0}
	l := newCreateLimiter(10, clock.now)
	if newCreateLimiter(0, nil) != nil || !(*createLimiter)(nil).allow("x") {
		t.Fatal("a zero rate must mean no limiter, allowing everything")
	}
	for i := range 1000 {
		if !l.allow(fmt.Sprint("id", i)) {
			t.Fatalf("identity %d refused its first room", i)
		}
	}
	if l.size() != 1000 {
		t.Fatalf("%d identities remembered, want 1000", l.size())
	}
	clock.advance(time.Minute)
	l.allow("late")
	if l.size() != 1 {
		t.Fatalf("%d identities remembered a minute later, want 1 (the idle ones dropped)", l.size())
	}

	// At the bound a new identity is refused, a known one still served;
	// once the others are idle there is room again.
	clock.advance(time.Minute)
	for i := range maxCreators {
		l.allow(fmt.Sprint("many", i))
	}
	if l.size() != maxCreators {
		t.Fatalf("%d identities remembered, want %d", l.size(), maxCreators)
	}
	if l.allow("newcomer") {
		t.Fatal("a new identity was let in beyond maxCreators")
	}
	if !l.allow("many7") {
		t.Fatal("a known identity with creations left was refused")
	}
	clock.advance(time.Minute)
	if !l.allow("newcomer") || l.size() != 1 {
		t.Fatalf("after a minute: size %d, want the newcomer alone", l.size())
	}
}
