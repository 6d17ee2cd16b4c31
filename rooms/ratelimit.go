package rooms

import (
	"sync"
	"time"
)

// Room creation limit (--room-create-rate, default 10): an identity may
// create that many rooms a minute, in bursts of as many. It counts the
// rooms a host token's join creates (by the token's sub) and those POST
// /v1/rooms creates (by the body's host); joining a room that exists is
// never counted. Over the limit: 4029 (HTTP 429), and nothing is created.
// The count is per node: in cluster mode an identity's rooms are spread
// over the nodes, and each node counts those it creates.

// maxCreators bounds the identities the limiter remembers at once. An
// entry is dropped once its bucket is full again (a minute after its last
// creation), so this only matters when more than 100,000 identities each
// create a room within a minute: new identities are then refused until
// entries free up, rather than letting the map grow. An entry is about 100
// bytes, so at most ~10 MB.
const maxCreators = 100_000

// bucket is one identity's token bucket: tokens creations were available
// at at.
type bucket struct {
	tokens float64
	at     time.Time
}

// refill returns b as it stands at now: perMinute tokens a minute, at
// most perMinute (the burst). A clock that went back refills nothing.
func refill(b bucket, now time.Time, perMinute int) bucket {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(float64(perMinute), b.tokens+d.Minutes()*float64(perMinute))
		b.at = now
	}
	return b
}

// take decides one creation: the bucket refilled to now, less one token
// when one is there (ok).
func take(b bucket, now time.Time, perMinute int) (next bucket, ok bool) {
	b = refill(b, now, perMinute)
	if b.tokens < 1 {
		return b, false
	}
	b.tokens--
	return b, true
}

// idle reports whether b is full again at now: the same as no entry, so
// the entry can go.
func idle(b bucket, now time.Time, perMinute int) bool {
	return refill(b, now, perMinute).tokens >= float64(perMinute)
}

// createLimiter keeps a bucket per identity that created a room lately.
type createLimiter struct {
	perMinute int
	now       func() time.Time

	mu      sync.Mutex
	buckets map[string]bucket // guarded by mu; by identity
	swept   time.Time         // guarded by mu; last sweep of idle entries
}

// newCreateLimiter returns a limiter of perMinute creations a minute per
// identity, or nil (no limit) when perMinute <= 0.
func newCreateLimiter(perMinute int, now func() time.Time) *createLimiter {
	if perMinute <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &createLimiter{perMinute: perMinute, now: now, buckets: map[string]bucket{}}
}

// allow counts one creation by identity, or reports that it is over the
// limit. A nil limiter allows everything.
func (l *createLimiter) allow(identity string) bool {
	if l == nil {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	// Every bucket is full a minute after its last take (the burst
	// refills in one minute), so a sweep a minute keeps the map to the
	// identities of the last two minutes.
	if now.Sub(l.swept) >= time.Minute || len(l.buckets) >= maxCreators {
		l.sweepLocked(now)
	}
	b, ok := l.buckets[identity]
	if !ok {
		if len(l.buckets) >= maxCreators {
			return false
		}
		b = bucket{tokens: float64(l.perMinute), at: now}
	}
	b, ok = take(b, now, l.perMinute)
	l.buckets[identity] = b
	return ok
}

func (l *createLimiter) sweepLocked(now time.Time) {
	for id, b := range l.buckets {
		if idle(b, now, l.perMinute) {
			delete(l.buckets, id)
		}
	}
	l.swept = now
}

// size is the number of identities remembered (tests).
func (l *createLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
