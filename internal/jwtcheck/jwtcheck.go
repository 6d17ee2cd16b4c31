// Package jwtcheck is the one way relayd checks the JWTs it accepts:
// participant and admin tokens (signaling) and the node-to-node link
// tokens of cluster mode (relay). Each caller adds its own claims and
// checks; the algorithm, the required expiry and the clock leeway are
// decided here, once.
package jwtcheck

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Leeway is the clock skew tolerated on exp, nbf and iat. Tokens are often
// minted on another machine (an app back end, another node): if its clock
// is a second or two ahead of ours, a token used at once would otherwise be
// refused as "issued in the future". 5 s covers NTP-synced hosts without
// meaningfully extending a token's life.
const Leeway = 5 * time.Second

// Parse checks tok's signature with secret and its times, and decodes its
// claims into claims. Only HS256 is accepted (so neither "none" nor a
// public-key algorithm can be smuggled in), exp is required, and iat may
// not be in the future (beyond Leeway). extra adds the caller's own checks
// (an audience, a clock for tests). Errors are jwt's (errors.Is with
// jwt.ErrTokenExpired, jwt.ErrTokenSignatureInvalid, ...). The signature is
// checked before the times, so an expired token really was signed with
// secret.
func Parse(tok string, claims jwt.Claims, secret []byte, extra ...jwt.ParserOption) error {
	opts := append([]jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
	}, extra...)
	_, err := jwt.NewParser(opts...).ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) {
		return secret, nil
	})
	return err
}
