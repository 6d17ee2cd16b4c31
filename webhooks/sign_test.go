package webhooks

import (
	"strings"
	"testing"
	"time"
)

func TestSignature(t *testing.T) {
	body := []byte(`{"id":"EV_1","type":"room.started"}`)
	sig := Signature(testSecret, body)
	// echo -n '{"id":"EV_1","type":"room.started"}' | openssl dgst -sha256 -hmac s3cret
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 {
		t.Fatalf("Signature = %q", sig)
	}
	if !Verify(testSecret, body, sig) {
		t.Error("own signature rejected")
	}
	for _, bad := range []string{"", sig[7:], "sha1=" + sig[7:], sig[:len(sig)-1] + "0", "sha256=zz"} {
		if bad != sig && Verify(testSecret, body, bad) {
			t.Errorf("Verify accepted %q", bad)
		}
	}
	if Verify([]byte("other"), body, sig) || Verify(testSecret, append(body, ' '), sig) {
		t.Error("Verify accepted another secret or body")
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 500*time.Millisecond, time.Minute
	for n := 1; n <= 70; n++ {
		d := hi
		if n < 10 {
			d = min(lo<<(n-1), hi)
		}
		for range 20 {
			if got := backoff(n, lo, hi); got < d/2 || got > d {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, got, d/2, d)
			}
		}
	}
}
