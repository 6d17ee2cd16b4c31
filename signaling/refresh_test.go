package signaling

// Token refresh (1.1 §6): when it comes, what it carries, what an
// expired token gets, a broadcast outliving its token.

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
)

// The refresh schedule (1.1 §6): 80% of L or 10 min before exp, whichever
// is first, never before 50% of L.
func TestRefreshAt(t *testing.T) {
	iat := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		life, want time.Duration
	}{
		{60 * time.Second, 30 * time.Second}, // the contract's example: 50% wins
		{10 * time.Minute, 5 * time.Minute},
		{20 * time.Minute, 10 * time.Minute},      // 80% = 16 min, 10 min before = 10 min = 50%
		{30 * time.Minute, 20 * time.Minute},      // 10 min before exp
		{50 * time.Minute, 40 * time.Minute},      // 80% = 40 = 10 min before
		{time.Hour, 48 * time.Minute},             // 80%
		{24 * time.Hour, 24 * time.Hour * 8 / 10}, // 80% comes first
		{0, 0},
	} {
		if got := refreshAt(iat, iat.Add(tc.life)).Sub(iat); got != tc.want {
			t.Errorf("L %v: refresh at %v, want %v", tc.life, got, tc.want)
		}
	}
}

// token.refresh (1.1 §6): a 10 s token is refreshed at 5 s (50%% of its
// life), with the same claims and a life of 10 s from now; a 1.0 session
// gets none. A refresh due while held is replayed at the resume.
func TestTokenRefresh(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	issue := func(identity string, ttl time.Duration) string {
		tok, err := ts.Tokens.Issue(TokenSpec{Identity: identity, Room: "room-" + identity, Role: "host", Name: "Alice", TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tok := issue("alice", 10*time.Second)
	claims, _ := ts.Tokens.Verify(tok)
	c, err := client.Dial(ctx, ts.URL, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.JoinWith(ctx, client.JoinParams{Version: "1.1"}); err != nil {
		t.Fatal(err)
	}
	v10, _ := ts.join(t, "bob", "room-alice", "viewer")
	ev, err := client.WaitEvent[client.TokenRefreshEvent](ctx, c, client.NotifyTokenRefresh, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Since(claims.IssuedAt.Time)
	if at < 4*time.Second || at > 6*time.Second+500*time.Millisecond {
		t.Errorf("a 10 s token refreshed %v after its iat, want 5 s", at)
	}
	nc, err := ts.Tokens.Verify(ev.Token)
	if err != nil {
		t.Fatalf("the new token: %v", err)
	}
	if nc.Identity() != "alice" || nc.Room != "room-alice" || nc.Role != "host" || nc.Name != "Alice" ||
		nc.ExpiresAt.Sub(nc.IssuedAt.Time) != 10*time.Second || !nc.ExpiresAt.Time.Equal(ev.ExpiresAt) || ev.ICEServers == nil {
		t.Errorf("refreshed token %+v, event %+v", nc, ev)
	}
	if c.Token() != ev.Token {
		t.Error("the client did not keep the new token")
	}
	noNote(t, v10, "token.refresh", nil, 10*time.Millisecond)

	// Due while held (a 4 s token: at 2 s): replayed at the resume.
	h, err := client.Dial(ctx, ts.URL, issue("carol", 4*time.Second), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.JoinWith(ctx, client.JoinParams{Version: "1.1"}); err != nil {
		t.Fatal(err)
	}
	h.DropSocket()
	time.Sleep(2500 * time.Millisecond)
	if res, err := h.Resume(ctx, client.ResumeOptions{}); err != nil || !res.Resumed {
		t.Fatalf("resume: %+v %v", res, err)
	}
	if n := waitNote(t, h, "token.refresh", nil); n.Seq == 0 {
		t.Error("a replayed token.refresh without a seq")
	}
}

// An expired token cannot resume nor rejoin: HTTP 401 (1.1 §6); the
// session it opened ran on until then.
func TestExpiredTokenResumeIs401(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	tok, err := ts.Tokens.Issue(TokenSpec{Identity: "alice", Room: "r1", Role: "host", TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, ts.URL, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.JoinWith(ctx, client.JoinParams{Version: "1.1"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second + tokenLeeway + time.Second)
	if _, err := c.SendChat(ctx, "still here"); err != nil {
		t.Fatalf("the session after its token expired: %v", err)
	}
	c.DropSocket()
	_, err = c.Resume(ctx, client.ResumeOptions{Token: tok})
	var he *client.HTTPError
	if !errors.As(err, &he) || he.Status != 401 {
		t.Fatalf("resume with an expired token: %v, want HTTP 401", err)
	}
}

// A broadcast running past its token's expiry keeps going (1.1 §6): the
// host's 2 s token is refreshed every second; 8 s on (past its exp and
// the leeway) its viewer still gets media, the first token is refused
// (401) and the host resumes with the newest one. A recording of it is
// one file across the resume.
func TestBroadcastPastTokenExpiry(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	first, err := ts.Tokens.Issue(TokenSpec{Identity: "alice", Room: "r1", Role: "host", TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	host, err := client.Dial(ctx, ts.URL, first, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.JoinWith(ctx, client.JoinParams{Version: "1.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := host.SetRecording(ctx, true); err != nil {
		t.Fatal(err)
	}
	publish(t, host)
	viewer, _ := ts.join11(t, "bob", "r1", "viewer")
	tr := receiving(t, viewer, "video", 10)
	time.Sleep(2*time.Second + tokenLeeway + time.Second)
	if _, err := client.Dial(ctx, ts.URL, first, client.Options{}); err == nil {
		t.Fatal("the first token still opens a socket after its exp")
	}
	before := tr.Packets()
	time.Sleep(300 * time.Millisecond)
	if tr.Packets() == before {
		t.Fatal("no media past the token's expiry")
	}
	if host.Token() == first {
		t.Fatal("no token.refresh")
	}
	host.DropSocket()
	res, err := host.Resume(ctx, client.ResumeOptions{})
	if err != nil || !res.Resumed {
		t.Fatalf("a resume late in the broadcast: %+v %v", res, err)
	}
	flowsAgain(t, tr, tr.Keyframes(), tr.Packets(), 5*time.Second)
	if err := host.StopRoom(ctx); err != nil {
		t.Fatal(err)
	}
	admin := ts.admin(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := admin.Room(ctx, "r1")
		if err == nil && got.Status == "recorded" {
			if len(got.Recordings) != 1 || got.Recordings[0].Participant != "alice" {
				t.Fatalf("recordings across a resume: %+v", got.Recordings)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the room after the end: %+v %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A token whose refresh time has already passed at the join (a 60 s token
// issued 50 s ago) is refreshed right after the join result: the first
// notification.
func TestTokenRefreshDueAtJoin(t *testing.T) {
	ts := newTestServer(t)
	past := NewTokens([]byte("test-secret-0123456789")) // the test server's secret
	past.now = func() time.Time { return time.Now().Add(-50 * time.Second) }
	tok, err := past.Issue(TokenSpec{Identity: "alice", Room: "r1", Role: "host", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c := ts.dialRaw(t, tok)
	joinFirst(t, c, `{"version":"1.1"}`)
	f := c.readN(1)[0]
	var m string
	_ = json.Unmarshal(f["method"], &m)
	if m != "token.refresh" || seqOf(f) != 1 {
		t.Fatalf("the first frame after the result: %v", f)
	}
}
