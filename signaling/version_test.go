package signaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The version a join asks for is served as the contract says (1.1 §0).
func TestServedVersion(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		asked *string
		want  string // "" : -32602
	}{
		{nil, "1.0"},
		{str("1.0"), "1.0"},
		{str("1.1"), "1.1"},
		{str("1.2"), "1.1"},
		{str("2.0"), "1.1"},
		{str("17.4"), "1.1"},
		{str("999999999.999999999"), "1.1"},
		{str(""), ""},
		{str("1"), ""},
		{str("1.1.0"), ""},
		{str("v1.1"), ""},
		{str("1.01"), ""},
		{str("01.1"), ""},
		{str("-1.1"), ""},
		{str(" 1.1"), ""},
		{str("1.1 "), ""},
		{str("0.9"), ""},
		{str("0.0"), ""},
		{str("1234567890.0"), "1.1"},
		{str("1.99999999999999999999"), "1.1"},
		{str("1.00"), ""},
	} {
		got, err := servedVersion(tc.asked)
		name := "absent"
		if tc.asked != nil {
			name = fmt.Sprintf("%q", *tc.asked)
		}
		switch {
		case tc.want == "" && (err == nil || err.Code != CodeInvalidParams):
			t.Errorf("%s: served %q (err %v), want -32602", name, got, err)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("%s: served %q (err %v), want %q", name, got, err, tc.want)
		}
	}
}

// A notification framed by the outbox is encodeNotification's frame, with
// seq added to its params in a 1.1 session.
func TestFrameNotification(t *testing.T) {
	for _, tc := range []struct {
		method string
		params any
		seq    uint64
		want   string
	}{
		{"room.updated", map[string]any{"room": map[string]string{"name": "a"}}, 0, ""},
		{"chat.deleted", map[string]string{"id": "MS_1"}, 0, ""},
		{"x", struct{}{}, 0, ""},
		{"room.updated", map[string]any{"room": map[string]string{"name": "a"}}, 7,
			`{"jsonrpc":"2.0","method":"room.updated","params":{"room":{"name":"a"},"seq":7}}`},
		{"x", struct{}{}, 1, `{"jsonrpc":"2.0","method":"x","params":{"seq":1}}`},
		{"x", nil, 2, `{"jsonrpc":"2.0","method":"x","params":{"seq":2}}`},
		{"x", map[string]string{"a": "}"}, 18446744073709551615, `{"jsonrpc":"2.0","method":"x","params":{"a":"}","seq":18446744073709551615}}`},
	} {
		p, _ := json.Marshal(tc.params)
		got := frameNotification(tc.method, p, tc.seq)
		want := tc.want
		if want == "" {
			want = string(encodeNotification(tc.method, tc.params))
		}
		if string(got) != want {
			t.Errorf("%s seq %d: %s, want %s", tc.method, tc.seq, got, want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: not JSON: %s", tc.method, got)
		}
	}
}

// The replay keeps the last replayKeep sequenced frames; what is asked
// for beyond them is a gap.
func TestReplay(t *testing.T) {
	var r replay
	frame := func(s uint64) []byte { return fmt.Appendf(nil, "f%d", s) }
	check := func(after, last uint64, from uint64, gap bool) {
		t.Helper()
		got, g := r.since(after, last)
		if g != gap {
			t.Errorf("since(%d) at %d: gap %v, want %v", after, last, g, gap)
		}
		if from > last {
			if len(got) != 0 {
				t.Errorf("since(%d) at %d: %d frames, want none", after, last, len(got))
			}
			return
		}
		if uint64(len(got)) != last-from+1 {
			t.Fatalf("since(%d) at %d: %d frames, want %d", after, last, len(got), last-from+1)
		}
		for i, f := range got {
			if want := frame(from + uint64(i)); !bytes.Equal(f, want) {
				t.Fatalf("since(%d) at %d: frame %d is %s, want %s", after, last, i, f, want)
			}
		}
	}
	check(0, 0, 1, false)
	for s := uint64(1); s <= 10; s++ {
		r.put(s, frame(s))
	}
	check(0, 10, 1, false)
	check(4, 10, 5, false)
	check(10, 10, 11, false)
	check(12, 10, 11, false)
	for s := uint64(11); s <= 3000; s++ {
		r.put(s, frame(s))
	}
	check(2999, 3000, 3000, false)
	check(3000-replayKeep, 3000, 3000-replayKeep+1, false)
	check(3000-replayKeep-1, 3000, 3000-replayKeep+1, true) // one too many: a gap
	check(0, 3000, 3000-replayKeep+1, true)
	if replayKeep < 1000 {
		t.Errorf("replayKeep %d: the contract wants at least 1000", replayKeep)
	}
}

// While a join is served, events wait; then the join's answer goes first
// and the events follow, numbered from 1 in a 1.1 session (trickle and
// the server's requests have no seq). A response never waits.
func TestOutboxHoldsEventsUntilTheJoinResult(t *testing.T) {
	for _, v11 := range []bool{false, true} {
		o := newOutbox()
		o.hold()
		o.push(&out{data: encodeRequest("s1", "offer", map[string]string{"sdp": "x"})}, true)
		o.push(&out{method: "trickle", params: []byte(`{"target":"subscriber","candidate":null}`)}, true)
		o.push(&out{method: "participant.joined", params: []byte(`{"participant":{}}`)}, true)
		o.push(&out{data: []byte("other response")}, false) // not held
		o.push(&out{data: []byte("join result")}, false)
		o.release(v11)
		o.push(&out{method: "room.updated", params: []byte(`{"room":{}}`)}, true)
		var got []string
		for _, m := range o.take() {
			got = append(got, string(m.data))
		}
		seq := func(n int) string {
			if !v11 {
				return ""
			}
			return fmt.Sprintf(`,"seq":%d`, n)
		}
		want := []string{
			"other response",
			"join result",
			`{"jsonrpc":"2.0","id":"s1","method":"offer","params":{"sdp":"x"}}`,
			`{"jsonrpc":"2.0","method":"trickle","params":{"target":"subscriber","candidate":null}}`,
			`{"jsonrpc":"2.0","method":"participant.joined","params":{"participant":{}` + seq(1) + `}}`,
			`{"jsonrpc":"2.0","method":"room.updated","params":{"room":{}` + seq(2) + `}}`,
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("1.1 %v:\n got  %q\n want %q", v11, got, want)
		}
		if frames, _ := o.since(0); v11 && len(frames) != 2 || !v11 && len(frames) != 0 {
			t.Errorf("1.1 %v: %d frames kept for a replay", v11, len(frames))
		}
	}
}

var sessionIDForm = regexp.MustCompile(`^SE_[0-9a-f]{16}$`)

// frames reads frames for a while and returns them decoded (a frame that
// is not JSON fails the test).
func (c *rawConn) frames(d time.Duration) []map[string]json.RawMessage {
	c.t.Helper()
	var out []map[string]json.RawMessage
	deadline := time.Now().Add(d)
	for {
		_ = c.SetReadDeadline(deadline)
		_, b, err := c.ReadMessage()
		if err != nil {
			return out
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			c.t.Fatalf("server sent non-JSON %q", b)
		}
		out = append(out, m)
	}
}

// joinFirst joins over a raw socket with params and returns the first frame
// read after the join was sent, which must be its answer (nothing comes
// before it: bugs.md 2).
func joinFirst(t *testing.T, c *rawConn, params string) map[string]json.RawMessage {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"join","params":`+params+`}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["id"]) != "1" {
		t.Fatalf("the first frame after join is not its answer: %s", b)
	}
	return m
}

