package bench

// Tokens for the bench's participants: signed locally with the server's
// secret (--spawn generates it, --url --secret gives it), or minted by the
// server's admin API (POST /v1/tokens with --admin-token).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

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

// adminMinter calls POST /v1/tokens.
type adminMinter struct {
	base  string
	admin string
	hc    *http.Client
}

func (m adminMinter) token(ctx context.Context, identity, room, role string) (string, error) {
	body := map[string]string{"identity": identity, "ttl": tokenTTL.String()}
	if room != "" {
		body["room"], body["role"] = room, role
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(m.base, "/")+"/v1/tokens", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+m.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST /v1/tokens: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /v1/tokens: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("POST /v1/tokens: no token in %q", raw)
	}
	return out.Token, nil
}

// newHTTPClient talks to the server directly: no proxy, short timeouts.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second},
	}
}
