package bench

// Tokens for the bench's participants: signed locally with the server's
// secret (--spawn generates it, --url --secret gives it), or minted by the
// server's admin API (POST /v1/tokens with --admin-token).

import (
	"context"
	"net/http"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
)

// tokenTTL outlives any run (a long ramp included).
const tokenTTL = 12 * time.Hour

// minter issues tokens. room "" is a user session (invitations only).
type minter interface {
	token(ctx context.Context, identity, room, role string) (string, error)
}

type secretMinter struct{ t *signaling.Tokens }

func (m secretMinter) token(_ context.Context, identity, room, role string) (string, error) {
	return m.t.Issue(signaling.TokenSpec{Identity: identity, Room: room, Role: role, TTL: tokenTTL})
}

// adminMinter mints with the server's admin API (POST /v1/tokens).
type adminMinter struct{ admin *client.Admin }

func (m adminMinter) token(ctx context.Context, identity, room, role string) (string, error) {
	if room == "" {
		role = "" // a user session has no role
	}
	return m.admin.CreateToken(ctx, client.TokenRequest{Identity: identity, Room: room, Role: role, TTL: tokenTTL})
}

// newHTTPClient talks to the server directly: no proxy, short timeouts.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second},
	}
}
