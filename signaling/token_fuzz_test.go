package signaling

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzSecret signs the tokens of the fuzz targets; fuzzNow is their clock,
// fixed so that a verdict never depends on when the input runs.
var (
	fuzzSecret = []byte("fuzz-secret-0123456789")
	fuzzNow    = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

func fuzzTokens() *Tokens {
	tk := NewTokens(fuzzSecret)
	tk.now = func() time.Time { return fuzzNow }
	return tk
}

// signRaw makes a token of any header and claims bytes, signed with
// HS256 and secret whatever the header says.
func signRaw(header, claims []byte, secret []byte) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// tokenSeeds are claims as app back ends write them, and the tricks.
var tokenSeeds = []string{
	`{"sub":"alice","room":"show","role":"host","name":"Alice","iat":1893553445,"exp":1893557045}`,
	`{"sub":"bob","room":"show","role":"viewer","exp":1893557045}`,
	`{"sub":"carol","exp":1893557045}`,
	`{"sub":"admin","admin":true,"exp":1893557045.5}`,
	`{"sub":"alice","room":"show","role":"cohost","exp":1893557045}`,
	`{"sub":"alice","room":"show","role":"host"}`,
	`{"sub":"alice","room":"show","role":"host","exp":"1893557045"}`,
	`{"sub":"alice","room":"show","role":"host","exp":null}`,
	`{"sub":"alice","room":"show","role":"host","exp":1e300}`,
	`{"sub":"alice","room":"show","role":"host","exp":-1}`,
	`{"sub":"alice","room":"show","role":"host","exp":1893557045,"nbf":1993557045}`,
	`{"sub":"alice","room":"show","role":"host","exp":1893557045,"iat":"soon"}`,
	`{"sub":"al ice","room":"show","role":"host","exp":1893557045}`,
	`{"sub":"alice","room":"show/../x","role":"host","exp":1893557045}`,
	`{"sub":"alice","room":"show","role":"host","exp":1893557045,"EXP":1}`,
	`{"sub":["alice"],"exp":1893557045}`,
	`[]`, `null`, ``,
}

var tokenHeaders = []string{
	`{"alg":"HS256","typ":"JWT"}`,
	`{"alg":"none","typ":"JWT"}`,
	`{"alg":"HS512"}`,
	`{"alg":"RS256","typ":"JWT"}`,
	`{"typ":"JWT"}`,
}

// FuzzTokenVerify checks Verify on arbitrary strings: it never panics, its
// errors wrap ErrTokenExpired or ErrTokenInvalid, and whatever it accepts
// carries an HS256 signature by our secret over its first two segments
// and claims Verify's own rules allow.
func FuzzTokenVerify(f *testing.F) {
	tk := fuzzTokens()
	good, err := tk.Issue(TokenSpec{Identity: "alice", Room: "show", Role: "host", TTL: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add(strings.Replace(good, ".", "..", 1))
	for _, h := range tokenHeaders {
		f.Add(signRaw([]byte(h), []byte(tokenSeeds[0]), fuzzSecret))
		f.Add(signRaw([]byte(h), []byte(tokenSeeds[0]), []byte("another secret")))
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("Bearer " + good)
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := tk.Verify(tok)
		if err != nil {
			if errors.Is(err, ErrTokenExpired) == errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("Verify(%q): error %v wraps neither or both token errors", tok, err)
			}
			return
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("Verify accepted %q, which has %d segments", tok, len(parts))
		}
		mac := hmac.New(sha256.New, fuzzSecret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		sig, derr := base64.RawURLEncoding.DecodeString(parts[2])
		if derr != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("Verify accepted %q, which our secret did not sign", tok)
		}
		header, _ := base64.RawURLEncoding.DecodeString(parts[0])
		claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
		checkAccepted(t, header, claims, c)
	})
}

// FuzzTokenClaims signs arbitrary header and claims JSON with the right
// secret: Verify must still refuse what breaks the rules (no numeric exp,
// expired, not yet valid, another algorithm, a bad name or role), and
// return the claims as written for what it accepts.
func FuzzTokenClaims(f *testing.F) {
	for _, c := range tokenSeeds {
		f.Add([]byte(tokenHeaders[0]), []byte(c))
	}
	for _, h := range tokenHeaders[1:] {
		f.Add([]byte(h), []byte(tokenSeeds[0]))
	}
	tk := fuzzTokens()
	f.Fuzz(func(t *testing.T, header, claims []byte) {
		c, err := tk.Verify(signRaw(header, claims, fuzzSecret))
		if err != nil {
			if errors.Is(err, ErrTokenExpired) == errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("error %v wraps neither or both token errors", err)
			}
			return
		}
		checkAccepted(t, header, claims, c)
	})
}

