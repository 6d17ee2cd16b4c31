package signaling

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

var (
	testSecret = []byte("test-secret-0123456789abcdef")
	testNow    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

// newTestTokens returns a Tokens whose clock is stopped at testNow.
func newTestTokens() *Tokens {
	t := NewTokens(testSecret)
	t.now = func() time.Time { return testNow }
	return t
}

// sign builds a raw token, bypassing Issue's checks, so that Verify can be
// fed anything.
func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

// hs256 signs claims with the test secret.
func hs256(t *testing.T, claims jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodHS256, testSecret, claims)
}

func unix(d time.Duration) int64 { return testNow.Add(d).Unix() }

func TestVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	exp := unix(time.Hour)

	tests := []struct {
		name    string
		token   func(t *testing.T) string
		wantErr error // nil: valid
		want    Claims
	}{
		{
			name: "host",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "alice", "room": "r1", "role": "host", "name": "Alice", "exp": exp})
			},
			want: Claims{Room: "r1", Role: "host", Name: "Alice"},
		},
		{
			name: "viewer with full alphabet",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "bob_1.x:y@z-w", "room": "Room-9", "role": "viewer", "exp": exp})
			},
			want: Claims{Room: "Room-9", Role: "viewer"},
		},
		{
			name:  "user session",
			token: func(t *testing.T) string { return hs256(t, jwt.MapClaims{"sub": "carol", "exp": exp}) },
		},
		{
			name: "user session with a role",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "carol", "role": "viewer", "exp": exp})
			},
			want: Claims{Role: "viewer"},
		},
		{
			name: "admin",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "ops", "admin": true, "exp": exp})
			},
			want: Claims{Admin: true},
		},
		{
			name: "128-char sub",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": strings.Repeat("a", 128), "exp": exp})
			},
		},
		{
			name: "expired within leeway",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "alice", "exp": unix(-2 * time.Second)})
			},
		},
		{
			name: "iat slightly ahead (clock skew)",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "alice", "iat": unix(2 * time.Second), "exp": exp})
			},
		},
		{
			name: "expired",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "alice", "iat": unix(-2 * time.Hour), "exp": unix(-time.Hour)})
			},
			wantErr: ErrTokenExpired,
		},
		{
			name: "not yet valid",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "alice", "nbf": unix(time.Minute), "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "issued in the future",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "alice", "iat": unix(time.Minute), "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "forged signature",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, []byte("another secret"), jwt.MapClaims{"sub": "alice", "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "expired and forged",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, []byte("another secret"), jwt.MapClaims{"sub": "alice", "exp": unix(-time.Hour)})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "alg none",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice", "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "RS256",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "alice", "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "HS512 with the right secret",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS512, testSecret, jwt.MapClaims{"sub": "alice", "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name:    "missing exp",
			token:   func(t *testing.T) string { return hs256(t, jwt.MapClaims{"sub": "alice"}) },
			wantErr: ErrTokenInvalid,
		},
		{
			name:    "missing sub",
			token:   func(t *testing.T) string { return hs256(t, jwt.MapClaims{"exp": exp}) },
			wantErr: ErrTokenInvalid,
		},
		{
			name:    "bad sub characters",
			token:   func(t *testing.T) string { return hs256(t, jwt.MapClaims{"sub": "al ice", "exp": exp}) },
			wantErr: ErrTokenInvalid,
		},
		{
			name:    "non-ASCII sub",
			token:   func(t *testing.T) string { return hs256(t, jwt.MapClaims{"sub": "zoé", "exp": exp}) },
			wantErr: ErrTokenInvalid,
		},
		{
			name: "129-char sub",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": strings.Repeat("a", 129), "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "bad room characters",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "alice", "room": "r/1", "role": "viewer", "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "bad role",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "alice", "room": "r1", "role": "cohost", "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "bad role without room",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "alice", "role": "superuser", "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "room without role",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "alice", "room": "r1", "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name: "admin with room but no role",
			token: func(t *testing.T) string {
				return hs256(t, jwt.MapClaims{"sub": "ops", "admin": true, "room": "r1", "exp": exp})
			},
			wantErr: ErrTokenInvalid,
		},
		{
			name:    "garbage",
			token:   func(*testing.T) string { return "not.a.jwt" },
			wantErr: ErrTokenInvalid,
		},
		{
			name:    "empty",
			token:   func(*testing.T) string { return "" },
			wantErr: ErrTokenInvalid,
		},
	}

	tokens := newTestTokens()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tokens.Verify(tt.token(t))
			if tt.wantErr != nil {
				if c != nil {
					t.Errorf("got claims %+v, want none", c)
				}
				checkTokenErr(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Room != tt.want.Room || c.Role != tt.want.Role || c.Name != tt.want.Name || c.Admin != tt.want.Admin {
				t.Errorf("got room=%q role=%q name=%q admin=%v, want %+v", c.Room, c.Role, c.Name, c.Admin, tt.want)
			}
		})
	}
}

