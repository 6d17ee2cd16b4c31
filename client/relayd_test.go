package client_test

// An in-process relayd for the examples and the tests of this package: the
// same stack the binary runs (app.New), on loopback.

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"time"

	"github.com/relaysfu/relayd/app"
	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
)

// runRelayd starts a relayd in this process, as `relayd --dev` runs one on
// a single machine, and returns its base URL, an admin token (the one
// `relayd --dev` prints) and a function that stops it and removes its data.
// It stands for the server an application talks to; the examples do not
// depend on it being in-process.
func runRelayd() (baseURL, adminToken string, stop func()) {
	dir, err := os.MkdirTemp("", "relayd-client-example-")
	if err != nil {
		log.Fatal(err)
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	a, err := app.New(app.Options{
		Secret: []byte("client-example-secret-0123456789"), UDPConn: udp, LoopbackOnly: true,
		DataDir: dir, MaxCohosts: 8, MaxRelayDestinations: 4,
		ReconnectGrace: 30 * time.Second, InvitationTTL: 10 * time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	hs := httptest.NewServer(a.Handler)
	tok, err := a.Tokens.Issue(signaling.TokenSpec{Identity: "operator", Admin: true})
	if err != nil {
		log.Fatal(err)
	}
	return hs.URL, tok, func() {
		a.Close(5 * time.Second)
		hs.Close()
		_ = udp.Close()
		_ = os.RemoveAll(dir)
	}
}

// connect does what Example shows: it mints a token with the admin API (an
// application's back end would), dials and joins. It returns the client
// and its join result.
func connect(ctx context.Context, admin *client.Admin, identity, room, role string) (*client.Client, *client.JoinResult) {
	token, err := admin.CreateToken(ctx, client.TokenRequest{Identity: identity, Room: room, Role: role})
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.Dial(ctx, admin.BaseURL, token, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	joined, err := c.Join(ctx)
	if err != nil {
		log.Fatal(err)
	}
	return c, joined
}

// start runs a relayd for one example or test: it returns a context that
// bounds the example's calls, an Admin of the server, and a function that
// stops both.
func start() (context.Context, *client.Admin, func()) {
	baseURL, adminToken, stop := runRelayd()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	return ctx, &client.Admin{BaseURL: baseURL, Token: adminToken}, func() {
		cancel()
		stop()
	}
}

// createRooms creates idle rooms of that host with Admin.CreateRoom (as
// ExampleAdmin shows).
func createRooms(ctx context.Context, admin *client.Admin, host string, rooms ...string) {
	for _, room := range rooms {
		if _, err := admin.CreateRoom(ctx, client.CreateRoomRequest{Name: room, Host: host}); err != nil {
			log.Fatal(err)
		}
	}
}

// publish does what ExampleClient_Publish shows: it publishes a synthetic
// source on c and starts it. The caller stops it.
func publish(ctx context.Context, c *client.Client, opts client.PublisherOptions) *client.SyntheticPublisher {
	src, err := client.NewSyntheticPublisher(opts)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Publish(ctx, src.Tracks()...); err != nil {
		log.Fatal(err)
	}
	src.Start()
	return src
}

// waitUntil polls cond (RemoteTrack's counters, say) until it holds; it
// fails when ctx ends first.
func waitUntil(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
