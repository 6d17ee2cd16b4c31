package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// chromeOfferAV is a Chromium 156 publisher offer (audio and video,
// sendonly), cut to Opus and VP8 with its RTX; its line endings are LF here
// and CRLF on the wire (offerFrame).
const chromeOfferAV = `
v=0
o=- 7943938294227844424 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:r5Vd
a=ice-pwd:RlSdINBkQbP5hcfcXepo1Vig
a=ice-options:trickle
a=fingerprint:sha-256 3F:51:3A:73:F9:F8:8F:4E:79:90:B7:B4:60:4F:2C:CF:5F:7F:19:E8:18:18:03:A3:40:00:38:E7:D8:86:F5:BB
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendonly
a=msid:- db79f239-2e3a-4e2b-a396-1d1e5162e126
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=ssrc:3608308472 cname:fvG44vHfEHxMmqB5
a=ssrc:3608308472 msid:- db79f239-2e3a-4e2b-a396-1d1e5162e126
m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:r5Vd
a=ice-pwd:RlSdINBkQbP5hcfcXepo1Vig
a=ice-options:trickle
a=fingerprint:sha-256 3F:51:3A:73:F9:F8:8F:4E:79:90:B7:B4:60:4F:2C:CF:5F:7F:19:E8:18:18:03:A3:40:00:38:E7:D8:86:F5:BB
a=setup:actpass
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendonly
a=msid:- 4e208403-d2f7-4d8a-baf3-863e0fa093c2
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=ssrc-group:FID 3977667468 339606642
a=ssrc:3977667468 cname:fvG44vHfEHxMmqB5
a=ssrc:3977667468 msid:- 4e208403-d2f7-4d8a-baf3-863e0fa093c2
a=ssrc:339606642 cname:fvG44vHfEHxMmqB5
a=ssrc:339606642 msid:- 4e208403-d2f7-4d8a-baf3-863e0fa093c2
`

// offerFrame is an offer request carrying chromeOfferAV as a browser sends it.
func fuzzOfferFrame(id int) string {
	sdp, _ := json.Marshal(strings.ReplaceAll(strings.TrimPrefix(chromeOfferAV, "\n"), "\n", "\r\n"))
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"offer","params":{"sdp":%s}}`, id, sdp)
}

// Session kinds the dispatch target connects as (its first input byte).
const (
	asHost   = iota // the host of a new room: join creates it
	asViewer        // a viewer of a new room, made with no host in it
	asUser          // a user session: no room, invitations only
	numKinds
)

// barrierID is the id of the request sent after each fuzzed frame: its
// answer (-32601) says every earlier frame has been answered.
const barrierID = "zz-barrier-7f3a9c"

// FuzzDispatch sends arbitrary frames, split at NUL bytes (at most 8), over
// a real WebSocket to a real server (newTestServer: the sfu on loopback, bbolt
// stores), after a token of one of three kinds. After each frame it sends
// a barrier request and reads up to its answer.
//
// Invariants: nothing panics (a handler panic answers -32603, which is
// refused); every message the server sends is a JSON-RPC 2.0 object; each
// frame is answered as parse predicts: a bad frame by one error with its
// id, a request by exactly one answer with its id, a notification or a
// response by none; a socket closes only with a close frame; when the
// client goes, its session ends and no goroutine is left behind.
func FuzzDispatch(f *testing.F) {
	for i, s := range rpcSeeds {
		f.Add(uint8(i%numKinds), []byte(s))
	}
	join := `{"jsonrpc":"2.0","id":1,"method":"join"}`
	seqs := [][]string{
		{join, fuzzOfferFrame(2), `{"jsonrpc":"2.0","id":3,"method":"trickle","params":{"target":"publisher","candidate":{"candidate":"candidate:1467250027 1 udp 2122260223 127.0.0.1 46243 typ host generation 0","sdpMid":"0","sdpMLineIndex":0}}}`},
		{join, fuzzOfferFrame(2), fuzzOfferFrame(3), `{"jsonrpc":"2.0","id":4,"method":"leave"}`},
		{join, `{"jsonrpc":"2.0","id":2,"method":"invitation.create","params":{"user":"bob"}}`, `{"jsonrpc":"2.0","id":3,"method":"invitation.list"}`, `{"jsonrpc":"2.0","id":4,"method":"cohost.remove","params":{"user":"bob"}}`},
		{join, `{"jsonrpc":"2.0","id":2,"method":"invitation.accept","params":{"id":"inv_x"}}`, `{"jsonrpc":"2.0","id":3,"method":"stage.leave"}`},
		{join, `{"jsonrpc":"2.0","id":2,"method":"chat.send","params":{"text":"hi"}}`, `{"jsonrpc":"2.0","id":3,"method":"chat.history","params":{"limit":5}}`, `{"jsonrpc":"2.0","id":4,"method":"chat.delete","params":{"id":"m1"}}`},
		{join, `{"jsonrpc":"2.0","id":2,"method":"participant.kick","params":{"identity":"bob"}}`, `{"jsonrpc":"2.0","id":3,"method":"room.stop"}`},
		{join, `{"jsonrpc":"2.0","id":2,"method":"relay.start","params":{"destinations":[{"room":"elsewhere","token":"a.b.c"}]}}`, `{"jsonrpc":"2.0","id":3,"method":"relay.pause"}`, `{"jsonrpc":"2.0","id":4,"method":"relay.stop"}`},
		{join, `{"jsonrpc":"2.0","id":"s1","result":{"sdp":"v=0"}}`, `{"jsonrpc":"2.0","method":"leave"}`},
	}
	for _, seq := range seqs {
		for kind := uint8(0); kind < numKinds; kind++ {
			f.Add(kind, []byte(strings.Join(seq, "\x00")))
		}
	}

	dir := fuzzDataDir(f)
	ts := newTestServer(f, func(o *serverOpts) { o.dataDir = dir })
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, kind uint8, input []byte) {
		room := fmt.Sprintf("fz%d", n.Add(1)) // each input its own room
		var tok string
		switch kind % numKinds {
		case asHost:
			tok = ts.token(t, "alice", room, "host")
		case asViewer:
			if _, err := ts.SFU.CreateRoom(room, "hank", "", ""); err != nil {
				t.Fatal(err)
			}
			tok = ts.token(t, "bob", room, "viewer")
		case asUser:
			tok = ts.token(t, "bob", "", "")
		}
		frames := bytes.SplitN(input, []byte{0}, 8)
		before := runtime.NumGoroutine()
		c, _, err := websocket.DefaultDialer.Dial(ts.wsURL(tok), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close() // when a check fails; closed below otherwise
		closed := ""
		for i, frame := range frames {
			if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
				break // the server closed the socket, checked below
			}
			barrier := fmt.Sprintf(`"%s-%d"`, barrierID, i)
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":`+barrier+`,"method":"zz.barrier"}`))
			if closed = readAnswers(t, c, frame, json.RawMessage(barrier)); closed != "" {
				break
			}
		}
		_ = c.Close()

		deadline := time.Now().Add(10 * time.Second)
		for ts.Srv.sessionCount() > 0 || runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				t.Fatalf("after the client left: %d sessions, %d goroutines (%d before it came)",
					ts.Srv.sessionCount(), runtime.NumGoroutine(), before)
			}
			time.Sleep(100 * time.Microsecond)
		}
	})
}