// checkAccepted checks a token Verify accepted, from its raw header and
// claims: HS256; exp a JSON number after now (give or take the leeway);
// nbf and iat, when there, numbers not after now; a valid identity; a room
// token with the role host or viewer; and the claims returned are the ones
// written.
func checkAccepted(t *testing.T, header, claims []byte, c *Claims) {
	t.Helper()
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(header, &h) != nil || h.Alg != "HS256" {
		t.Fatalf("accepted a token with header %s", header)
	}
	// The claim names as encoding/json (and so the jwt library) matches
	// them: case-insensitively, the last one winning.
	var raw struct {
		Exp  json.RawMessage `json:"exp"`
		Nbf  json.RawMessage `json:"nbf"`
		Iat  json.RawMessage `json:"iat"`
		Sub  string          `json:"sub"`
		Room string          `json:"room"`
		Role string          `json:"role"`
		Name string          `json:"name"`
	}
	if err := json.Unmarshal(claims, &raw); err != nil {
		t.Fatalf("accepted claims %q that do not decode: %v", claims, err)
	}
	if !isNumberLiteral(raw.Exp) {
		t.Fatalf("accepted claims %s without a numeric exp", claims)
	}
	for _, v := range []json.RawMessage{raw.Nbf, raw.Iat} {
		if v != nil && !isNumberLiteral(v) {
			t.Fatalf("accepted claims %s with a time that is not a number", claims)
		}
	}
	if c.ExpiresAt == nil || !c.ExpiresAt.After(fuzzNow.Add(-tokenLeeway)) {
		t.Fatalf("accepted claims %s that expired (exp %v, now %v)", claims, c.ExpiresAt, fuzzNow)
	}
	if c.NotBefore != nil && c.NotBefore.After(fuzzNow.Add(tokenLeeway)) {
		t.Fatalf("accepted claims %s not valid before %v", claims, c.NotBefore)
	}
	if !ValidName(c.Identity()) {
		t.Fatalf("accepted identity %q", c.Identity())
	}
	if c.Room != "" && (!ValidName(c.Room) || (c.Role != "host" && c.Role != "viewer")) {
		t.Fatalf("accepted room %q with role %q", c.Room, c.Role)
	}
	if c.Subject != raw.Sub || c.Room != raw.Room || c.Role != raw.Role || c.Name != raw.Name {
		t.Fatalf("claims %s verified as %+v", claims, c)
	}
}

// isNumberLiteral reports whether v is a JSON number literal.
func isNumberLiteral(v json.RawMessage) bool {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return false
	}
	var n json.Number
	return json.Unmarshal(v, &n) == nil
}

// A correctly signed token whose exp, nbf or iat is a string is refused
// (FuzzTokenClaims's invariant; the jwt library alone accepts
// "exp":"1893557045").
func TestTokenTimesMustBeNumbers(t *testing.T) {
	tk := fuzzTokens()
	header := []byte(tokenHeaders[0])
	for _, claims := range []string{
		`{"sub":"alice","room":"show","role":"host","exp":"1893557045"}`,
		`{"sub":"alice","room":"show","role":"host","exp":1893557045,"nbf":"1893553445"}`,
		`{"sub":"alice","room":"show","role":"host","exp":1893557045,"iat":"1893553445"}`,
		`{"sub":"alice","room":"show","role":"host","exp":1893557045,"iat":null}`, // null is no NumericDate either
	} {
		if _, err := tk.Verify(signRaw(header, []byte(claims), fuzzSecret)); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("%s: Verify error %v, want ErrTokenInvalid", claims, err)
		}
	}
	ok := `{"sub":"alice","room":"show","role":"host","exp":1893557045,"nbf":1893553445,"iat":1893553445}`
	if _, err := tk.Verify(signRaw(header, []byte(ok), fuzzSecret)); err != nil {
		t.Errorf("%s: %v", ok, err)
	}
}
