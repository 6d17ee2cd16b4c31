// Package ids makes the random ids of relayd's objects: a prefix ("TR_",
// "IN_", "EV_", ...) and base62 characters from crypto/rand.
package ids

import "crypto/rand"

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// New returns prefix and n random base62 characters. 12 characters are 71
// bits (a million ids collide with odds of about 1 in 6 billion); 16 are 95.
func New(prefix string, n int) string {
	out := make([]byte, len(prefix), len(prefix)+n)
	copy(out, prefix)
	var buf [32]byte
	for len(out) < len(prefix)+n {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails (Go 1.24+)
		for _, b := range buf {
			// 248 = 4*62: taking only bytes below it keeps every
			// character equally likely (no modulo bias).
			if b >= 248 {
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == len(prefix)+n {
				break
			}
		}
	}
	return string(out)
}
