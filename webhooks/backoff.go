package webhooks

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait before attempt n+1 of a lane after n failures (n >=
// 1): lo doubled n-1 times, capped at hi, with "equal jitter": half of it
// fixed, half random. The random half spreads the retries of many lanes
// (every room of a receiver that went down at once); the fixed half keeps a
// retry from coming right back.
func backoff(n int, lo, hi time.Duration) time.Duration {
	n = max(n, 1)
	d := hi
	if n < 32 { // past 2^31 x lo, the shift would overflow: hi anyway
		if v := lo << (n - 1); v > 0 && v < hi {
			d = v
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
