package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
)

// SIGTERM (ctx cancelled) ends every room: participants get room.updated
// "ended" and a 1000 close, run returns, and no goroutine is left.
func TestGracefulShutdown(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := DefaultConfig()
	cfg.Secret = "shutdown-test-secret"
	cfg.Listen = "127.0.0.1:0"
	cfg.UDPPort = 0
	cfg.DataDir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, io.Discard, runHooks{ready: func(a string) { addrc <- a }}) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	tokens := signaling.NewTokens([]byte(cfg.Secret))
	tctx, tcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer tcancel()
	dial := func(identity, role string) *client.Client {
		tok, err := tokens.Issue(signaling.TokenSpec{Identity: identity, Room: "r", Role: role, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(tctx, "http://"+addr, tok, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Join(tctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	host := dial("alice", "host")
	defer host.Close()
	pub, err := client.NewSyntheticPublisher(client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Publish(tctx, pub.Tracks()...); err != nil {
		t.Fatal(err)
	}
	pub.Start()
	defer pub.Stop()
	viewer := dial("bob", "viewer")
	defer viewer.Close()
	if _, err := viewer.WaitTrack(tctx, "video", nil); err != nil {
		t.Fatal(err)
	}

	cancel() // what SIGTERM does through signal.NotifyContext
	if _, err := viewer.WaitNotification(tctx, "room.updated", func(p json.RawMessage) bool {
		var ev struct{ Room client.Room }
		return json.Unmarshal(p, &ev) == nil && ev.Room.Status == "ended"
	}); err != nil {
		t.Fatalf("no room.updated ended: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	for _, c := range []*client.Client{host, viewer} {
		<-c.Closed()
		if code := c.CloseCode(); code != 1000 {
			t.Errorf("close code %d, want 1000", code)
		}
	}
	pub.Stop()
	_ = host.Close()
	_ = viewer.Close()
}

// SIGTERM drains first: sessions hear server.draining, /readyz says 503
// and new sessions are refused, before any room ends; then every room ends
// at once (room.updated "ended", endReason server_shutdown, a 1000 close)
// and run returns, without waiting for the host to stop the room.
func TestDrain(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := DefaultConfig()
	cfg.Secret = "drain-test-secret"
	cfg.Listen = "127.0.0.1:0"
	cfg.UDPPort = 0
	cfg.DataDir = t.TempDir()
	cfg.DrainTimeout = time.Minute // not waited for: the rooms end at once
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drained := make(chan struct{})
	release := make(chan struct{})
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, io.Discard, runHooks{
			ready:   func(a string) { addrc <- a },
			drained: func() { close(drained); <-release },
		})
	}()
	addr := <-addrc
	tokens := signaling.NewTokens([]byte(cfg.Secret))
	tctx, tcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer tcancel()
	tok, _ := tokens.Issue(signaling.TokenSpec{Identity: "alice", Room: "r", Role: "host", TTL: time.Minute})
	host, err := client.Dial(tctx, "http://"+addr, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.Join(tctx); err != nil {
		t.Fatal(err)
	}
	pub, _ := client.NewSyntheticPublisher(client.PublisherOptions{})
	defer pub.Stop()
	if err := host.Publish(tctx, pub.Tracks()...); err != nil {
		t.Fatal(err)
	}
	pub.Start()
	if _, err := host.WaitNotification(tctx, "room.updated", nil); err != nil {
		t.Fatal(err)
	}

	cancel() // SIGTERM
	<-drained
	if _, err := host.WaitNotification(tctx, "server.draining", nil); err != nil {
		t.Fatalf("no server.draining: %v", err)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d", resp.StatusCode)
	}
	vt, _ := tokens.Issue(signaling.TokenSpec{Identity: "bob", Room: "r", Role: "viewer", TTL: time.Minute})
	if c, err := client.Dial(tctx, "http://"+addr, vt, client.Options{}); err == nil {
		c.Close()
		t.Error("a new session was accepted while draining")
	}
	start := time.Now()
	close(release)
	n, err := host.WaitNotification(tctx, "room.updated", func(p json.RawMessage) bool {
		var ev struct{ Room client.Room }
		return json.Unmarshal(p, &ev) == nil && ev.Room.Status == "ended"
	})
	if err != nil {
		t.Fatalf("no room.updated ended: %v", err)
	}
	var ev struct {
		Room struct{ EndReason string }
	}
	if _ = n.Decode(&ev); ev.Room.EndReason != "server_shutdown" {
		t.Errorf("room.updated ended: %s, want endReason server_shutdown", n.Params)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to end the room and stop", d)
	}
	<-host.Closed()
	if code := host.CloseCode(); code != 1000 {
		t.Errorf("close code %d, want 1000", code)
	}
	pub.Stop()
	_ = host.Close()
}
