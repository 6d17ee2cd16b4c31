package web_test

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/relaysfu/relayd/web"
)

// wordsPage opens a page of web.Handler alone (no server behind it) in
// Chromium, to run the pages' pure functions.
func wordsPage(t *testing.T) *page {
	t.Helper()
	hs := httptest.NewUnstartedServer(web.Handler(web.Options{}))
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	return newBrowser(t).open("words", hs.URL+"/")
}

// call runs fn (a function of static/words.js or static/app.js) on each
// case's arguments and returns its results, in order.
func call(t *testing.T, p *page, module, fn string, args [][]any) []string {
	t.Helper()
	in, _ := json.Marshal(args)
	out, err := eval[[]string](p, `(async () => {
		const m = await import(`+jsString(module)+`);
		const sdk = await import("/sdk/relay-client.js");
		const rooms = (list) => list === null ? null : new Map(list.map((r) => [r.name, r]));
		return `+string(in)+`.map((a) => {
			if (`+jsString(fn)+` === "relayReason") return m.relayReason(a[0], { rooms: rooms(a[1]), identity: a[2] });
			if (`+jsString(fn)+` === "describe") return m.describe(new sdk.RelayError(a[0], a[1], { method: a[2] }));
			return m[`+jsString(fn)+`](...a);
		});
	})()`)
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return out
}

// The words the pages put on codes, as table tests of their pure functions.
func TestWords(t *testing.T) {
	p := wordsPage(t)
	check := func(fn string, got []string, want []string, args [][]any) {
		t.Helper()
		for i := range want {
			if i >= len(got) {
				t.Errorf("%s%v: no result", fn, args[i])
				continue
			}
			ok := got[i] == want[i]
			if strings.HasPrefix(want[i], "~") { // a part of the sentence
				ok = strings.Contains(got[i], want[i][1:])
			}
			if !ok {
				t.Errorf("%s%v = %q, want %q", fn, args[i], got[i], want[i])
			}
		}
	}

	// Why a room ended, for its viewers and for its host.
	room := func(reason string) map[string]any { return map[string]any{"status": "ended", "endReason": reason} }
	endedArgs := [][]any{
		{room("host_left")}, {room("host_timeout")}, {room("stopped_by_admin")}, {room("server_shutdown")}, {room("node_lost")},
		{room("")}, {room("a_reason_of_the_future")}, {nil},
		{room("host_left"), true}, {room("stopped_by_admin"), true}, {map[string]any{"status": "ended"}, true},
	}
	check("endedText", call(t, p, "/static/words.js", "endedText", endedArgs), []string{
		"~host ended", "~host lost connection", "~stopped by an operator", "~server restart", "~node lost",
		"This stream has ended.", "This stream has ended.", "This stream has ended.",
		"~You ended the stream", "~An operator stopped your stream", "~The stream has ended",
	}, endedArgs)

	// A server message that repeats its code's word is said with the word once.
	describeArgs := [][]any{
		{-32602, "invalid params: user: the host cannot invite themselves: invalid params", "invitation.create"},
		{4003, "forbidden: only the host may invite: forbidden", "invitation.create"},
		{4013, "stage full: the stage is full (8 co-hosts): stage full", "invitation.accept"},
		{4004, "room show not found", "join"},
		{4003, "forbidden", ""},
		{-32602, "Invalid params: text is required", "chat.send"},
	}
	check("describe", call(t, p, "/static/app.js", "describe", describeArgs), []string{
		"invitation.create → -32602 invalid params: user: the host cannot invite themselves",
		"invitation.create → 4003 forbidden: only the host may invite",
		"invitation.accept → 4013 too many: stage full: the stage is full (8 co-hosts)",
		"join → 4004 not found: room show not found",
		"4003 forbidden",
		"chat.send → -32602 invalid params: text is required",
	}, describeArgs)

	// Why a relay destination failed, from its code and the rooms known.
	fail := func(room string, code int) map[string]any {
		return map[string]any{"room": room, "state": "failure", "code": 3, "errorCode": code}
	}
	rooms := []any{
		map[string]any{"name": "second", "host": "bea", "status": "live"},
		map[string]any{"name": "over", "host": "dave", "status": "ended"},
		map[string]any{"name": "rec", "host": "erin", "status": "recorded"},
		map[string]any{"name": "mine", "host": "alice", "status": "live"},
	}
	reasonArgs := [][]any{
		{fail("nowhere", 5), rooms, "alice"},
		{fail("over", 5), rooms, "alice"},
		{fail("rec", 5), rooms, "alice"},
		{fail("second", 5), rooms, "alice"},
		{fail("mine", 5), rooms, "alice"},
		{fail("second", 5), nil, "alice"},
		{fail("second", 11), rooms, "alice"},
		{fail("second", 8), nil, "alice"},
		{fail("second", 9), nil, "alice"},
		{fail("second", 77), nil, "alice"},
		{map[string]any{"room": "second", "state": "running", "code": 2, "errorCode": 0}, rooms, "alice"},
		{map[string]any{"room": "over", "state": "idle", "code": 0, "errorCode": 0, "left": true}, rooms, "alice"},
		{map[string]any{"room": "second", "state": "idle", "code": 0, "errorCode": 0, "left": true}, rooms, "alice"},
	}
	check("relayReason", call(t, p, "/static/words.js", "relayReason", reasonArgs), []string{
		"no such room: nobody has started room nowhere",
		"room over has ended",
		"room rec has ended",
		"no accepted invitation: bea, the host of second, must invite alice, who must accept",
		"~the token was refused",
		"~second is missing or ended, alice has no accepted invitation there, or the token was refused",
		"~token for room second has expired",
		"~server node of room second was lost",
		"internal error on the server",
		"error 77",
		"",
		"room over ended: the relay left it",
		"the relay left room second",
	}, reasonArgs)

	// Bad room names are said, not replaced.
	nameArgs := [][]any{{"my room"}, {""}, {strings.Repeat("a", 129)}, {"demo"}, {"a.b:c@d-e_f"}}
	check("badNameText", call(t, p, "/static/words.js", "badNameText", nameArgs), []string{
		"~“my room” is not a valid room name", "No room name given.", "~at most 128", "", "",
	}, nameArgs)

	pausedArgs := [][]any{{"relay_paused"}, {"publisher_reconnecting"}, {"bandwidth"}, {"toString"}, {""}}
	check("pausedText", call(t, p, "/static/words.js", "pausedText", pausedArgs), []string{
		"Paused by the host", "Reconnecting…", "~bandwidth", "Paused", "Paused",
	}, pausedArgs)

	mutedArgs := [][]any{{"video"}, {"audio"}}
	check("mutedText", call(t, p, "/static/words.js", "mutedText", mutedArgs), []string{"Camera off", "Mic off"}, mutedArgs)
}