// checkTokenErr fails unless err wraps want and not the other sentinel.
func checkTokenErr(t *testing.T, err, want error) {
	t.Helper()
	other := ErrTokenInvalid
	if want == ErrTokenInvalid {
		other = ErrTokenExpired
	}
	if !errors.Is(err, want) || errors.Is(err, other) {
		t.Errorf("got error %v, want one wrapping only %v", err, want)
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	tokens := newTestTokens()
	tok, err := tokens.Issue(TokenSpec{Identity: "alice", Room: "r1", Role: "host", Name: "Alice A."})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	c, err := tokens.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Identity() != "alice" || c.Room != "r1" || c.Role != "host" || c.Name != "Alice A." || c.Admin {
		t.Errorf("claims = %+v", c)
	}
	if !c.IssuedAt.Equal(testNow) {
		t.Errorf("iat = %v, want %v", c.IssuedAt, testNow)
	}
	if want := testNow.Add(time.Hour); !c.ExpiresAt.Equal(want) {
		t.Errorf("exp = %v, want %v (the default TTL)", c.ExpiresAt, want)
	}

	// The same token, an hour and a minute later.
	later := newTestTokens()
	later.now = func() time.Time { return testNow.Add(time.Hour + time.Minute) }
	_, err = later.Verify(tok)
	checkTokenErr(t, err, ErrTokenExpired)

	// Another server's secret.
	_, err = NewTokens([]byte("other")).Verify(tok)
	checkTokenErr(t, err, ErrTokenInvalid)
}

func TestIssueTTLAndAdmin(t *testing.T) {
	tokens := newTestTokens()
	tok, err := tokens.Issue(TokenSpec{Identity: "ops", Admin: true, TTL: 5 * time.Minute})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	c, err := tokens.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !c.Admin || c.Room != "" || c.Role != "" {
		t.Errorf("claims = %+v", c)
	}
	if want := testNow.Add(5 * time.Minute); !c.ExpiresAt.Equal(want) {
		t.Errorf("exp = %v, want %v", c.ExpiresAt, want)
	}
}

func TestIssueRefuses(t *testing.T) {
	tests := []struct {
		name string
		spec TokenSpec
	}{
		{"no identity", TokenSpec{}},
		{"bad identity", TokenSpec{Identity: "a/b"}},
		{"129-char identity", TokenSpec{Identity: strings.Repeat("x", 129)}},
		{"room without role", TokenSpec{Identity: "a", Room: "r"}},
		{"bad role", TokenSpec{Identity: "a", Room: "r", Role: "cohost"}},
		{"bad room", TokenSpec{Identity: "a", Room: "r 1", Role: "viewer"}},
		{"negative ttl", TokenSpec{Identity: "a", TTL: -time.Second}},
	}
	tokens := newTestTokens()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := tokens.Issue(tt.spec); err == nil {
				t.Errorf("Issue(%+v) = %q, want an error", tt.spec, tok)
			}
		})
	}
}

func TestEmptySecret(t *testing.T) {
	tokens := NewTokens(nil)
	if _, err := tokens.Issue(TokenSpec{Identity: "a"}); err == nil {
		t.Error("Issue with an empty secret succeeded")
	}
	// HMAC with an empty key is still HMAC: make sure Verify does not
	// accept a token signed with one.
	tok := sign(t, jwt.SigningMethodHS256, []byte{}, jwt.MapClaims{"sub": "a", "exp": time.Now().Add(time.Hour).Unix()})
	_, err := tokens.Verify(tok)
	checkTokenErr(t, err, ErrTokenInvalid)
}