// A viewer joining a room with tracks gets the join result first, then the
// server's subscriber offer and its candidates (bugs.md 2: the offer came
// first), in a 1.0 and in a 1.1 session; in a 1.1 session every
// notification but trickle has a seq, 1 after the result, +1 each, and the
// offer request has none.
func TestJoinResultComesFirst(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	publish(t, host)
	waitNote(t, host, "room.updated", roomStatusIs("live"))
	for i, params := range []string{`{}`, `{"version":"1.0"}`, `{"version":"1.1"}`} {
		v11 := params == `{"version":"1.1"}`
		who := fmt.Sprintf("v%d", i)
		c := ts.dialRaw(t, ts.token(t, who, "r1", "viewer"))
		res := joinFirst(t, c, params)
		if res["error"] != nil {
			t.Fatalf("%s join: %s", params, res["error"])
		}
		// A second viewer joins: a participant.joined for this one.
		other := ts.dialRaw(t, ts.token(t, who+"-other", "r1", "viewer"))
		joinFirst(t, other, `{}`)
		var offer bool
		var seqs []uint64
		for _, m := range c.frames(2 * time.Second) {
			var method string
			_ = json.Unmarshal(m["method"], &method)
			var p struct {
				Seq *uint64 `json:"seq"`
			}
			_ = json.Unmarshal(m["params"], &p)
			switch {
			case method == "offer" && m["id"] != nil:
				offer = true
				if p.Seq != nil {
					t.Errorf("%s: the offer request has a seq", params)
				}
				// Answer nothing: the test is about the order.
			case method == "trickle":
				if p.Seq != nil {
					t.Errorf("%s: a trickle has a seq", params)
				}
			case method != "":
				if v11 != (p.Seq != nil) {
					t.Errorf("%s: %s seq %v", params, method, p.Seq)
				}
				if p.Seq != nil {
					seqs = append(seqs, *p.Seq)
				}
			}
		}
		if !offer {
			t.Errorf("%s: no subscriber offer after the join result", params)
		}
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Errorf("%s: seqs %v, want 1, 2, ...", params, seqs)
				break
			}
		}
		if v11 && len(seqs) == 0 {
			t.Errorf("%s: no sequenced notification (the other viewer's participant.joined)", params)
		}
	}
}

