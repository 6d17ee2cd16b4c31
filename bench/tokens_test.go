package bench

import (
	"context"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/relaysfu/relayd/app"
	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
)

// With --url and --admin-token, tokens come from the server's POST
// /v1/tokens: room tokens with their role, user sessions without one, all
// living tokenTTL.
func TestAdminMinter(t *testing.T) {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	a, err := app.New(app.Options{Secret: []byte("bench-minter-secret-0123456789"), UDPConn: udp, LoopbackOnly: true, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(5 * time.Second)
	hs := httptest.NewServer(a.Handler)
	defer hs.Close()
	adminTok, err := a.Tokens.Issue(signaling.TokenSpec{Identity: "operator", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	m := adminMinter{&client.Admin{BaseURL: hs.URL, Token: adminTok, HTTPClient: newHTTPClient()}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct{ identity, room, role, wantRole string }{
		{"v1", "r1", "viewer", "viewer"},
		{"h1", "r1", "host", "host"},
		{"u1", "", "viewer", ""}, // a user session
	} {
		tok, err := m.token(ctx, c.identity, c.room, c.role)
		if err != nil {
			t.Fatalf("%s: %v", c.identity, err)
		}
		claims, err := a.Tokens.Verify(tok)
		if err != nil {
			t.Fatalf("%s: %v", c.identity, err)
		}
		life := claims.ExpiresAt.Sub(claims.IssuedAt.Time)
		if claims.Identity() != c.identity || claims.Room != c.room || claims.Role != c.wantRole || life != tokenTTL {
			t.Errorf("%s: claims %+v, life %v", c.identity, claims, life)
		}
	}
	bad := adminMinter{&client.Admin{BaseURL: hs.URL, Token: "not-admin", HTTPClient: newHTTPClient()}}
	if _, err := bad.token(ctx, "x", "r1", "viewer"); client.ErrorCode(err) != client.CodeUnauthenticated {
		t.Errorf("a bad admin token: %v", err)
	}
}
