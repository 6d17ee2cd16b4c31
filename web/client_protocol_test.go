package web_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/relaysfu/relayd/web"
)

// fakeSignaling speaks the wire contract's invitation, relay, chat and
// error parts from a script, so the JS client's handling of exact codes,
// words and odd frames is checked in Chromium.
type fakeSignaling struct {
	mu       sync.Mutex
	received []map[string]any // every frame the client sent
}

func (f *fakeSignaling) serve(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	send := func(v any) { _ = c.WriteJSON(v) }
	result := func(id any, res any) { send(map[string]any{"jsonrpc": "2.0", "id": id, "result": res}) }
	fail := func(id any, code int, msg string) {
		send(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}})
	}
	notify := func(method string, params any) {
		send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
	}
	now := time.Now().UTC().Format(time.RFC3339)
	relay := func(state string, code int) map[string]any {
		return map[string]any{
			"id": "rl1", "source": map[string]any{"room": "show", "identity": "alice"},
			"state": state, "code": code, "error": "none", "errorCode": 0, "paused": false,
			"destinations": []any{
				map[string]any{"room": "b", "identity": "alice", "state": "running", "code": 2, "error": "none", "errorCode": 0},
				// Only the codes: the client fills in the words.
				map[string]any{"room": "gone", "identity": "alice", "code": 3, "errorCode": 5},
			},
		}
	}
	for {
		var m map[string]any
		if err := c.ReadJSON(&m); err != nil {
			return
		}
		f.mu.Lock()
		f.received = append(f.received, m)
		f.mu.Unlock()
		method, _ := m["method"].(string)
		id := m["id"]
		if method == "" {
			continue // a response to our request
		}
		params, _ := m["params"].(map[string]any)
		switch method {
		case "join":
			result(id, map[string]any{
				"participant":  map[string]any{"identity": "alice", "name": "Alice", "role": "host", "tracks": []any{}},
				"room":         map[string]any{"name": "show", "host": "alice", "status": "live", "createdAt": now},
				"participants": []any{map[string]any{"identity": "carol", "name": "Carol", "role": "viewer", "tracks": []any{}}},
				"tracks":       []any{},
			})
			// A server request the client does not know: it must answer -32601.
			send(map[string]any{"jsonrpc": "2.0", "id": "s9", "method": "bogus", "params": map[string]any{}})
		case "invitation.create":
			if params["user"] == "full" {
				fail(id, 4013, "stage is full")
				continue
			}
			inv := map[string]any{"id": "inv1", "room": "show", "host": "alice", "user": params["user"], "status": "pending",
				"createdAt": now, "updatedAt": now, "expiresAt": now}
			result(id, inv)
			acc := map[string]any{}
			for k, v := range inv {
				acc[k] = v
			}
			acc["status"] = "accepted"
			notify("invitation.updated", map[string]any{"invitation": acc})
			notify("participant.updated", map[string]any{"participant": map[string]any{"identity": "carol", "name": "Carol", "role": "cohost", "tracks": []any{}}})
		case "invitation.list":
			result(id, map[string]any{"invitations": []any{map[string]any{"id": "inv1", "status": params["status"]}}})
		case "cohost.remove":
			fail(id, 4004, "no such co-host")
		case "relay.start":
			notify("relay.state", map[string]any{"relay": "rl1", "state": "connecting", "code": 1, "error": "none", "errorCode": 0})
			result(id, relay("connecting", 1))
			notify("relay.event", map[string]any{"relay": "rl1", "event": "joined_src_channel", "code": 2})
			notify("relay.event", map[string]any{"relay": "rl1", "code": 3, "room": "b"}) // code only
			notify("relay.state", map[string]any{"relay": "rl1", "state": "running"})     // word only
		case "relay.update":
			notify("relay.event", map[string]any{"relay": "rl1", "event": "update_dest_channel_refused", "code": 8})
			fail(id, 4013, "more than 4 destinations")
		case "relay.pause":
			r := relay("running", 2)
			r["paused"] = true
			result(id, r)
			notify("relay.event", map[string]any{"relay": "rl1", "event": "pause_send_packet_to_dest_channel_success", "code": 12})
		case "relay.stop":
			notify("relay.state", map[string]any{"relay": "rl1", "state": "idle", "code": 0, "error": "none", "errorCode": 0})
			result(id, relay("idle", 0))
		case "chat.send":
			result(id, map[string]any{"id": "m1", "room": "show", "from": map[string]any{"identity": "alice", "name": "Alice", "role": "host"}, "text": params["text"], "at": now})
			notify("chat.message", map[string]any{"message": map[string]any{"id": "m2", "text": "<img src=x onerror=alert(1)>", "from": map[string]any{"identity": "carol"}}})
		case "chat.history":
			result(id, map[string]any{"messages": []any{map[string]any{"id": "m1"}}})
		case "room.stop":
			result(id, map[string]any{})
			notify("room.updated", map[string]any{"room": map[string]any{"name": "show", "host": "alice", "status": "ended", "createdAt": now}})
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "room ended"))
			return
		default:
			fail(id, -32601, "method not found: "+method)
		}
	}
}

