package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/web"
)

// evalLong is eval with a longer deadline, for scripts that wait.
func evalLong[T any](p *page, d time.Duration, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// fakeToken is a JWT-shaped token (unsigned: the scripted server does not
// check it) with the claims the client reads.
func fakeToken(sub, room string, exp time.Time) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": sub, "room": room, "role": "host", "iat": time.Now().Unix(), "exp": exp.Unix()})
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + ".c2ln"
}

// resumeServer scripts 1.1's resume and simulcast signaling around a real
// pion answerer of the publisher PC: every socket's URL and join params,
// and every offer's ICE ufrag, are kept for the test to check.
type resumeServer struct {
	t    *testing.T
	api  *webrtc.API
	tok2 string // the token token.refresh gives

	mu      sync.Mutex
	pc      *webrtc.PeerConnection // the publisher PC (one session: it survives resumes)
	conns   []*websocket.Conn
	urls    []string         // each socket's query
	joins   []map[string]any // each join's params
	ufrags  []string         // each publisher offer's ice-ufrag
	offers  []string         // each publisher offer
	freshAt int              // the connection index whose join is answered resumed:false
}

func newResumeServer(t *testing.T) *resumeServer {
	m := &webrtc.MediaEngine{}
	if err := client.RegisterCodecs(m); err != nil {
		t.Fatal(err)
	}
	// A simulcast offer needs the RID extensions in the answer.
	for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	return &resumeServer{t: t, api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(client.LoopbackSettingEngine()))}
}

func (s *resumeServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc != nil {
		_ = s.pc.Close()
	}
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func (s *resumeServer) serve(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	s.mu.Lock()
	n := len(s.conns)
	s.conns = append(s.conns, c)
	s.urls = append(s.urls, r.URL.RawQuery)
	s.mu.Unlock()
	var wmu sync.Mutex
	send := func(v any) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = c.WriteJSON(v)
	}
	result := func(id any, res any) { send(map[string]any{"jsonrpc": "2.0", "id": id, "result": res}) }
	fail := func(id any, code int, msg string) {
		send(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}})
	}
	notify := func(method string, params map[string]any) {
		send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
	}
	room := map[string]any{"name": "show", "host": "alice", "status": "live"}
	alice := map[string]any{"identity": "alice", "role": "host", "tracks": []any{}}
	for {
		var m map[string]any
		if err := c.ReadJSON(&m); err != nil {
			return
		}
		method, _ := m["method"].(string)
		id := m["id"]
		params, _ := m["params"].(map[string]any)
		switch method {
		case "":
			continue
		case "join":
			s.mu.Lock()
			s.joins = append(s.joins, params)
			fresh := n == 0 || n == s.freshAt
			// A resume closes the socket it replaces with 1000 "resumed".
			var old *websocket.Conn
			if !fresh && n > 0 {
				old = s.conns[n-1]
			}
			s.mu.Unlock()
			if old != nil {
				_ = old.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "resumed"), time.Now().Add(time.Second))
				_ = old.Close()
			}
			switch {
			case n == 0:
				result(id, map[string]any{"version": "1.1", "resumed": false, "sessionId": "SE_1", "resumeToken": "rt1", "seq": 0, "gap": false,
					"iceServers": []any{}, "participant": alice, "room": room, "participants": []any{}, "tracks": []any{}})
			case fresh:
				result(id, map[string]any{"version": "1.1", "resumed": false, "sessionId": "SE_2", "resumeToken": "rt.fresh", "seq": 0, "gap": false,
					"iceServers": []any{}, "participant": alice, "room": room, "participants": []any{}, "tracks": []any{}})
			default:
				seq := 4
				result(id, map[string]any{"version": "1.1", "resumed": true, "sessionId": "SE_1", "resumeToken": "rt" + string(rune('1'+n)), "seq": seq, "gap": false,
					"iceServers": []any{}, "participant": alice, "room": room, "participants": []any{}, "tracks": []any{}})
				if n == 1 { // the one notification missed while the socket was down
					notify("chat.message", map[string]any{"message": map[string]any{"id": "m1", "text": "you froze"}, "seq": 4})
				}
			}
		case "track.settings":
			fail(id, 4004, "no such track") // the probe: this server knows track.settings
		case "offer":
			sdpText, _ := params["sdp"].(string)
			answer, err := s.answer(sdpText)
			if err != nil {
				fail(id, -32603, err.Error())
				continue
			}
			result(id, map[string]any{"sdp": answer})
			s.mu.Lock()
			first := len(s.offers) == 1
			s.mu.Unlock()
			if first {
				notify("track.published", map[string]any{"track": map[string]any{"id": "TR_v", "participant": "alice", "kind": "video", "codec": "VP8"}, "seq": 1})
				notify("publisher.layers", map[string]any{"trackId": "TR_v", "active": []any{"q"}, "seq": 2})
				notify("token.refresh", map[string]any{"token": s.tok2, "expiresAt": time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339),
					"iceServers": []any{map[string]any{"urls": "stun:127.0.0.1:9"}}, "seq": 3})
			}
		case "trickle":
			cand, _ := params["candidate"].(map[string]any)
			if str, _ := cand["candidate"].(string); str != "" && params["target"] == "publisher" {
				mid, _ := cand["sdpMid"].(string)
				s.mu.Lock()
				pc := s.pc
				s.mu.Unlock()
				if pc != nil {
					_ = pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: str, SDPMid: &mid})
				}
			}
			result(id, map[string]any{})
		case "test.drop":
			_ = c.UnderlyingConn().Close() // the network went away: no close frame
			return
		case "leave":
			result(id, map[string]any{})
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "left"), time.Now().Add(time.Second))
			return
		default:
			fail(id, -32601, "method not found: "+method)
		}
	}
}

