package signaling

// Token refresh (PROTOCOL.md 1.1 §6): a 1.1 session gets token.refresh
// {token, expiresAt, iceServers} before its token expires, so that a
// broadcast longer than its token's life, and a resume late in it, keep
// working. The new token has the same claims, iat now and exp now + L
// (L = exp - iat of the token it replaces); the next refresh is scheduled
// from it. A refresh due while the session is held is queued as any
// notification: the resume replays it. refreshAt decides when (a pure
// function, table-tested).

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// refreshBefore is how long before exp a long-lived token is refreshed at
// the latest: 10 minutes leaves a client on a bad network many tries.
const refreshBefore = 10 * time.Minute

// refreshAt returns when to send the refresh of a token issued at iat
// that expires at exp: at 80% of its life L or refreshBefore before exp,
// whichever is first, but never before 50% of L (a token shorter than
// 20 minutes would otherwise be refreshed at once, and its successor
// too, without end). A time already past means: right away.
func refreshAt(iat, exp time.Time) time.Time {
	l := exp.Sub(iat)
	if l <= 0 {
		return iat
	}
	at := iat.Add(l * 8 / 10)
	if last := exp.Add(-refreshBefore); last.Before(at) {
		at = last
	}
	if floor := iat.Add(l / 2); at.Before(floor) {
		at = floor
	}
	return at
}

// tokenLife returns the iat and exp of c: iat from the token, else its
// nbf, else joined (a token without iat: its life is counted from the
// join).
func tokenLife(c *Claims, joined time.Time) (iat, exp time.Time) {
	iat = joined
	switch {
	case c.IssuedAt != nil:
		iat = c.IssuedAt.Time
	case c.NotBefore != nil:
		iat = c.NotBefore.Time
	}
	if c.ExpiresAt != nil {
		exp = c.ExpiresAt.Time
	}
	return iat, exp
}

// Reissue signs a token with c's claims, issued at now and valid for
// life: a refreshed session token.
func (t *Tokens) Reissue(c *Claims, now time.Time, life time.Duration) (string, *Claims, error) {
	nc := *c
	nc.IssuedAt = jwt.NewNumericDate(now)
	nc.ExpiresAt = jwt.NewNumericDate(now.Add(life))
	if err := nc.check(); err != nil {
		return "", nil, err
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, &nc).SignedString(t.secret)
	if err != nil {
		return "", nil, err
	}
	return tok, &nc, nil
}

// tokenRefreshParams are token.refresh's params.
type tokenRefreshParams struct {
	Token      string      `json:"token"`
	ExpiresAt  string      `json:"expiresAt"`
	ICEServers []ICEServer `json:"iceServers"`
}

// scheduleRefresh arms the refresh of the session's token c (joined: the
// session's join time, for a token without iat).
func (s *session) scheduleRefresh(c *Claims, joined time.Time) {
	iat, exp := tokenLife(c, joined)
	s.armRefresh(c, iat, exp)
}

// armRefresh arms the refresh of c, a token whose life runs from iat to
// exp.
func (s *session) armRefresh(c *Claims, iat, exp time.Time) {
	if exp.IsZero() {
		return
	}
	d := max(time.Until(refreshAt(iat, exp)), 0)
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.state == stMoved || s.state == stEnded {
		return
	}
	if s.refresh != nil {
		s.refresh.Stop()
	}
	s.refreshClaims = c
	s.refresh = time.AfterFunc(d, s.refreshDue)
}

// refreshDue sends token.refresh (held: it is kept for the replay) and
// arms the next one.
func (s *session) refreshDue() {
	s.hmu.Lock()
	c := s.refreshClaims
	live := s.state != stMoved && s.state != stEnded
	s.refresh = nil
	s.hmu.Unlock()
	if !live || c == nil {
		return
	}
	iat, exp := tokenLife(c, time.Now())
	now, life := time.Now(), exp.Sub(iat)
	tok, nc, err := s.srv.tokens.Reissue(c, now, life)
	if err != nil {
		s.log.Error("token refresh", "err", err)
		return
	}
	s.notify("token.refresh", tokenRefreshParams{
		Token: tok, ExpiresAt: nc.ExpiresAt.UTC().Format(time.RFC3339), ICEServers: s.srv.iceServers(nc),
	})
	s.srv.metrics.Resume.TokenRefreshes.Inc()
	// The next one counts from now, not from the new token's iat: a JWT's
	// times are whole seconds, so its iat is up to a second before now,
	// and a token of a second or two (refreshed at half its life) would be
	// due again at once, and its successor too, until the second turned:
	// a flood of token.refresh that filled the session's queue.
	s.armRefresh(nc, now, now.Add(life))
}