// Every join result has version (as served) and iceServers ([]); a 1.1
// result also has the resume fields of a fresh session. A join with
// lastSeq but nothing to resume is a fresh join (1.1 §5, §11). Malformed
// params change nothing: the socket may join after.
func TestJoinVersionAndResumeFields(t *testing.T) {
	ts := newTestServer(t)
	ts.join(t, "alice", "r1", "host")
	for _, bad := range []string{
		`{"version":1.1}`, `{"version":"abc"}`, `{"version":""}`, `{"version":"0.9"}`, `{"version":true}`,
		`{"version":"1.1","lastSeq":-1}`, `{"version":"1.1","lastSeq":1.5}`, `{"version":"1.1","lastSeq":"3"}`,
		`{"version":"1.1","lastSeq":1e30}`,
	} {
		c := ts.dialRaw(t, ts.token(t, "bob", "r1", "viewer"))
		r := c.send(`{"jsonrpc":"2.0","id":1,"method":"join","params":` + bad + `}`)
		wantError(t, r, CodeInvalidParams, "1")
		if r := c.send(`{"jsonrpc":"2.0","id":2,"method":"join","params":{}}`); r.Error != nil {
			t.Fatalf("%s, then a proper join: %v", bad, r.Error)
		}
	}
	for _, tc := range []struct {
		params, version string
	}{
		{`{}`, "1.0"}, {`{"version":null}`, "1.0"}, {`{"version":"1.0"}`, "1.0"},
		{`{"version":"1.1"}`, "1.1"}, {`{"version":"2.0"}`, "1.1"}, {`{"version":"1.1","lastSeq":41}`, "1.1"},
		{`{"version":"1.1","lastSeq":0}`, "1.1"}, {`{"lastSeq":7}`, "1.0"},
	} {
		c := ts.dialRaw(t, ts.token(t, "bob", "r1", "viewer"))
		r := c.send(`{"jsonrpc":"2.0","id":1,"method":"join","params":` + tc.params + `}`)
		if r.Error != nil {
			t.Fatalf("%s: %v", tc.params, r.Error)
		}
		var res struct {
			Version     *string           `json:"version"`
			ICEServers  []json.RawMessage `json:"iceServers"`
			SessionID   *string           `json:"sessionId"`
			ResumeToken *string           `json:"resumeToken"`
			Resumed     *bool             `json:"resumed"`
			Seq         *uint64           `json:"seq"`
			Gap         *bool             `json:"gap"`
		}
		if err := json.Unmarshal(r.Result, &res); err != nil {
			t.Fatal(err)
		}
		if res.Version == nil || *res.Version != tc.version {
			t.Errorf("%s: version %v, want %s", tc.params, res.Version, tc.version)
		}
		if res.ICEServers == nil || len(res.ICEServers) != 0 || !bytes.Contains(r.Result, []byte(`"iceServers":[]`)) {
			t.Errorf("%s: iceServers %s, want []", tc.params, r.Result)
		}
		if tc.version == "1.0" {
			if res.SessionID != nil || res.ResumeToken != nil || res.Resumed != nil || res.Seq != nil || res.Gap != nil {
				t.Errorf("%s: a 1.0 result with resume fields: %s", tc.params, r.Result)
			}
			continue
		}
		switch {
		case res.SessionID == nil || !sessionIDForm.MatchString(*res.SessionID):
			t.Errorf("%s: sessionId %v", tc.params, res.SessionID)
		case res.ResumeToken == nil || *res.ResumeToken == "" || len(*res.ResumeToken) > 256:
			t.Errorf("%s: resumeToken %v", tc.params, res.ResumeToken)
		case res.Resumed == nil || *res.Resumed, res.Seq == nil || *res.Seq != 0, res.Gap == nil || *res.Gap:
			t.Errorf("%s: resumed %v seq %v gap %v, want false 0 false", tc.params, res.Resumed, res.Seq, res.Gap)
		}
	}
}