// answer answers a publisher offer on the session's one pion PC.
func (s *resumeServer) answer(offer string) (string, error) {
	s.mu.Lock()
	s.offers = append(s.offers, offer)
	for _, line := range strings.Split(offer, "\r\n") {
		if strings.HasPrefix(line, "a=ice-ufrag:") {
			s.ufrags = append(s.ufrags, strings.TrimPrefix(line, "a=ice-ufrag:"))
			break
		}
	}
	if s.pc == nil {
		pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			s.mu.Unlock()
			return "", err
		}
		s.pc = pc
	}
	pc := s.pc
	s.mu.Unlock()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", err
	}
	<-done
	return pc.LocalDescription().SDP, nil
}

// The client's 1.1 resume and simulcast against a scripted server (with a
// real pion answerer): a 720p camera is offered as simulcast q/h/f (the
// server knows track.settings); publisher.layers switches h and f off at
// the sender; token.refresh's token and iceServers are taken; a lost
// socket comes back with resume= and join {version, lastSeq}, keeps its
// PeerConnection and restarts ICE with a new offer (no republish); the
// network coming back ("online") resumes on a new socket at once; after a
// reload the page resumes from sessionStorage with the refreshed token,
// and a resumed:false drops what it had; leave forgets the session.
func TestBrowserClientResume(t *testing.T) {
	srv := newResumeServer(t)
	t.Cleanup(srv.close)
	tok1 := fakeToken("alice", "show", time.Now().Add(time.Hour))
	srv.tok2 = fakeToken("alice", "show", time.Now().Add(2*time.Hour))
	srv.freshAt = 3 // the fourth socket (after the reload) is answered as a fresh session
	root := http.NewServeMux()
	root.HandleFunc("/v1/ws", srv.serve)
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
	out, err := evalLong[json.RawMessage](p, 40*time.Second, `(async () => {
		const m = await import("/sdk/relay-client.js");
		const c = window.client = new m.RelayClient({ requestTimeout: 5000, resumeKey: "k", reconnectBaseDelay: 100 });
		const events = [];
		c.on("*", ({ event, payload }) => { if (["reconnecting", "reconnected", "ice.restart"].includes(event)) events.push(event + ":" + (payload.resumed ?? payload.resuming ?? payload.reason ?? "")); });
		const wait = async (what, cond, ms = 10000) => {
			for (const end = Date.now() + ms; Date.now() < end; await new Promise(r => setTimeout(r, 50))) if (await cond()) return;
			throw new Error("timed out waiting for " + what);
		};
		const res = {};
		await c.connect("/v1/ws", `+jsString(tok1)+`);
		await c.join();
		const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: false });
		await c.publish({ stream });
		const pub = c._pub;
		const sender = () => pub.getSenders().find(s => s.track && s.track.kind === "video");
		res.rids = sender().getParameters().encodings.map(e => e.rid);
		await wait("publisher.layers applied", () => sender().getParameters().encodings.map(e => e.active).join() === "true,false,false");
		res.active = sender().getParameters().encodings.map(e => e.active);
		await wait("token.refresh", () => c.lastSeq === 3);
		res.tokenRefreshed = c.token === `+jsString(srv.tok2)+`;
		res.iceServers = pub.getConfiguration().iceServers.map(s => [].concat(s.urls).join());
		res.stored = JSON.parse(sessionStorage.getItem("k"));
		c.relay = { id: "rl1", state: "running", code: 2, destinations: [{ room: "b", state: "running", code: 2 }] };
		c._saveResume();
		res.storedRelay = JSON.parse(sessionStorage.getItem("k")).relay;

		// The network goes away under the socket.
		const back = c.once("reconnected");
		c.request("test.drop", {}).catch(() => {});
		res.reconnected = await back;
		res.samePC = c._pub === pub;
		res.resumed = c.resumed;
		res.lastSeq = c.lastSeq;
		await c._pubChain;

		// The network comes back: a resume on a new socket at once.
		const again = c.once("reconnected");
		window.dispatchEvent(new Event("online"));
		res.online = await again;
		await c._pubChain;
		res.samePC2 = c._pub === pub;
		res.state = c.connectionState;
		res.events = events;
		res.storedAfter = JSON.parse(sessionStorage.getItem("k"));
		return res;
	})()`)
	if err != nil {
		t.Fatalf("client script: %v", err)
	}
	var res struct {
		Rids, IceServers    []string
		Active              []bool
		TokenRefreshed      bool
		StoredRelay         struct{ ID, State string }
		Stored, StoredAfter struct {
			SessionID, ResumeToken, Token string
			LastSeq                       int
			Publishing                    bool
		}
		Reconnected, Online struct {
			Resumed     bool
			ResumeToken string
		}
		SamePC, SamePC2, Resumed bool
		LastSeq                  int
		State                    string
		Events                   []string
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
	check("simulcast q/h/f offered", strings.Join(res.Rids, ",") == "q,h,f")
	check("publisher.layers [q] switches h and f off", len(res.Active) == 3 && res.Active[0] && !res.Active[1] && !res.Active[2])
	check("token.refresh's token kept", res.TokenRefreshed)
	check("token.refresh's iceServers on the open PC", len(res.IceServers) == 1 && res.IceServers[0] == "stun:127.0.0.1:9")
	check("the session kept for a reload", res.Stored.ResumeToken == "rt1" && res.Stored.LastSeq == 3 && res.Stored.Token == srv.tok2 && res.Stored.Publishing)
	check("resumed after the drop, same PC", res.Reconnected.Resumed && res.SamePC && res.Resumed && res.LastSeq == 4)
	check("resumed after online, same PC", res.Online.Resumed && res.SamePC2 && res.State == "connected")
	check("a running relay kept with the session", res.StoredRelay.ID == "rl1" && res.StoredRelay.State == "running")
	check("the newest resume token kept", res.StoredAfter.ResumeToken == "rt3" && res.StoredAfter.LastSeq == 4)

	srv.mu.Lock()
	urls := append([]string(nil), srv.urls...)
	joins := append([]map[string]any(nil), srv.joins...)
	ufrags := append([]string(nil), srv.ufrags...)
	offers := append([]string(nil), srv.offers...)
	srv.mu.Unlock()
	if len(urls) != 3 {
		t.Fatalf("%d sockets, want 3: %q", len(urls), urls)
	}
	if strings.Contains(urls[0], "resume=") || !strings.Contains(urls[1], "resume=rt1") || !strings.Contains(urls[2], "resume=rt2") {
		t.Errorf("socket queries %q: want no resume, then resume=rt1, then resume=rt2", urls)
	}
	if !strings.Contains(urls[1], "token="+srv.tok2) {
		t.Errorf("the resume used %q, want the refreshed token", urls[1])
	}
	if joins[0]["version"] != "1.1" || joins[0]["lastSeq"] != nil {
		t.Errorf("first join %v: want version 1.1 and no lastSeq", joins[0])
	}
	if joins[1]["version"] != "1.1" || joins[1]["lastSeq"] != float64(3) || joins[2]["lastSeq"] != float64(4) {
		t.Errorf("resume joins %v, %v: want version 1.1 with lastSeq 3, then 4", joins[1], joins[2])
	}
	if len(offers) != 3 {
		t.Fatalf("%d publisher offers, want 3 (publish, ICE restart after each resume)", len(offers))
	}
	if ufrags[0] == ufrags[1] || ufrags[1] == ufrags[2] {
		t.Errorf("ICE ufrags %q: each resume's offer must restart ICE", ufrags)
	}
	for i, o := range offers {
		// After publisher.layers h and f are paused there: "q;~h;~f".
		simulcast := strings.Contains(o, "a=simulcast:send q;") && strings.Contains(o, "a=rid:q send\r\na=rid:h send\r\na=rid:f send")
		if !simulcast || strings.Count(o, "a=mid:") != 1 {
			t.Errorf("offer %d: want the one simulcast video m-section kept (no republish):\n%s", i, o)
		}
	}

	// A reload: the page resumes from sessionStorage with the refreshed
	// token; this server answers resumed:false: a fresh session.
	p.must(`location.reload()`)
	time.Sleep(500 * time.Millisecond)
	out, err = evalLong[json.RawMessage](p, 20*time.Second, `(async () => {
		const m = await import("/sdk/relay-client.js");
		const kept = m.RelayClient.storedSession("k");
		const c = window.client = new m.RelayClient({ requestTimeout: 5000, resumeKey: "k" });
		await c.connect("/v1/ws", `+jsString(tok1)+`);
		const join = await c.join();
		const res = { kept: !!kept, keptRelay: kept && kept.relay && kept.relay.id, relay: c.relay, resumed: c.resumed, joinResumed: join.resumed, sessionId: c.sessionId, stored: JSON.parse(sessionStorage.getItem("k")) };
		await c.leave();
		res.afterLeave = sessionStorage.getItem("k");
		return res;
	})()`)
	if err != nil {
		t.Fatalf("reload script: %v", err)
	}
	var re struct {
		Kept, Resumed, JoinResumed bool
		KeptRelay                  string
		Relay                      *struct{ ID string }
		SessionID                  string
		Stored                     struct{ ResumeToken string }
		AfterLeave                 *string
	}
	if err := json.Unmarshal(out, &re); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.urls) != 4 || !strings.Contains(srv.urls[3], "resume=rt3") || !strings.Contains(srv.urls[3], "token="+srv.tok2) {
		t.Errorf("after the reload, socket queries %q: want resume=rt3 with the refreshed token", srv.urls)
	}
	if len(srv.joins) != 4 || srv.joins[3]["lastSeq"] != float64(4) {
		t.Errorf("after the reload, joins %v: want lastSeq 4", srv.joins)
	}
	if !re.Kept || re.Resumed || re.JoinResumed || re.SessionID != "SE_2" || re.Stored.ResumeToken != "rt.fresh" {
		t.Errorf("after the reload: %s; want the kept session tried, a fresh one (SE_2) taken", out)
	}
	if re.KeptRelay != "rl1" || re.Relay != nil {
		t.Errorf("after the reload: the kept relay %q, the client's %+v; want rl1 kept, and none after a fresh session", re.KeptRelay, re.Relay)
	}
	if re.AfterLeave != nil {
		t.Errorf("leave kept the session in sessionStorage: %q", *re.AfterLeave)
	}
}
