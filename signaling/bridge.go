package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// bridgeDialer dials the room's node for a bridged WebSocket.
var bridgeDialer = websocket.Dialer{
	HandshakeTimeout: 5 * time.Second,
	ReadBufferSize:   1024,
	WriteBufferSize:  4096,
	WriteBufferPool:  &sync.Pool{},
}

// routeWS bridges a WebSocket whose room lives on another node and
// reports whether it answered the request (routed), and whether a bridge
// now serves it (serving: done runs when it ends, as admit says). The
// token was checked here already (401 before any upgrade); the room's
// node checks it again, and everything else.
func (s *Server) routeWS(w http.ResponseWriter, r *http.Request, c *Claims, done func()) (routed, serving bool) {
	if s.cluster == nil || c.Room == "" || r.Header.Get(hdrForwarded) != "" {
		return false, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), routeTimeout)
	target, err := s.cluster.Route(ctx, c.Room, c.Role == "host")
	cancel()
	if err != nil {
		writeHTTPError(w, Errorf(CodeInternal, "cluster: %v", err))
		return true, false
	}
	if target == "" {
		return false, false
	}
	return true, s.bridge(w, r, target, c, done)
}

// bridge connects the client to the room's node and copies frames both
// ways, unchanged, until either side closes. If the room's node vanishes
// (the connection drops without a close frame), the client is told what
// its node would have said: room.updated with the room ended, then a
// 1000 close "room ended".
//
// Goroutines: the connection's own (admit), which runs pump: it starts
// the back-to-client copy and a pinger and waits for both. It reports
// whether the bridge runs (done then runs when it ends, as admit says).
func (s *Server) bridge(w http.ResponseWriter, r *http.Request, target string, c *Claims, done func()) bool {
	u, err := url.Parse(target)
	if err != nil {
		writeHTTPError(w, Errorf(CodeInternal, "cluster: bad node URL %q", target))
		return false
	}
	u.Scheme = map[string]string{"https": "wss"}[u.Scheme]
	if u.Scheme == "" {
		u.Scheme = "ws"
	}
	u.Path, u.RawQuery = "/v1/ws", r.URL.RawQuery
	hdr := http.Header{}
	if a := r.Header.Get("Authorization"); a != "" {
		hdr.Set("Authorization", a)
	}
	hdr.Set(hdrForwarded, s.cluster.NodeID())
	back, res, err := bridgeDialer.DialContext(r.Context(), u.String(), hdr)
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			// The room's node refused (401, 409 draining): its answer.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(res.StatusCode)
			_, _ = io.Copy(w, io.LimitReader(res.Body, 1<<16))
			_ = res.Body.Close()
			return false
		}
		writeHTTPError(w, Errorf(CodeInternal, "cluster: the room's node did not answer: %v", err))
		return false
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		_ = back.Close()
		return false // the upgrader has answered
	}
	serving := s.admit(conn, func(on bool) {
		if on {
			s.bridges[conn] = true
			s.metrics.BridgedConnections.Inc()
		} else {
			delete(s.bridges, conn)
			s.metrics.BridgedConnections.Dec()
		}
	}, func() { s.pump(conn, back, c.Room) }, done)
	if !serving {
		_ = back.Close()
	}
	return serving
}

// pump copies frames until one side ends.
func (s *Server) pump(conn, back *websocket.Conn, room string) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var clientGone sync.Once
	var seqs seqTracker // owned by the goroutine below
	wg.Add(2)
	go func() { // room's node -> client
		defer wg.Done()
		for {
			typ, msg, err := back.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				select {
				case <-stop: // the client left first
				default:
					// gorilla reports a connection that ended without a
					// close frame (the node died) as a CloseError 1006.
					if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
						closeConn(conn, ce.Code, ce.Text)
					} else {
						s.nodeLost(conn, room, &seqs)
					}
				}
				_ = conn.Close()
				return
			}
			if typ == websocket.TextMessage {
				seqs.see(msg)
			}
			_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if conn.WriteMessage(typ, msg) != nil {
				_ = back.Close()
				return
			}
		}
	}()
	go func() { // keep the client's connection checked, as a session does
		defer wg.Done()
		t := time.NewTicker(pingPeriod)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)) != nil {
					return
				}
			case <-stop:
				return
			}
		}
	}()
	conn.SetReadLimit(maxFrame)
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	for { // client -> room's node
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			code, text := websocket.CloseNormalClosure, ""
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code, text = ce.Code, ce.Text
			} else if errors.Is(err, websocket.ErrReadLimit) {
				code = websocket.CloseMessageTooBig // gorilla told the client already
			}
			clientGone.Do(func() { close(stop) })
			closeConn(back, code, text)
			_ = back.Close()
			break
		}
		_ = conn.SetReadDeadline(time.Now().Add(pongWait))
		_ = back.SetWriteDeadline(time.Now().Add(writeTimeout))
		if back.WriteMessage(typ, msg) != nil {
			break // the pump above sees the loss and tells the client
		}
	}
	clientGone.Do(func() { close(stop) })
	wg.Wait()
	_ = conn.Close()
}

// nodeLost tells a bridged client that its room's node is gone: the room
// has ended, as its node would have said (rooms says how it ended), with
// the next seq of a 1.1 session.
func (s *Server) nodeLost(conn *websocket.Conn, room string, seqs *seqTracker) {
	info := s.rooms.LostRoom(room)
	params, _ := json.Marshal(map[string]any{"room": info})
	var seq uint64
	if seqs.v11 {
		seq = seqs.last + 1
	}
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_ = conn.WriteMessage(websocket.TextMessage, frameNotification("room.updated", params, seq))
	closeConn(conn, websocket.CloseNormalClosure, "room ended")
}

// seqTracker follows a bridged session's seq in the frames its room's node
// sends (PROTOCOL.md 1.1 §0): whether it is a 1.1 session (its join result
// said so, or a notification had a seq) and the last seq, so that the
// bridge's own room.updated continues the count.
type seqTracker struct {
	v11  bool
	last uint64
}

// see looks at one frame from the room's node. A frame that is not a JSON
// object changes nothing; a field of another type is skipped.
func (t *seqTracker) see(frame []byte) {
	var m struct {
		Params struct {
			Seq *uint64 `json:"seq"`
		} `json:"params"`
		Result struct {
			Version   string `json:"version"`
			SessionID string `json:"sessionId"`
		} `json:"result"`
	}
	var se *json.SyntaxError
	if err := json.Unmarshal(frame, &m); errors.As(err, &se) {
		return
	}
	if m.Params.Seq != nil {
		t.v11, t.last = true, *m.Params.Seq
	}
	if m.Result.Version == v11 && m.Result.SessionID != "" {
		t.v11 = true // the join result of a 1.1 session
	}
}

func closeConn(c *websocket.Conn, code int, text string) {
	if code == websocket.CloseNoStatusReceived || code == websocket.CloseAbnormalClosure {
		code = websocket.CloseNormalClosure
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
}
