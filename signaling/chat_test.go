package signaling

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/rooms"
)

type historyResult struct {
	Messages []client.Message `json:"messages"`
}

// Three participants chat at once: each gets every other's message, none
// of its own, and all in the one order of the room (ids increase).
func TestChatOrderOfDelivery(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	v1, _ := ts.join(t, "bob", "r1", "viewer")
	v2, _ := ts.join(t, "carol", "r1", "viewer")
	clients := []*client.Client{host, v1, v2}
	const each = 8
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *client.Client) {
			defer wg.Done()
			for j := 0; j < each; j++ {
				var m client.Message
				if err := c.Call(testCtx(t), "chat.send", map[string]string{"text": strings.Repeat("<b>", i) + "hi"}, &m); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}(i, c)
	}
	wg.Wait()
	for i, c := range clients {
		var last string
		for n := 0; n < each*2; n++ {
			note := waitNote(t, c, "chat.message", nil)
			var ev struct{ Message client.Message }
			_ = json.Unmarshal(note.Params, &ev)
			if ev.Message.From.Identity == []string{"alice", "bob", "carol"}[i] {
				t.Fatalf("%d got its own message", i)
			}
			if ev.Message.ID <= last {
				t.Fatalf("client %d: message %s after %s: out of order", i, ev.Message.ID, last)
			}
			last = ev.Message.ID
		}
	}
	// Text is stored and sent as given (the browser escapes it).
	var h historyResult
	if err := v1.Call(testCtx(t), "chat.history", map[string]any{"limit": 3}, &h); err != nil || len(h.Messages) != 3 {
		t.Fatalf("history: %v %+v", err, h)
	}
}

func TestChatHistoryDeleteKickBan(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	bob, _ := ts.join(t, "bob", "r1", "viewer")
	carol, _ := ts.join(t, "carol", "r1", "viewer")
	ctx := testCtx(t)
	var ids []string
	for _, text := range []string{"one", "two", "three"} {
		var m client.Message
		if err := bob.Call(ctx, "chat.send", map[string]string{"text": text}, &m); err != nil {
			t.Fatal(err)
		}
		if m.Room != "r1" || m.From.Identity != "bob" || m.From.Role != "viewer" || m.Text != text || m.At.IsZero() {
			t.Fatalf("message %+v", m)
		}
		ids = append(ids, m.ID)
	}
	// Reconnect: the history is there, newest last.
	_ = bob.Close()
	bob, _ = ts.join(t, "bob", "r1", "viewer")
	var h historyResult
	if err := bob.Call(ctx, "chat.history", map[string]any{}, &h); err != nil || len(h.Messages) != 3 || h.Messages[2].Text != "three" {
		t.Fatalf("history after reconnect: %v %+v", err, h)
	}
	if err := bob.Call(ctx, "chat.history", map[string]any{"before": ids[2], "limit": 1}, &h); err != nil || len(h.Messages) != 1 || h.Messages[0].Text != "two" {
		t.Fatalf("history before: %v %+v", err, h)
	}
	// Delete reaches everyone; only the host may.
	if err := bob.Call(ctx, "chat.delete", map[string]string{"id": ids[1]}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Fatalf("viewer delete: %v", err)
	}
	if err := host.Call(ctx, "chat.delete", map[string]string{"id": ids[1]}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{bob, carol} {
		waitNote(t, c, "chat.deleted", func(p json.RawMessage) bool { return strings.Contains(string(p), ids[1]) })
	}
	if err := host.Call(ctx, "chat.delete", map[string]string{"id": ids[1]}, nil); client.ErrorCode(err) != CodeNotFound {
		t.Fatalf("delete twice: %v", err)
	}
	_ = bob.Call(ctx, "chat.history", map[string]any{}, &h)
	if len(h.Messages) != 2 {
		t.Fatalf("deleted message still in history: %+v", h)
	}
	// Kick: the socket closes with 4003; without a ban the viewer may come back.
	if err := host.Call(ctx, "participant.kick", map[string]any{"identity": "bob"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bob.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("kicked socket not closed")
	}
	if bob.CloseCode() != CodeForbidden {
		t.Fatalf("kick close code %d, want 4003", bob.CloseCode())
	}
	waitNote(t, carol, "participant.left", func(p json.RawMessage) bool { return strings.Contains(string(p), `"bob"`) })
	ts.join(t, "bob", "r1", "viewer")
	// Ban: refused with 4003 until the room ends.
	if err := host.Call(ctx, "participant.kick", map[string]any{"identity": "carol", "ban": true}, nil); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, ts.URL, ts.token(t, "carol", "r1", "viewer"), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Join(ctx); client.ErrorCode(err) != CodeForbidden {
		t.Fatalf("banned join: %v", err)
	}
	if err := host.Call(ctx, "participant.kick", map[string]any{"identity": "nobody"}, nil); client.ErrorCode(err) != CodeNotFound {
		t.Fatalf("kick absent: %v", err)
	}
	if err := host.Call(ctx, "participant.kick", map[string]any{"identity": "alice"}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Fatalf("kick self: %v", err)
	}
}

func TestChatLimits(t *testing.T) {
	ts := newTestServer(t)
	ts.join(t, "alice", "r1", "host")
	bob, _ := ts.join(t, "bob", "r1", "viewer")
	ctx := testCtx(t)
	for _, text := range []any{"", strings.Repeat("é", chatMaxChars+1), 5, nil} {
		if err := bob.Call(ctx, "chat.send", map[string]any{"text": text}, nil); client.ErrorCode(err) != CodeInvalidParams {
			t.Errorf("text %v: %v", text, err)
		}
	}
	if err := bob.Call(ctx, "chat.send", map[string]any{"text": strings.Repeat("é", chatMaxChars)}, nil); err != nil {
		t.Errorf("2000 characters: %v", err)
	}
	limited := 0
	for i := 0; i < chatBurst+10; i++ {
		if err := bob.Call(ctx, "chat.send", map[string]any{"text": "spam"}, nil); client.ErrorCode(err) == CodeRateLimited {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no chat message rate limited")
	}
	time.Sleep(time.Second / chatRate * 2)
	if err := bob.Call(ctx, "chat.send", map[string]any{"text": "after"}, nil); err != nil {
		t.Fatalf("connection unusable after 4029: %v", err)
	}
	// A user session may not chat.
	tok, _ := ts.Tokens.Issue(TokenSpec{Identity: "dave", TTL: time.Hour})
	u, err := client.Dial(ctx, ts.URL, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, _ = u.Join(ctx)
	if err := u.Call(ctx, "chat.send", map[string]any{"text": "hi"}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Fatalf("user session chat: %v", err)
	}
}

// The chat rate, which rooms holds per member.
const (
	chatRate  = rooms.ChatRate
	chatBurst = rooms.ChatBurst
)
