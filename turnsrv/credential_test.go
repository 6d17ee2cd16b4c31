package turnsrv

import (
	"strings"
	"testing"
	"time"
)

func TestCredential(t *testing.T) {
	secret := []byte("s3cret")
	for _, tc := range []struct {
		name     string
		identity string
		expiry   time.Time
		wantUser string
		wantPass string
	}{
		// Values checked against coturn's scheme: printf '%s' USER |
		// openssl dgst -sha1 -hmac s3cret -binary | base64.
		{"whole second", "alice", time.Unix(1700000000, 0), "1700000000:alice", "TtElzSjT0GdnTQ9xdcRNxx96yQs="},
		{"a fraction rounds up", "alice", time.Unix(1700000000, 1), "1700000001:alice", ""},
		{"identity with a colon", "a:b", time.Unix(1700000000, 0), "1700000000:a:b", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, p := Credential(secret, tc.identity, tc.expiry)
			if u != tc.wantUser {
				t.Errorf("username %q, want %q", u, tc.wantUser)
			}
			if tc.wantPass != "" && p != tc.wantPass {
				t.Errorf("credential %q, want %q", p, tc.wantPass)
			}
			if p != password(secret, u) {
				t.Errorf("credential %q is not the HMAC of its username", p)
			}
			if p2 := password([]byte("other"), u); p2 == p {
				t.Error("another secret gives the same credential")
			}
		})
	}
}

func TestCheckUsername(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1700000000, 500_000_000)
	for _, tc := range []struct {
		name, username, reason string
	}{
		{"valid", "1700000100:alice", ""},
		{"valid through its expiry second", "1700000000:alice", ""},
		{"expired", "1699999999:alice", reasonExpired},
		{"long expired", "0:alice", reasonExpired},
		{"identity with a colon", "1700000100:a:b", ""},
		{"no colon", "1700000100", reasonMalformed},
		{"no identity", "1700000100:", reasonMalformed},
		{"no expiry", ":alice", reasonMalformed},
		{"not a number", "soon:alice", reasonMalformed},
		{"signed", "+1700000100:alice", reasonMalformed},
		{"negative", "-1:alice", reasonMalformed},
		{"overflow", "99999999999999999999:alice", reasonMalformed},
		{"too long", "1700000100:" + strings.Repeat("a", maxUsername), reasonMalformed},
		{"empty", "", reasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pass, reason := checkUsername(secret, tc.username, now)
			if reason != tc.reason {
				t.Fatalf("reason %q, want %q", reason, tc.reason)
			}
			if reason == "" && pass != password(secret, tc.username) {
				t.Errorf("password %q, want the HMAC of the username", pass)
			}
			if reason != "" && pass != "" {
				t.Errorf("a refused username got a password")
			}
		})
	}
}

func TestCredentialRoundTrip(t *testing.T) {
	secret := []byte("k")
	now := time.Now()
	u, p := Credential(secret, "bob", now.Add(time.Hour))
	pass, reason := checkUsername(secret, u, now)
	if reason != "" || pass != p {
		t.Fatalf("a fresh credential: %q %q, want %q", pass, reason, p)
	}
	if _, reason := checkUsername(secret, u, now.Add(time.Hour+2*time.Second)); reason != reasonExpired {
		t.Fatalf("after its expiry: %q, want expired", reason)
	}
}

// FuzzCheckUsername: a TURN username comes from anyone who reaches the
// TURN port. Whatever it is, checkUsername never panics, gives a password
// only with no reason, and a valid username's password is its HMAC.
func FuzzCheckUsername(f *testing.F) {
	for _, s := range []string{"1700000100:alice", "1700000100:", ":alice", "x:y", "-1:a", "99999999999999999999:a", "1700000100:a:b", ""} {
		f.Add(s)
	}
	secret := []byte("s3cret")
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, username string) {
		pass, reason := checkUsername(secret, username, now)
		switch reason {
		case "":
			if pass != password(secret, username) {
				t.Fatalf("%q: password %q is not its HMAC", username, pass)
			}
		case reasonMalformed, reasonExpired:
			if pass != "" {
				t.Fatalf("%q refused (%s) with a password", username, reason)
			}
		default:
			t.Fatalf("%q: unknown reason %q", username, reason)
		}
	})
}
