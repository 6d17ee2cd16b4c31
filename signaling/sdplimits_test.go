package signaling

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/sfu"
)

// offerFrame is an "offer" request carrying sdp.
func offerFrame(t *testing.T, id int, sdp string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "offer", "params": map[string]string{"sdp": sdp}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const offerHead = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\n" +
	"a=fingerprint:sha-256 5F:5C:B6:52:07:A0:B0:6C:60:DD:5E:5B:BB:12:81:C3:8E:84:28:70:0E:D9:1D:A7:01:45:A6:81:95:51:04:AF\r\n"

// manyMLines is an offer of n small video m-lines, as in the hardening
// issue: 500 of them fit a frame and made a 119 KB answer.
func manyMLines(n int) string {
	var b strings.Builder
	b.WriteString(offerHead)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:%d\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n", i)
	}
	return b.String()
}

// An offer beyond the limits gets -32602 and changes nothing: the room,
// the participant and the session are as before, and a real publisher
// then publishes on the same session. Params come before permissions: a
// viewer's oversized offer gets -32602, not 4003.
func TestOfferLimits(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dialRaw(t, ts.token(t, "alice", "r1", "host"))
	if r := c.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`); r.Error != nil {
		t.Fatal(r.Error)
	}
	frame500 := offerFrame(t, 2, manyMLines(500))
	if len(frame500) > maxFrame {
		t.Fatalf("the 500 m-line offer takes %d bytes, more than a frame", len(frame500))
	}
	for i, sdp := range []string{
		manyMLines(500),
		manyMLines(sfu.MaxMediaSections + 1),
		offerHead, // no m-line
	} {
		wantError(t, c.send(offerFrame(t, 10+i, sdp)), CodeInvalidParams, fmt.Sprint(10+i))
	}
	info := ts.SFU.Room("r1").Info(true)
	if info.Status != sfu.StatusIdle || len(info.Participants) != 1 || len(info.Participants[0].Tracks) != 0 {
		t.Fatalf("room after refused offers: %+v", info)
	}

	v := ts.dialRaw(t, ts.token(t, "bob", "r1", "viewer"))
	if r := v.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`); r.Error != nil {
		t.Fatal(r.Error)
	}
	wantError(t, v.send(offerFrame(t, 2, manyMLines(500))), CodeInvalidParams, "2")
	wantError(t, v.send(offerFrame(t, 3, manyMLines(1))), CodeForbidden, "3")

	// The host's session is intact: a real publisher gets through, and a
	// viewer receives it.
	_ = c.Close()
	host, _ := ts.join(t, "alice", "r1", "host")
	publish(t, host)
	viewer, _ := ts.join(t, "carol", "r1", "viewer")
	receiving(t, viewer, "video", 10)
}

// answerMargin is the part of a frame left for what the test server's
// answers lack: its loopback-only ICE gathers one candidate, a production
// server one per interface address (~110 bytes each in the answer).
const answerMargin = 8 << 10