// A user session gets the version fields too, and a resume attempt
// (resume= on the upgrade) with nothing to resume joins fresh.
func TestJoinVersionUserSessionAndResumeAttempt(t *testing.T) {
	ts := newTestServer(t)
	ts.join(t, "alice", "r1", "host")
	u := ts.dialRaw(t, ts.token(t, "carol", "", ""))
	r := u.send(`{"jsonrpc":"2.0","id":1,"method":"join","params":{"version":"1.1"}}`)
	if r.Error != nil || !bytes.Contains(r.Result, []byte(`"version":"1.1"`)) || !bytes.Contains(r.Result, []byte(`"room":null`)) ||
		!bytes.Contains(r.Result, []byte(`"resumed":false`)) {
		t.Fatalf("user session: %s %v", r.Result, r.Error)
	}
	c, resp, err := websocket.DefaultDialer.Dial(ts.wsURL(ts.token(t, "bob", "r1", "viewer"))+"&resume=rt.nothing", nil)
	if err != nil {
		t.Fatalf("dial with resume=: %v (%v)", err, resp)
	}
	t.Cleanup(func() { _ = c.Close() })
	rc := &rawConn{t: t, Conn: c}
	r = rc.send(`{"jsonrpc":"2.0","id":1,"method":"join","params":{"version":"1.1","lastSeq":12}}`)
	if r.Error != nil || !bytes.Contains(r.Result, []byte(`"resumed":false`)) || !bytes.Contains(r.Result, []byte(`"seq":0`)) {
		t.Fatalf("resume attempt: %s %v", r.Result, r.Error)
	}
}

// server.draining, sent to every session, has its seq in a 1.1 session.
func TestBroadcastHasSeq(t *testing.T) {
	ts := newTestServer(t)
	ts.join(t, "alice", "r1", "host")
	c := ts.dialRaw(t, ts.token(t, "bob", "r1", "viewer"))
	joinFirst(t, c, `{"version":"1.1"}`)
	old := ts.dialRaw(t, ts.token(t, "dan", "r1", "viewer"))
	joinFirst(t, old, `{}`)
	// dan's participant.joined reaches bob through the room's events,
	// which may come after a broadcast sent now: wait for it first.
	c.readUntil(func(m serverFrame) bool { return m.Method == "participant.joined" })
	ts.Srv.Broadcast("server.draining", map[string]any{"deadline": "2026-01-01T00:00:00Z"})
	for _, tc := range []struct {
		c    *rawConn
		want string
	}{{c, `"seq":2`}, {old, `"deadline":"2026-01-01T00:00:00Z"}`}} { // bob: dan's participant.joined was 1
		var got []byte
		for _, m := range tc.c.frames(time.Second) {
			if string(m["method"]) == `"server.draining"` {
				got = m["params"]
			}
		}
		if !bytes.Contains(got, []byte(tc.want)) || (tc.c == old && bytes.Contains(got, []byte("seq"))) {
			t.Errorf("server.draining params %s, want %s", got, tc.want)
		}
	}
}

// The bridge follows a 1.1 session's seq in the frames it copies, so that
// its own room.updated (the room's node died) continues the count.
func TestSeqTracker(t *testing.T) {
	var tr seqTracker
	for _, f := range []string{
		`not json`,
		`{"jsonrpc":"2.0","id":1,"result":{"version":"1.0","iceServers":[]}}`,
		`{"jsonrpc":"2.0","method":"trickle","params":{"target":"subscriber","candidate":null}}`,
	} {
		tr.see([]byte(f))
	}
	if tr.v11 || tr.last != 0 {
		t.Fatalf("1.0 session: %+v", tr)
	}
	tr.see([]byte(`{"jsonrpc":"2.0","id":1,"result":{"version":"1.1","sessionId":"SE_0123456789abcdef","seq":0}}`))
	if !tr.v11 || tr.last != 0 {
		t.Fatalf("1.1 join result: %+v", tr)
	}
	tr.see([]byte(`{"jsonrpc":"2.0","method":"participant.joined","params":{"participant":{},"seq":1}}`))
	tr.see([]byte(`{"jsonrpc":"2.0","id":"s1","method":"offer","params":{"sdp":"v=0"}}`))
	tr.see([]byte(`{"jsonrpc":"2.0","method":"chat.message","params":{"message":"odd","seq":2}}`))
	tr.see([]byte(`{"jsonrpc":"2.0","method":"x","params":"not an object"}`))
	if tr.last != 2 {
		t.Fatalf("after seq 2: %+v", tr)
	}
	if f := frameNotification("room.updated", []byte(`{"room":{}}`), tr.last+1); !bytes.Contains(f, []byte(`"seq":3`)) {
		t.Fatalf("the bridge's room.updated: %s", f)
	}
}
