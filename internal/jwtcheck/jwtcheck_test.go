package jwtcheck

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestParse(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(now.Add(d)) }
	sign := func(m jwt.SigningMethod, key any, c jwt.RegisteredClaims) string {
		tok, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := jwt.RegisteredClaims{Subject: "alice", IssuedAt: at(0), ExpiresAt: at(time.Hour)}
	clock := jwt.WithTimeFunc(func() time.Time { return now })
	for _, c := range []struct {
		name  string
		tok   string
		extra []jwt.ParserOption
		want  error // nil: accepted
	}{
		{"good", sign(jwt.SigningMethodHS256, secret, good), nil, nil},
		{"wrong secret", sign(jwt.SigningMethodHS256, []byte("another secret, just as long...."), good), nil, jwt.ErrTokenSignatureInvalid},
		{"HS512", sign(jwt.SigningMethodHS512, secret, good), nil, jwt.ErrTokenSignatureInvalid},
		{"none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good), nil, jwt.ErrTokenSignatureInvalid},
		{"no exp", sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "alice", IssuedAt: at(0)}), nil, jwt.ErrTokenRequiredClaimMissing},
		{"expired within the leeway", sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{ExpiresAt: at(-Leeway + time.Second)}), nil, nil},
		{"expired beyond the leeway", sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{ExpiresAt: at(-Leeway - time.Second)}), nil, jwt.ErrTokenExpired},
		{"issued in the future within the leeway", sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{IssuedAt: at(Leeway - time.Second), ExpiresAt: at(time.Hour)}), nil, nil},
		{"issued in the future beyond the leeway", sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{IssuedAt: at(Leeway + time.Second), ExpiresAt: at(time.Hour)}), nil, jwt.ErrTokenUsedBeforeIssued},
		{"not yet valid", sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{NotBefore: at(Leeway + time.Second), ExpiresAt: at(time.Hour)}), nil, jwt.ErrTokenNotValidYet},
		{"audience required and present", sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Audience: jwt.ClaimStrings{"nodes"}, ExpiresAt: at(time.Hour)}), []jwt.ParserOption{jwt.WithAudience("nodes")}, nil},
		{"audience required and absent", sign(jwt.SigningMethodHS256, secret, good), []jwt.ParserOption{jwt.WithAudience("nodes")}, jwt.ErrTokenRequiredClaimMissing},
		{"another audience", sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Audience: jwt.ClaimStrings{"users"}, ExpiresAt: at(time.Hour)}), []jwt.ParserOption{jwt.WithAudience("nodes")}, jwt.ErrTokenInvalidAudience},
		{"not a JWT", "not.a.jwt", nil, jwt.ErrTokenMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got jwt.RegisteredClaims
			err := Parse(c.tok, &got, secret, append([]jwt.ParserOption{clock}, c.extra...)...)
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}