// The answer to the largest offer the limits allow fits a frame, with
// answerMargin to spare. Each offer spends its whole budget (size,
// m-lines, payload types, mid and rid lengths) on what pion's answer
// repeats or expands the most.
func TestLargestOfferAnswerFits(t *testing.T) {
	ts := newTestServer(t)
	for i, tc := range []struct {
		name string
		sdp  string
	}{
		{"wildcard feedback on every payload type, padded with an echoed fmtp", worstOffer(worstShape{wildcards: true, fmtpPad: "<"})},
		{"long mids and rids, no BUNDLE group or simulcast line to pay for them", worstOffer(worstShape{wildcards: true, tags: true, fmtpPad: "x"})},
		{"payload types on one m-line", worstOffer(worstShape{oneMLine: true, wildcards: true, fmtpPad: "x"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := sfu.ValidateSDP(tc.sdp); err != nil {
				t.Fatalf("the offer is not within the limits: %v", err)
			}
			c := ts.dialRaw(t, ts.token(t, fmt.Sprint("h", i), fmt.Sprint("r", i), "host"))
			if r := c.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`); r.Error != nil {
				t.Fatal(r.Error)
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(offerFrame(t, 2, tc.sdp))); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				_, frame, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				var r rpcReply
				if json.Unmarshal(frame, &r) != nil || string(r.ID) != "2" {
					continue
				}
				if r.Error != nil {
					t.Fatalf("offer refused: %v", r.Error)
				}
				t.Logf("offer %d bytes (JSON-escaped), answer frame %d bytes", jsonSize(tc.sdp), len(frame))
				if len(frame) > maxFrame-answerMargin {
					t.Fatalf("answer frame of %d bytes: over %d (a frame less the candidates' margin)", len(frame), maxFrame-answerMargin)
				}
				return
			}
		})
	}
}

func jsonSize(s string) int {
	b, _ := json.Marshal(s)
	return len(b) - 2
}

type worstShape struct {
	oneMLine  bool   // every payload type on one m-line (else spread over MaxMediaSections)
	wildcards bool   // "a=rtcp-fb:* ..." for every feedback the server accepts
	tags      bool   // 32-character mids and 8 32-character rids per m-line, no group
	fmtpPad   string // fill the size budget with this in an accepted codec's fmtp
}

// worstOffer builds an offer at every limit at once.
func worstOffer(w worstShape) string {
	sections := sfu.MaxMediaSections
	if w.oneMLine {
		sections = 1
	}
	per := sfu.MaxFormats / sections
	var b strings.Builder
	b.WriteString(offerHead)
	mid := func(i int) string {
		if w.tags {
			return fmt.Sprintf("%032d", i)
		}
		return fmt.Sprint(i)
	}
	if !w.tags {
		mids := make([]string, sections)
		for i := range mids {
			mids[i] = mid(i)
		}
		b.WriteString("a=group:BUNDLE " + strings.Join(mids, " ") + "\r\n")
	}
	for i := 0; i < sections; i++ {
		pts := make([]string, per)
		for j := range pts {
			pts[j] = fmt.Sprint(96 - per/2 + j)
		}
		fmt.Fprintf(&b, "m=video 9 UDP/TLS/RTP/SAVPF %s\r\na=mid:%s\r\na=sendonly\r\na=rtcp-mux\r\n", strings.Join(pts, " "), mid(i))
		b.WriteString("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n")
		b.WriteString("a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n")
		if w.wildcards {
			b.WriteString("a=rtcp-fb:* nack\r\na=rtcp-fb:* nack pli\r\na=rtcp-fb:* ccm fir\r\na=rtcp-fb:* transport-cc\r\n")
		}
		for _, pt := range pts {
			fmt.Fprintf(&b, "a=rtpmap:%s VP8/90000\r\n", pt)
		}
		if w.tags {
			for k := 0; k < 8; k++ {
				fmt.Fprintf(&b, "a=rid:%031d%d\r\n", i, k)
			}
		}
	}
	// The rest of the budget goes into the fmtp of the last payload
	// type, which the answer echoes.
	line := fmt.Sprintf("a=fmtp:%d x=", 96-per/2+per-1)
	room := sfu.MaxOfferBytes - jsonSize(b.String()) - jsonSize(line+"\r\n")
	if n := room / jsonSize(w.fmtpPad); n > 0 {
		b.WriteString(line + strings.Repeat(w.fmtpPad, n) + "\r\n")
	}
	return b.String()
}

// serverFrame is a frame from the server: a response, or a request.
type serverFrame struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		SDP string `json:"sdp"`
	} `json:"params"`
	Error *Error `json:"error"`
}

// readUntil reads frames until done says so.
func (c *rawConn) readUntil(done func(serverFrame) bool) {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		var m serverFrame
		if json.Unmarshal(b, &m) != nil {
			c.t.Fatalf("server sent non-JSON %q", b)
		}
		if done(m) {
			return
		}
	}
}

func isOffer(m serverFrame) bool { return m.Method == "offer" && m.ID != nil }

// A malformed subscriber answer (no m-line, another number of m-lines
// than the offer, no sdp, SDP that does not parse) gets -32602 answering
// the server's request id, and changes nothing: no new offer, and a proper
// answer to the same offer is then taken: the viewer's PC connects.
func TestSubscriberAnswerChecked(t *testing.T) {
	ts := newTestServer(t)
	host, _ := ts.join(t, "alice", "r1", "host")
	publish(t, host)
	v := ts.dialRaw(t, ts.token(t, "bob", "r1", "viewer"))
	if r := v.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`); r.Error != nil {
		t.Fatal(r.Error)
	}
	var offer serverFrame
	v.readUntil(func(m serverFrame) bool { offer = m; return isOffer(m) })

	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer.Params.SDP}); err != nil {
		t.Fatal(err)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(ans); err != nil {
		t.Fatal(err)
	}
	<-webrtc.GatheringCompletePromise(pc)
	answer := pc.LocalDescription().SDP

	respond := func(result any) {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": offer.ID, "result": result})
		if err := v.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
	}
	for name, result := range map[string]any{
		"no m-line":           map[string]string{"sdp": answer[:strings.Index(answer, "m=")]},
		"one m-line too many": map[string]string{"sdp": answer + answer[strings.LastIndex(answer, "m="):]},
		"not SDP":             map[string]string{"sdp": "hello"},
		"no sdp":              map[string]string{},
	} {
		respond(result)
		v.readUntil(func(m serverFrame) bool {
			if isOffer(m) {
				t.Fatalf("%s: offered again after a refused answer", name)
			}
			if m.Error == nil {
				return false
			}
			if m.Error.Code != CodeInvalidParams || string(m.ID) != string(offer.ID) {
				t.Fatalf("%s: got %s %+v, want error -32602 with id %s", name, m.ID, m.Error, offer.ID)
			}
			return true
		})
	}
	respond(map[string]string{"sdp": answer})
	ctx := testCtx(t)
	for pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		if ctx.Err() != nil {
			t.Fatalf("the proper answer was not taken: the viewer's PC is %s", pc.ConnectionState())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
