package client

// The session: Dial, Close, join/leave, and the two PeerConnections
// (publisher: the client offers; subscriber: the server offers).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Options configures Dial.
type Options struct {
	Logger *slog.Logger // nil = discard
	// API builds the client's PeerConnections; nil = a new NewAPI() (or
	// NewAPIWithSettingEngine(*SettingEngine)) per client.
	API *webrtc.API
	// SettingEngine replaces LoopbackSettingEngine when API is nil (for use
	// beyond loopback).
	SettingEngine *webrtc.SettingEngine
	// Header is sent with the WebSocket upgrade (e.g. Origin).
	Header http.Header
	// NetDialContext, when set, opens the WebSocket's connection (e.g.
	// from a given local address); nil: a net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ReceiveDrop, when set, is asked about each new packet received on a
	// NACK-enabled stream (video) and drops those it returns true for, once:
	// pion's NACK generator then NACKs them and the retransmission gets
	// through (see DroppedOnPurpose, Recovered). A stream's first packet is
	// never offered. It needs a per-client API (with SRTP replay protection
	// off, see Dial): setting both API and ReceiveDrop is an error.
	ReceiveDrop func(seq uint16) bool
	// TrackReader, when set, replaces the built-in reader of every received
	// track (for load testers that keep their own, cheaper, accounting). It
	// runs on the track's goroutine and must read rt.Remote() until Read
	// fails; the RemoteTrack's counters then stay at zero, and Ended is
	// closed when it returns.
	TrackReader func(rt *RemoteTrack)
	// ICEServers, when set, picks the PeerConnections' ICE servers from
	// the join result's iceServers (AllICEServers: all of them;
	// FilterICEServers: some); nil: none, host candidates only (ice.go).
	ICEServers func(fromJoin []ICEServer) []webrtc.ICEServer
	// ICETransportPolicy ICETransportPolicyRelay gathers relayed (TURN)
	// candidates only: a client forced through the TURN server.
	ICETransportPolicy webrtc.ICETransportPolicy
}

// RTCPHandler is implemented by local tracks that want the RTCP their
// sender receives (SyntheticTrack does). Publish reads every sender's RTCP
// (the NACK responder needs it read) and passes it on to such tracks.
type RTCPHandler interface {
	HandleRTCP(pkts []rtcp.Packet)
}

// Client is one signaling session and its PeerConnections. Its methods are
// safe for concurrent use. Close releases everything.
type Client struct {
	log         *slog.Logger
	api         *webrtc.API
	drop        *dropStats
	trackReader func(*RemoteTrack) // Options.TrackReader
	ice         *iceState          // ice.go

	// rpc.go
	ws           atomic.Pointer[wsock] // the socket now (resume.go replaces it)
	writeMu      sync.Mutex
	nextID       atomic.Int64
	pendMu       sync.Mutex
	pending      map[int64]chan rpcResponse
	abandoned    map[int64]struct{}
	notifCh      chan Notification
	notifDropped atomic.Int64
	rawCh        chan json.RawMessage
	backlogMu    sync.Mutex
	backlog      []backlogEntry // in seq order
	backlogSeq   uint64         // the last entry's seq
	backlogWake  chan struct{}
	lastSeq      atomic.Uint64 // the last notification's seq (1.1)

	// resume.go
	resumeMu    sync.Mutex
	baseURL     string
	token       string // the newest session token (token.refresh replaces it)
	resumeToken string // the newest join result's
	dialer      websocket.Dialer
	header      http.Header
	net         *liveNet // nil with Options.API (its own)

	// signaling worker: server "offer" requests and "trickle" notifications
	sigMu    sync.Mutex
	sigQueue []signal
	sigWake  chan struct{}

	done      chan struct{} // Close was called
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	pubMu     sync.Mutex // serializes Publish / Unpublish
	mu        sync.Mutex
	closing   bool
	pub       *peer
	sub       *peer
	tracks    *trackSet
	subOffers atomic.Int64
	earlySub  []webrtc.ICECandidateInit // subscriber candidates before any subscriber PC

	sim simulcastState // simulcast.go
}

type signal struct {
	id     json.RawMessage // set for requests
	method string
	params json.RawMessage
}

// Dial opens GET <baseURL>/v1/ws?token=<token> (baseURL is http://host:port;
// ws:// also works). It does not join. An HTTP answer instead of an upgrade
// (e.g. 401) is returned as *HTTPError.
func Dial(ctx context.Context, baseURL, token string, opts Options) (*Client, error) {
	u, err := wsURL(baseURL, token)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		log:         log,
		api:         opts.API,
		trackReader: opts.TrackReader,
		ice:         newICEState(opts),
		pending:     map[int64]chan rpcResponse{},
		abandoned:   map[int64]struct{}{},
		notifCh:     make(chan Notification, notifyBuffer),
		rawCh:       make(chan json.RawMessage, rawBuffer),
		backlogWake: make(chan struct{}),
		sigWake:     make(chan struct{}, 1),
		done:        make(chan struct{}),
		tracks:      newTrackSet(),
	}
	se := LoopbackSettingEngine()
	if opts.SettingEngine != nil {
		se = *opts.SettingEngine
	}
	if opts.API == nil {
		// The client's own view of the interfaces, read again at each ICE
		// restart (resume.go): a network change brings new addresses.
		if c.net, err = newLiveNet(); err != nil {
			return nil, err
		}
		se.SetNet(c.net)
	}
	switch {
	case opts.ReceiveDrop != nil && opts.API != nil:
		return nil, errors.New("client: Options.API and Options.ReceiveDrop are exclusive")
	case opts.ReceiveDrop != nil:
		if c.api, c.drop, err = newDropAPI(se, opts.ReceiveDrop); err != nil {
			return nil, err
		}
	case c.api == nil:
		if c.api, err = NewAPIWithSettingEngine(se); err != nil {
			return nil, err
		}
	}

	c.dialer = websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: opts.NetDialContext} // no Proxy: never leave the machine via a proxy
	c.header, c.baseURL, c.token = opts.Header, baseURL, token
	ws, err := c.dialWS(ctx, u)
	if err != nil {
		return nil, err
	}
	c.ws.Store(ws)
	c.wg.Add(2)
	go c.readLoop(ws)
	go c.signalLoop()
	return c, nil
}