func (s *Server) sessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// readAnswers reads what the server sends after frame, up to the answer to
// the barrier, and checks it. It returns why the socket closed, if it did.
func readAnswers(t *testing.T, c *websocket.Conn, frame []byte, barrier json.RawMessage) string {
	t.Helper()
	// What the frame must be answered with: parse's verdict.
	m, id, perr := parse(frame)
	want := 0
	switch {
	case len(frame) > maxFrame:
		// Closes the socket with 1009, unanswered.
	case perr != nil, m.Method != nil && m.ID != nil:
		want = 1
	}
	got := 0
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code == websocket.CloseAbnormalClosure {
				t.Fatalf("after %q: the socket ended without a close frame: %v", frame, err)
			}
			return fmt.Sprintf("%d %s", ce.Code, ce.Text)
		}
		var r struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  *string         `json:"method"`
			Result  json.RawMessage `json:"result"`
			Error   *Error          `json:"error"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.JSONRPC != "2.0" {
			t.Fatalf("after %q: the server sent %q", frame, b)
		}
		if r.Method != nil {
			continue // a notification, or a request of the server's
		}
		if (r.Result == nil) == (r.Error == nil) {
			t.Fatalf("after %q: an answer with both or neither result and error: %s", frame, b)
		}
		if r.Error != nil && r.Error.Code == CodeInternal {
			t.Fatalf("after %q: internal error %q", frame, r.Error.Message)
		}
		if r.Error != nil && goTypeInMessage(r.Error.Message) {
			t.Fatalf("after %q: error %q names a Go type", frame, r.Error.Message)
		}
		if sameJSON(r.ID, barrier) {
			if got != want {
				t.Fatalf("%q answered %d times, want %d", frame, got, want)
			}
			return ""
		}
		if want == 0 || !sameJSON(r.ID, id) {
			t.Fatalf("after %q (id %s): unexpected answer %s", frame, id, b)
		}
		if perr != nil && (r.Error == nil || r.Error.Code != perr.Code) {
			t.Fatalf("%q: answered %s, want error %d", frame, b, perr.Code)
		}
		got++
	}
}

// fuzzDataDir returns a directory on tmpfs for a fuzz target's stores, or
// "" (newTestServer then uses t.TempDir): bbolt fsyncs every write, and a
// host's join writes the room, which would bound a target at a few
// hundred inputs a second.
//
// The fuzzing engine stops its worker processes without running their
// cleanups, so a directory is named after its process, and those of
// processes gone are removed here.
func fuzzDataDir(f *testing.F) string {
	const shm = "/dev/shm"
	if st, err := os.Stat(shm); err != nil || !st.IsDir() {
		return ""
	}
	old, _ := filepath.Glob(filepath.Join(shm, "relayd-fuzz-*"))
	for _, d := range old {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "relayd-fuzz-%d-", &pid); err == nil && pid > 0 && syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
	d, err := os.MkdirTemp(shm, fmt.Sprintf("relayd-fuzz-%d-", os.Getpid()))
	if err != nil {
		return ""
	}
	f.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}