func TestValidName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"a", true},
		{"A-z_0.9:x@y", true},
		{strings.Repeat("n", 128), true},
		{"", false},
		{strings.Repeat("n", 129), false},
		{"a b", false},
		{"a/b", false},
		{"a\x00", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.in); got != tt.want {
			t.Errorf("ValidName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// exp, nbf and iat must be NumericDates (RFC 7519): JSON numbers. A string
// is refused like a bad token, even one holding a valid number of seconds.
func TestVerifyNumericDates(t *testing.T) {
	exp, past := unix(time.Hour), unix(-time.Minute)
	str := func(n int64) string { return fmt.Sprint(n) }
	tests := []struct {
		name   string
		claims jwt.MapClaims
		ok     bool
	}{
		{"numbers", jwt.MapClaims{"exp": exp, "nbf": past, "iat": past}, true},
		{"fractional seconds", jwt.MapClaims{"exp": float64(exp) + 0.5}, true},
		{"exponent notation", jwt.MapClaims{"exp": json.Number(fmt.Sprintf("%de0", exp))}, true},
		{"exp a string", jwt.MapClaims{"exp": str(exp)}, false},
		{"exp a string with fractions", jwt.MapClaims{"exp": str(exp) + ".5"}, false},
		{"exp an upper-case key with a string", jwt.MapClaims{"EXP": str(exp)}, false},
		{"nbf a string", jwt.MapClaims{"exp": exp, "nbf": str(past)}, false},
		{"iat a string", jwt.MapClaims{"exp": exp, "iat": str(past)}, false},
		{"exp null", jwt.MapClaims{"exp": nil}, false},
		{"nbf null", jwt.MapClaims{"exp": exp, "nbf": nil}, false},
		{"exp true", jwt.MapClaims{"exp": true}, false},
		{"exp an array", jwt.MapClaims{"exp": []int64{exp}}, false},
		{"exp an object", jwt.MapClaims{"exp": map[string]int64{"s": exp}}, false},
	}
	tokens := newTestTokens()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.claims["sub"] = "alice"
			c, err := tokens.Verify(hs256(t, tt.claims))
			if tt.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if c != nil {
				t.Errorf("got claims %+v, want none", c)
			}
			checkTokenErr(t, err, ErrTokenInvalid)
		})
	}
}

// A token whose exp is a string gets HTTP 401 at the WebSocket upgrade, and
// as an admin token on the HTTP API.
func TestStringExpRefusedOverHTTP(t *testing.T) {
	ts := newTestServer(t)
	secret := []byte("test-secret-0123456789") // newTestServer's
	exp := fmt.Sprint(time.Now().Add(time.Hour).Unix())
	room := sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "room": "r1", "role": "host", "exp": exp})
	admin := sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "ops", "admin": true, "exp": exp})

	_, resp, err := websocket.DefaultDialer.Dial(ts.wsURL(room), nil)
	if err == nil {
		t.Fatal("upgraded with a string exp")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("upgrade: want HTTP 401, got %v", resp)
	}
	code, body := httpDo(t, "GET", ts.URL+"/v1/rooms", admin, "")
	if code != http.StatusUnauthorized {
		t.Fatalf("admin API: HTTP %d %v, want 401", code, body)
	}
	if e, _ := body["error"].(map[string]any); e == nil || e["code"] != float64(CodeUnauthenticated) {
		t.Fatalf("admin API body %v, want error 4001", body)
	}
	// The same tokens with a numeric exp are fine.
	expN := time.Now().Add(time.Hour).Unix()
	admin = sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "ops", "admin": true, "exp": expN})
	if code, body := httpDo(t, "GET", ts.URL+"/v1/rooms", admin, ""); code != http.StatusOK {
		t.Fatalf("admin API with a numeric exp: HTTP %d %v", code, body)
	}
	ts.dialRaw(t, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "room": "r1", "role": "host", "exp": expN}))
}