// dialWS opens the WebSocket at u.
func (c *Client) dialWS(ctx context.Context, u string) (*wsock, error) {
	conn, resp, err := c.dialer.DialContext(ctx, u, c.header)
	if err != nil {
		if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			return nil, newHTTPError("websocket upgrade", resp.StatusCode, body)
		}
		return nil, fmt.Errorf("client: dial %s: %w", u, err)
	}
	conn.SetReadLimit(clientReadLimit)
	return &wsock{conn: conn, closed: make(chan struct{})}, nil
}

// wsock is one WebSocket of the session and how it ended.
type wsock struct {
	conn   *websocket.Conn
	closed chan struct{} // closed when its reader has stopped
	code   atomic.Int32  // its close code, once closed
	// dedup: a resume's replay may repeat what the old socket delivered;
	// notifications with a seq at or below it are dropped (until the
	// join result says the session is fresh). Owned by its reader.
	dedup uint64
	// joinID is the id of the resume's join call on this socket (0:
	// none), whose result the reader looks at.
	joinID int64
}

// Close closes the WebSocket (1000) and both PeerConnections and waits for
// every goroutine of the client. Idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		pub, sub := c.pub, c.sub
		c.mu.Unlock()
		close(c.done)

		ws := c.ws.Load()
		_ = ws.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeReplyWait))
		select {
		case <-ws.closed:
		case <-time.After(closeReplyWait):
		}
		c.closeErr = ws.conn.Close()

		var errs []error
		for _, p := range []*peer{pub, sub} {
			if p != nil {
				errs = append(errs, p.pc.GracefulClose())
			}
		}
		c.wg.Wait()
		if err := errors.Join(errs...); err != nil && c.closeErr == nil {
			c.closeErr = err
		}
	})
	return c.closeErr
}

// Join calls "join" with no params: a version 1.0 session (§4.4). Use
// JoinWith to opt in to 1.1.
func (c *Client) Join(ctx context.Context) (*JoinResult, error) {
	return c.JoinWith(ctx, JoinParams{})
}

// JoinWith calls "join" with p and returns its result. With Version "1.1"
// the session is a 1.1 one: every notification but trickle then has a seq
// (Notification.Seq, LastSeq), and a host's join into an ended room starts
// the room's next broadcast (§8.9).
func (c *Client) JoinWith(ctx context.Context, p JoinParams) (*JoinResult, error) {
	var r JoinResult
	if err := c.Call(ctx, "join", p, &r); err != nil {
		return nil, err
	}
	c.joined(&r)
	c.ice.setJoin(r.ICEServers)
	id := r.Participant.Identity
	c.sim.identity.Store(&id)
	return &r, nil
}

// Leave calls "leave"; the server then closes the socket with 1000.
func (c *Client) Leave(ctx context.Context) error {
	return c.Call(ctx, "leave", struct{}{}, nil)
}

// Tracks returns a snapshot of the tracks received so far (ended ones
// included), in arrival order.
func (c *Client) Tracks() []*RemoteTrack { return c.tracks.snapshot() }

// WaitTrack waits for a received track of that kind ("audio", "video", ""
// for any) for which match is true (nil = any) and returns it. Tracks already
// received count, in arrival order, ended ones included (match can check
// IsEnded). A track appears when its first packet arrives (pion's OnTrack).
// It returns ctx's error, or ErrClosed after Close.
func (c *Client) WaitTrack(ctx context.Context, kind string, match func(*RemoteTrack) bool) (*RemoteTrack, error) {
	return c.tracks.wait(ctx, kind, match, c.done)
}

// DroppedOnPurpose counts packets dropped by Options.ReceiveDrop.
func (c *Client) DroppedOnPurpose() int {
	if c.drop == nil {
		return 0
	}
	return int(c.drop.dropped.Load())
}

// Recovered counts packets dropped by Options.ReceiveDrop that were later
// received (retransmitted), each once.
func (c *Client) Recovered() int {
	if c.drop == nil {
		return 0
	}
	return int(c.drop.recovered.Load())
}

// SubscriberOffers counts the server's subscriber offers answered
// successfully.
func (c *Client) SubscriberOffers() int { return int(c.subOffers.Load()) }

// PublisherPC returns the current publisher PeerConnection, or nil.
func (c *Client) PublisherPC() *webrtc.PeerConnection {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub == nil {
		return nil
	}
	return c.pub.pc
}

// SubscriberPC returns the current subscriber PeerConnection, or nil.
func (c *Client) SubscriberPC() *webrtc.PeerConnection {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub == nil {
		return nil
	}
	return c.sub.pc
}
