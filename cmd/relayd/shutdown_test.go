package main

// SIGTERM of the real (race-built under -race) binary while a room waits
// for its vanished host, a relay runs and every room is recorded: the
// process ends every room at once and exits 0 well within 15s, with no
// race and no panic, logs nothing after "stopped", and loses nothing: a
// new process on the same data dir (and Redis) has the rooms ended with
// endReason server_shutdown, the pending invitation cancelled, the
// recordings finished and listed, and the webhooks kept in the outbox
// reach the receiver.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/internal/redistest"
	"github.com/relaysfu/relayd/signaling"
	"github.com/relaysfu/relayd/webhooks"
)

func TestSIGTERMSingleNode(t *testing.T) { testSIGTERM(t, false) }

func TestSIGTERMCluster(t *testing.T) { testSIGTERM(t, true) }

func testSIGTERM(t *testing.T, cluster bool) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildRelayd(t)
	hooks := &hookReceiver{}
	hs := httptest.NewServer(hooks)
	defer hs.Close()
	args := []string{
		"--secret", restartSecret, "--listen", "127.0.0.1:0", "--udp-port", "0", "--data-dir", t.TempDir(),
		"--record", "--webhook-url", hs.URL, "--reconnect-grace", "5m", "--log-level", "debug",
	}
	if cluster {
		rs := redistest.Start(t)
		args = append(args, "--redis", rs.URL, "--node-id", "node-1")
	}
	p := spawnRelayd(t, bin, args...)
	base := "http://" + p.addr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tokens := signaling.NewTokens([]byte(restartSecret))
	token := func(identity, room, role string) string {
		tok, err := tokens.Issue(signaling.TokenSpec{Identity: identity, Room: room, Role: role, Name: identity, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	dial := func(identity, room, role string) *client.Client {
		t.Helper()
		c, err := client.Dial(ctx, base, token(identity, room, role), client.Options{})
		if err != nil {
			t.Fatalf("%s dials: %v", identity, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := c.Join(ctx); err != nil {
			t.Fatalf("%s joins %s: %v", identity, room, err)
		}
		return c
	}

	// (a) Room "grace": alice goes live (vic watches, her media is
	// recorded), carol is invited, and alice vanishes: waiting_reconnect
	// for 5 minutes.
	alice := dial("alice", "grace", "host")
	pubA := publishSynthetic(t, ctx, alice)
	waitNotification(t, ctx, alice, "alice", client.NotifyRoomUpdated, roomStatus("live"))
	vic := dial("vic", "grace", "viewer")
	receive(t, ctx, vic, "vic", "video", "alice", 60)
	if code, inv := api(t, "POST", base+"/v1/rooms/grace/invitations", `{"user":"carol"}`); code != 201 || inv["status"] != "pending" {
		t.Fatalf("invite carol: %d %v", code, inv)
	}
	pubA.Stop()
	_ = alice.Close()
	waitNotification(t, ctx, vic, "vic", client.NotifyRoomUpdated, roomStatus("waiting_reconnect"))

	// (b) Room "show": bob, live, relays into dave's room "stage", where
	// he is an accepted co-host.
	dave := dial("dave", "stage", "host")
	code, inv := api(t, "POST", base+"/v1/rooms/stage/invitations", `{"user":"bob"}`)
	if code != 201 {
		t.Fatalf("invite bob: %d %v", code, inv)
	}
	if code, acc := api(t, "POST", base+"/v1/invitations/"+inv["id"].(string)+"/accept", ""); code != 200 || acc["status"] != "accepted" {
		t.Fatalf("accept: %d %v", code, acc)
	}
	bob := dial("bob", "show", "host")
	publishSynthetic(t, ctx, bob)
	waitNotification(t, ctx, bob, "bob", client.NotifyRoomUpdated, roomStatus("live"))
	if _, err := bob.StartRelay(ctx, []client.RelayTarget{{Room: "stage", Token: token("bob", "stage", "viewer")}}); err != nil {
		t.Fatalf("relay.start: %v", err)
	}
	waitNotification(t, ctx, bob, "bob", client.NotifyRelayState, func(raw json.RawMessage) bool {
		var ev client.RelayStateEvent
		return json.Unmarshal(raw, &ev) == nil && ev.State == "running"
	})
	receive(t, ctx, dave, "dave", "video", "bob", 60)

	// SIGTERM: every room ends at once, its participants told why, and
	// the process exits 0.
	stopped := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		c   *client.Client
		who string
	}{{vic, "vic"}, {bob, "bob"}, {dave, "dave"}} {
		n := waitNotification(t, ctx, x.c, x.who, client.NotifyRoomUpdated, roomStatus("ended"))
		var ev struct {
			Room struct{ EndReason string }
		}
		if _ = n.Decode(&ev); ev.Room.EndReason != "server_shutdown" {
			t.Errorf("%s: room.updated %s, want endReason server_shutdown", x.who, n.Params)
		}
		select {
		case <-x.c.Closed():
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: not closed", x.who)
		}
		if code := x.c.CloseCode(); code != 1000 {
			t.Errorf("%s: close code %d, want 1000", x.who, code)
		}
	}
	select {
	case <-p.exited:
	case <-time.After(15*time.Second - time.Since(stopped)):
		t.Fatalf("relayd still running %v after SIGTERM", time.Since(stopped).Round(time.Millisecond))
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("relayd exited with %v, want 0", err)
	}
	t.Logf("relayd exited %v after SIGTERM", time.Since(stopped).Round(time.Millisecond))
	checkStopLog(t, p.log)

	// A new process on the same data dir (and Redis): nothing was lost.
	p2 := spawnRelayd(t, bin, args...)
	base2 := "http://" + p2.addr
	for _, room := range []string{"grace", "show", "stage"} {
		code, info := api(t, "GET", base2+"/v1/rooms/"+room, "")
		if code != 200 || info["status"] != "recorded" || info["endReason"] != "server_shutdown" {
			t.Errorf("room %s after the restart: %d %v, want recorded with endReason server_shutdown", room, code, info)
		}
		code, list := api(t, "GET", base2+"/v1/rooms/"+room+"/recordings", "")
		recs, _ := list["recordings"].([]any)
		if code != 200 || len(recs) == 0 {
			t.Errorf("recordings of %s after the restart: %d %v", room, code, list)
		}
		for _, r := range recs {
			if m, _ := r.(map[string]any); m["size"].(float64) <= 0 || m["duration"].(float64) <= 0 {
				t.Errorf("recording of %s: %v", room, m)
			}
		}
	}
	code, list := api(t, "GET", base2+"/v1/users/carol/invitations", "")
	invs, _ := list["invitations"].([]any)
	if code != 200 || len(invs) != 1 || invs[0].(map[string]any)["status"] != "cancelled" {
		t.Errorf("carol's invitations after the restart: %d %v, want one, cancelled", code, list)
	}

	// The outbox kept what the stopping process emitted: the receiver
	// has it (now or from the new process).
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := hooks.missing()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks never received: %v\ngot: %v", missing, hooks.summary())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkStopLog fails t on a race report or a panic in the log, or on any
// line after "stopped".
func checkStopLog(t *testing.T, l *procLog) {
	t.Helper()
	l.mu.Lock()
	lines := slices.Clone(l.lines)
	l.mu.Unlock()
	stopped := -1
	for i, s := range lines {
		if strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic") {
			t.Errorf("relayd log: %s", s)
		}
		if strings.Contains(s, "msg=stopped") {
			stopped = i
		}
	}
	switch {
	case stopped < 0:
		t.Errorf("relayd never logged stopped")
	case stopped != len(lines)-1:
		t.Errorf("relayd logged after stopped:\n%s", strings.Join(lines[stopped+1:], "\n"))
	}
}

func waitNotification(t *testing.T, ctx context.Context, c *client.Client, who, method string, match func(json.RawMessage) bool) client.Notification {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	n, err := c.WaitNotification(wctx, method, match)
	if err != nil {
		t.Fatalf("%s: no %s: %v", who, method, err)
	}
	return n
}

// receive waits until c has n packets of publisher's track of kind.
func receive(t *testing.T, ctx context.Context, c *client.Client, who, kind, publisher string, n int) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tr, err := c.WaitTrack(wctx, kind, func(r *client.RemoteTrack) bool { return r.StreamID == publisher })
	if err != nil {
		t.Fatalf("%s: no %s track of %s: %v", who, kind, publisher, err)
	}
	for tr.Packets() < n {
		if wctx.Err() != nil {
			t.Fatalf("%s: %d packets of %s's %s, want %d", who, tr.Packets(), publisher, kind, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hookReceiver is a loopback webhook receiver: it keeps the events whose
// signature checks out.
type hookReceiver struct {
	mu     sync.Mutex
	events []webhooks.Event
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !webhooks.Verify([]byte(restartSecret), body, r.Header.Get(webhooks.HeaderSignature)) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev webhooks.Event
	if json.Unmarshal(body, &ev) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// key names an event by type, room and the data that matters here.
func hookKey(ev webhooks.Event) string {
	var d struct {
		EndReason  string `json:"endReason"`
		Status     string `json:"status"`
		Invitation struct {
			User string `json:"user"`
		} `json:"invitation"`
	}
	_ = json.Unmarshal(ev.Data, &d)
	switch ev.Type {
	case webhooks.TypeRoomEnded:
		return fmt.Sprintf("%s %s %s", ev.Type, ev.Room, d.EndReason)
	case webhooks.TypeInvitationUpdated:
		return fmt.Sprintf("%s %s %s %s", ev.Type, ev.Room, d.Invitation.User, d.Status)
	}
	return ev.Type + " " + ev.Room
}

// missing lists the events of the shutdown not received yet.
func (h *hookReceiver) missing() []string {
	want := []string{
		"room.ended grace server_shutdown", "room.ended show server_shutdown", "room.ended stage server_shutdown",
		"invitation.updated grace carol cancelled",
		"recording.completed grace", "recording.completed show", "recording.completed stage",
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, w := range want {
		if !slices.ContainsFunc(h.events, func(ev webhooks.Event) bool { return hookKey(ev) == w }) {
			out = append(out, w)
		}
	}
	return out
}

func (h *hookReceiver) summary() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		out = append(out, hookKey(ev))
	}
	return out
}
