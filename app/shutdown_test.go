package app

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaysfu/relayd/signaling"
)

func newTestApp(t *testing.T, webhookURL string) *App {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = udp.Close() })
	a, err := New(Options{
		Secret: []byte(secret), UDPConn: udp, LoopbackOnly: true, DataDir: t.TempDir(),
		MaxCohosts: 8, MaxRelayDestinations: 4, ReconnectGrace: 30 * time.Second, InvitationTTL: time.Minute,
		WebhookURLs: []string{webhookURL},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Whatever calls back into the App after its shutdown (a late timer, a
// PeerConnection callback) finds the webhooks closed and does nothing:
// no nil pointer (before: a.hooks was set to nil and Emit panicked), and
// under -race no race with the close.
func TestEmitAfterShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a := newTestApp(t, "http://127.0.0.1:9/hooks")
	a.Close(time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.emit("room.ended", "r", map[string]any{})
	}()
	a.emit("participant.left", "r", nil)
	<-done
}

// From Drain on, the API refuses requests (409, 4009, like a WebSocket)
// while /healthz, /readyz (503) and /metrics still answer.
func TestDrainRefusesAPIRequests(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a := newTestApp(t, "http://127.0.0.1:9/hooks")
	hs := httptest.NewServer(a.Handler)
	defer hs.Close()
	defer a.Close(time.Second)
	admin, _ := a.Tokens.Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})
	if code, _ := get(t, hs.URL+"/v1/rooms", admin); code != 200 {
		t.Fatalf("GET /v1/rooms before Drain: %d", code)
	}
	a.Drain(time.Now().Add(time.Second))
	if code, body := get(t, hs.URL+"/v1/rooms", admin); code != http.StatusConflict || !strings.Contains(string(body), `"code":4009`) {
		t.Errorf("GET /v1/rooms while draining: %d %s", code, body)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/metrics": 200} {
		if code, _ := get(t, hs.URL+path, ""); code != want {
			t.Errorf("GET %s while draining: %d, want %d", path, code, want)
		}
	}
}

// The gate of the cluster's callbacks: shut waits for the one running and
// refuses the next.
func TestCallbackGate(t *testing.T) {
	var g gate
	entered, release := make(chan struct{}), make(chan struct{})
	go g.run(func() {
		close(entered)
		<-release
	})
	<-entered
	shut := make(chan struct{})
	go func() {
		defer close(shut)
		g.shut()
	}()
	select {
	case <-shut:
		t.Fatal("shut returned while a callback ran")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	<-shut
	if g.run(func() { t.Error("a callback ran after shut") }) {
		t.Error("run reported it ran after shut")
	}
}
