package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/relaysfu/relayd/internal/jwtcheck"
)

// Token errors. Verify's errors wrap exactly one of them; both mean 4001
// (unauthenticated) on the wire, but a client can renew an expired token
// whereas an invalid one needs fixing.
var (
	ErrTokenExpired = errors.New("token expired")
	ErrTokenInvalid = errors.New("token invalid")
)

const (
	// defaultTokenTTL is the lifetime of a token issued without one.
	defaultTokenTTL = time.Hour

	// tokenLeeway is the clock skew tolerated on exp, nbf and iat (see
	// jwtcheck.Leeway).
	tokenLeeway = jwtcheck.Leeway

	// maxTokenNameLen is the longest identity or room name, in bytes (the
	// alphabet is ASCII, so also in characters).
	maxTokenNameLen = 128
)

// Claims are a relayd token's claims (PROTOCOL.md "Tokens"). A token with a
// room needs a role; one without (a user session, or an admin token) may
// omit it. A token never names a co-host: that role only comes from an
// accepted invitation.
type Claims struct {
	Room  string `json:"room,omitempty"` // absent: a user session (invitations only)
	Role  string `json:"role,omitempty"` // "host" | "viewer"
	Name  string `json:"name,omitempty"` // display name
	Admin bool   `json:"admin,omitempty"`

	// Subject is the identity; ExpiresAt is required.
	jwt.RegisteredClaims
}

// UnmarshalJSON decodes the claims, refusing an exp, nbf or iat that is
// not a JSON number: RFC 7519 makes them NumericDates, but jwt's decoder
// also takes a string holding a number ("exp": "1700000000").
func (c *Claims) UnmarshalJSON(b []byte) error {
	var times struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(b, &times); err != nil {
		return err
	}
	for _, t := range []struct {
		name string
		raw  json.RawMessage
	}{{"exp", times.Exp}, {"nbf", times.Nbf}, {"iat", times.Iat}} {
		if t.raw != nil && !isJSONNumber(t.raw) {
			return fmt.Errorf("%s: want a NumericDate, a JSON number of seconds", t.name)
		}
	}
	type plain Claims // the same fields, without this method
	return json.Unmarshal(b, (*plain)(c))
}

// isJSONNumber reports whether raw, a valid JSON value, is a number.
func isJSONNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9')
}

// Identity returns the token's identity, its sub claim.
func (c *Claims) Identity() string { return c.Subject }

// check applies relayd's own rules on top of the registered claims: the
// identity and room alphabet, and the role a room needs.
func (c *Claims) check() error {
	if !ValidName(c.Subject) {
		return fmt.Errorf("sub %q: want 1-%d of [A-Za-z0-9_.:@-]", c.Subject, maxTokenNameLen)
	}
	switch {
	case c.Room != "":
		if !ValidName(c.Room) {
			return fmt.Errorf("room %q: want 1-%d of [A-Za-z0-9_.:@-]", c.Room, maxTokenNameLen)
		}
		if !validTokenRole(c.Role) {
			return fmt.Errorf("role %q: a room token needs host or viewer", c.Role)
		}
	case c.Role != "" && !validTokenRole(c.Role):
		// A user session (or admin token) needs no role, but a role it
		// does carry must still be a known one.
		return fmt.Errorf("role %q: want host or viewer", c.Role)
	}
	return nil
}

// validTokenRole reports whether a token may carry role.
func validTokenRole(role string) bool { return role == "host" || role == "viewer" }

// TokenSpec describes a token to issue.
type TokenSpec struct {
	Identity string
	Room     string // empty: a user session
	Role     string // "host" or "viewer"; required with Room
	Name     string
	Admin    bool
	TTL      time.Duration // 0: one hour
}

// Tokens issues and verifies HS256 tokens with one secret. It is safe for
// concurrent use.
type Tokens struct {
	secret []byte
	now    func() time.Time // time.Now; replaced in tests
}

// NewTokens returns a Tokens signing with secret, which it copies. An empty
// secret makes every Issue and Verify fail: HMAC with an empty key would let
// anyone mint tokens.
func NewTokens(secret []byte) *Tokens {
	return &Tokens{secret: append([]byte(nil), secret...), now: time.Now}
}

// Issue signs a token for s. It refuses what Verify would refuse, so a token
// it returns is valid until it expires. It sets iat to now and exp to now +
// s.TTL.
func (t *Tokens) Issue(s TokenSpec) (string, error) {
	if len(t.secret) == 0 {
		return "", errors.New("issue token: empty secret")
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = defaultTokenTTL
	}
	if ttl < 0 {
		return "", fmt.Errorf("issue token: negative ttl %v", ttl)
	}
	now := t.now() // jwt.NewNumericDate truncates to whole seconds
	c := &Claims{
		Room:  s.Room,
		Role:  s.Role,
		Name:  s.Name,
		Admin: s.Admin,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   s.Identity,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	if err := c.check(); err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return tok, nil
}

// Verify checks tok's signature, times and claims and returns its claims.
// Only HS256 is accepted (so neither "none" nor a public-key algorithm can be
// smuggled in), and exp is required. The error wraps ErrTokenExpired when a
// correctly signed token is past its exp, and ErrTokenInvalid otherwise.
func (t *Tokens) Verify(tok string) (*Claims, error) {
	if len(t.secret) == 0 {
		return nil, fmt.Errorf("%w: empty secret", ErrTokenInvalid)
	}
	var c Claims
	err := jwtcheck.Parse(tok, &c, t.secret, jwt.WithTimeFunc(t.now))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		// The parser checks the signature before the times, so this
		// token really is ours.
		return nil, fmt.Errorf("%w: %w", ErrTokenExpired, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	return &c, nil
}

// ValidName reports whether s is a valid identity or room name: 1-128
// characters of [A-Za-z0-9_.:@-].
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > maxTokenNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == ':', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}
