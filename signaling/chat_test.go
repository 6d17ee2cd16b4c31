package signaling

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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

// A chat.history page of long messages is cut to the newest that fit one
// 64 KiB frame (a client may hold the server to the frame limit), and the
// client pages back from it as from any page.
func TestChatHistoryFitsAFrame(t *testing.T) {
	ts := newTestServer(t)
	ts.join(t, "alice", "r1", "host")
	ctx := testCtx(t)
	long := strings.Repeat("€", chatMaxChars) // 6,000 bytes of JSON
	var ids []string
	for _, who := range []string{"bob", "carol"} {
		c, _ := ts.join(t, who, "r1", "viewer")
		for range 8 { // within the chat rate's burst of 10
			var m client.Message
			if err := c.Call(ctx, "chat.send", map[string]string{"text": long}, &m); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
	}
	raw := ts.dialRaw(t, ts.token(t, "dave", "r1", "viewer"))
	if r := raw.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`); r.Error != nil {
		t.Fatal(r.Error)
	}
	if err := raw.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":2,"method":"chat.history","params":{"limit":200}}`)); err != nil {
		t.Fatal(err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	var frame []byte
	for {
		_, b, err := raw.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"id":2`) {
			frame = b
			break
		}
	}
	if len(frame) > maxFrame {
		t.Fatalf("chat.history frame of %d bytes, over %d", len(frame), maxFrame)
	}
	var page struct {
		Result historyResult `json:"result"`
	}
	if err := json.Unmarshal(frame, &page); err != nil {
		t.Fatal(err)
	}
	got := page.Result.Messages
	if len(got) < 5 || len(got) >= len(ids) || got[len(got)-1].ID != ids[len(ids)-1] {
		t.Fatalf("a page of %d messages ending %v, want the newest that fit (fewer than %d)", len(got), got[len(got)-1].ID, len(ids))
	}
	r := raw.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":3,"method":"chat.history","params":{"before":%q,"limit":200}}`, got[0].ID))
	var older historyResult
	if r.Error != nil || json.Unmarshal(r.Result, &older) != nil {
		t.Fatalf("paging back: %+v", r.Error)
	}
	if n := len(older.Messages) + len(got); n != len(ids) || older.Messages[len(older.Messages)-1].ID != ids[len(ids)-len(got)-1] {
		t.Fatalf("paging back: %d + %d messages, want %d in all", len(older.Messages), len(got), len(ids))
	}
}