func (f *fakeSignaling) responseTo(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.received {
		if m["id"] == id && m["method"] == nil {
			return m
		}
	}
	return nil
}

// The JS client against a scripted server: invitations, relay (codes and
// words filled from the tables), chat, errors as RelayError with the code,
// an unknown server request answered -32601, room end without reconnect.
func TestBrowserClientProtocol(t *testing.T) {
	fake := &fakeSignaling{}
	root := http.NewServeMux()
	root.HandleFunc("/v1/ws", fake.serve)
	root.Handle("/", web.Handler(web.Options{}))
	hs := httptest.NewUnstartedServer(root)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)

	b := newBrowser(t)
	p := b.open("client", hs.URL+"/")
	out, err := eval[json.RawMessage](p, `(async () => {
		const m = await import("/sdk/relay-client.js");
		const c = new m.RelayClient({ requestTimeout: 3000 });
		const events = [];
		c.on("*", ({ event, payload }) => events.push([event, JSON.parse(JSON.stringify(payload ?? null))]));
		const wait = async (cond) => { for (let i = 0; i < 50 && !cond(); i++) await new Promise(r => setTimeout(r, 20)); };
		const catchErr = (p) => p.then(() => null, (e) => ({ name: e.name, code: e.code, method: e.method, isRelayError: e instanceof m.RelayError, message: e.message }));
		const res = {};
		await c.connect("/v1/ws", "tok");
		res.join = await c.join();
		res.invitation = await c.createInvitation("carol");
		res.full = await catchErr(c.createInvitation("full"));
		res.list = await c.listInvitations("pending");
		res.remove = await catchErr(c.removeCohost("zed"));
		res.unknown = await catchErr(c.request("no.such.method", {}));
		res.relayStart = await c.startRelay([{ room: "b", token: "t" }, { room: "gone", token: "t" }]);
		await wait(() => c.relay && c.relay.state === "running");
		res.relayAfterStart = JSON.parse(JSON.stringify(c.relay));
		res.update = await catchErr(c.updateRelay([1, 2, 3, 4, 5].map(i => ({ room: "r" + i, token: "t" }))));
		res.pause = await c.pauseRelay();
		res.stop = await c.stopRelay();
		res.chat = await c.sendChat("hi");
		res.history = await c.chatHistory({ limit: 10 });
		res.carolRole = c.participants.get("carol").role;
		const gone = c.once("disconnected");
		await c.stopRoom();
		res.disconnected = await gone;
		res.room = c.room;
		res.connectionState = c.connectionState;
		res.events = events.filter(([e]) => !["connection", "room.status", "disconnected", "pc.state"].includes(e));
		res.tables = { state: m.relayStateName(2), error: m.relayErrorName(11), event: m.relayEventName(15), forbidden: m.errorName(4003) };
		return res;
	})()`)
	if err != nil {
		t.Fatalf("client script: %v", err)
	}
	var res struct {
		Join       struct{ Participant struct{ Role string } }
		Invitation struct{ ID, Status string }
		Full       *jsErr
		List       []struct{ ID, Status string }
		Remove     *jsErr
		Unknown    *jsErr
		RelayStart struct {
			ID, State    string
			Code         int
			Destinations []struct {
				Room, State, Error string
				Code, ErrorCode    int
			}
		}
		RelayAfterStart struct {
			State string
			Code  int
		}
		Update *jsErr
		Pause  struct{ Paused bool }
		Stop   struct {
			State string
			Code  int
		}
		Chat         struct{ ID, Text string }
		History      []struct{ ID string }
		CarolRole    string
		Disconnected struct {
			Code   int
			Reason string
			Ended  bool
		}
		Room            struct{ Status string }
		ConnectionState string
		Events          [][2]json.RawMessage
		Tables          struct{ State, Error, Event, Forbidden string }
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s: got %s", what, out)
		}
	}
	check("join role", res.Join.Participant.Role == "host")
	check("invitation", res.Invitation.ID == "inv1" && res.Invitation.Status == "pending")
	res.Full.want(t, "invitation.create", 4013)
	check("list", len(res.List) == 1 && res.List[0].Status == "pending")
	res.Remove.want(t, "cohost.remove", 4004)
	res.Unknown.want(t, "no.such.method", -32601)
	d := res.RelayStart.Destinations
	check("relay.start result", res.RelayStart.ID == "rl1" && res.RelayStart.State == "connecting" && res.RelayStart.Code == 1)
	check("destination words filled from codes", len(d) == 2 && d[1].State == "failure" && d[1].Error == "failed_join_dest" && d[1].ErrorCode == 5)
	check("relay state after the running notification", res.RelayAfterStart.State == "running" && res.RelayAfterStart.Code == 2)
	res.Update.want(t, "relay.update", 4013)
	check("pause", res.Pause.Paused)
	check("stop", res.Stop.State == "idle" && res.Stop.Code == 0)
	check("chat", res.Chat.ID == "m1" && res.Chat.Text == "hi" && len(res.History) == 1)
	check("carol became co-host", res.CarolRole == "cohost")
	check("room ended, no reconnect", res.Disconnected.Ended && res.Room.Status == "ended" && res.ConnectionState == "disconnected")
	check("tables", res.Tables.State == "running" && res.Tables.Error == "dest_token_expired" &&
		res.Tables.Event == "resume_send_packet_to_dest_channel_failed" && res.Tables.Forbidden == "forbidden")

	// The relay notifications, normalized: word and code both present.
	var relayEvents []string
	for _, e := range res.Events {
		var name string
		_ = json.Unmarshal(e[0], &name)
		var p struct {
			State, Event, Room string
			Code               *int
		}
		_ = json.Unmarshal(e[1], &p)
		switch name {
		case "relay.state":
			relayEvents = append(relayEvents, name+" "+p.State+" "+itoa(p.Code))
		case "relay.event":
			relayEvents = append(relayEvents, name+" "+p.Event+" "+itoa(p.Code)+" "+p.Room)
		case "invitation.updated", "participant.updated", "chat.message", "room.updated":
			relayEvents = append(relayEvents, name)
		}
	}
	want := []string{
		"invitation.updated", "participant.updated",
		"relay.state connecting 1",
		"relay.event joined_src_channel 2 ",
		"relay.event joined_dest_channel 3 b",
		"relay.state running 2",
		"relay.event update_dest_channel_refused 8 ",
		"relay.event pause_send_packet_to_dest_channel_success 12 ",
		"relay.state idle 0",
		"chat.message",
		"room.updated",
	}
	if len(relayEvents) != len(want) {
		t.Fatalf("events:\n%q\nwant\n%q", relayEvents, want)
	}
	for i := range want {
		if relayEvents[i] != want[i] {
			t.Errorf("event %d = %q, want %q", i, relayEvents[i], want[i])
		}
	}
	if r := fake.responseTo("s9"); r == nil || r["error"] == nil || r["error"].(map[string]any)["code"] != float64(-32601) {
		t.Errorf("unknown server request: client answered %v, want error -32601", r)
	}
}

type jsErr struct {
	Name, Method, Message string
	Code                  int
	IsRelayError          bool
}

func (e *jsErr) want(t *testing.T, method string, code int) {
	t.Helper()
	if e == nil {
		t.Errorf("%s: no error, want %d", method, code)
		return
	}
	if !e.IsRelayError || e.Name != "RelayError" || e.Code != code || e.Method != method {
		t.Errorf("%s: error %+v, want RelayError %d", method, *e, code)
	}
}

func itoa(p *int) string {
	if p == nil {
		return "nil"
	}
	b, _ := json.Marshal(*p)
	return string(b)
}
