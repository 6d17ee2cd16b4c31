package app

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
	"github.com/relaysfu/relayd/webhooks"
)

// all returns the received events of a type, in arrival order.
func (rc *receiver) all(typ string) []webhooks.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []webhooks.Event
	for _, ev := range rc.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// The room --dev prints links to is reusable: a host goes live in it,
// ends, the server restarts, and the host goes live again in the same
// room (its next broadcast, PROTOCOL.md 1.1 §1a). Both broadcasts are
// listed; the webhooks tell room.started once per broadcast and room.ended
// with the broadcast's id and its endReason.
func TestRoomReusableAcrossRestart(t *testing.T) {
	rc := &receiver{t: t}
	hooks := httptest.NewServer(rc)
	defer hooks.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := func() (*App, *httptest.Server, func()) {
		udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(Options{
			Secret: []byte(secret), UDPConn: udp, LoopbackOnly: true, DataDir: dir, Dev: true,
			MaxCohosts: 8, MaxRelayDestinations: 4, ReconnectGrace: 30 * time.Second, InvitationTTL: time.Minute,
			WebhookURLs: []string{hooks.URL},
		})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(a.Handler)
		return a, hs, func() { a.Close(5 * time.Second); hs.Close(); _ = udp.Close() }
	}
	goLive := func(a *App, hs *httptest.Server) (*client.Client, *client.JoinResult) {
		tok, _ := a.Tokens.Issue(signaling.TokenSpec{Identity: "alice", Room: "demo", Role: "host", TTL: time.Hour})
		host, err := client.Dial(ctx, hs.URL, tok, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = host.Close() })
		res, err := host.JoinWith(ctx, client.JoinParams{Version: "1.1"})
		if err != nil {
			t.Fatal(err)
		}
		pub, err := client.NewSyntheticPublisher(client.PublisherOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pub.Stop)
		if err := host.Publish(ctx, pub.Tracks()...); err != nil {
			t.Fatal(err)
		}
		pub.Start()
		if _, err := client.WaitEvent(ctx, host, client.NotifyRoomUpdated, func(ev client.RoomEvent) bool { return ev.Room.Status == "live" }); err != nil {
			t.Fatal(err)
		}
		return host, res
	}
	waitHooks := func(typ string, n int) []webhooks.Event {
		for {
			if evs := rc.all(typ); len(evs) >= n {
				return evs
			}
			if ctx.Err() != nil {
				t.Fatalf("%d %s webhooks, want %d", len(rc.all(typ)), typ, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	a, hs, stop := start()
	host, first := goLive(a, hs)
	if err := host.StopRoom(ctx); err != nil {
		t.Fatal(err)
	}
	waitHooks("room.ended", 1)
	stop()

	a, hs, stop = start()
	defer stop()
	_, next := goLive(a, hs)
	if next.Room.BroadcastID == first.Room.BroadcastID || !next.Room.CreatedAt.Equal(first.Room.CreatedAt) {
		t.Fatalf("after the restart: %+v, first %+v", next.Room, first.Room)
	}
	started := waitHooks("room.started", 2)
	var ids []string
	for _, ev := range started {
		var d struct {
			Host, BroadcastID string
		}
		_ = json.Unmarshal(ev.Data, &d)
		ids = append(ids, d.BroadcastID)
	}
	if len(started) != 2 || ids[0] != first.Room.BroadcastID || ids[1] != next.Room.BroadcastID {
		t.Errorf("room.started webhooks for broadcasts %v, want %s then %s", ids, first.Room.BroadcastID, next.Room.BroadcastID)
	}
	var ended struct {
		BroadcastID string `json:"broadcastId"`
		EndReason   string `json:"endReason"`
	}
	_ = json.Unmarshal(rc.all("room.ended")[0].Data, &ended)
	if ended.BroadcastID != first.Room.BroadcastID || ended.EndReason != "host_left" {
		t.Errorf("room.ended data %+v", ended)
	}
	admin, _ := a.Tokens.Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})
	list, err := (&client.Admin{BaseURL: hs.URL, Token: admin}).Broadcasts(ctx, "demo")
	if err != nil || len(list) != 2 || list[0].EndReason != "host_left" || list[1].Status != "live" {
		t.Fatalf("broadcasts: %+v %v", list, err)
	}
}
