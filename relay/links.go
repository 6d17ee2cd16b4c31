package relay

// Links: the relay's reach into rooms of other nodes (cluster mode), as a
// pipe per node pair (mediasoup's pipe transport): SRTP over one UDP flow,
// with fixed parameters, and a small control protocol over the nodes'
// HTTP (docs/cluster.md, "Relays across nodes").
//
// Control: JSON messages POSTed to the peer's LinkPath with a short-lived
// HS256 JWT (aud "relayd-node", sub the node id): hello (once per pipe:
// each side's X25519 public key, new for each pipe, and UDP port), join,
// publish, unpublish, leave (the source node to the destination's) and
// ended (back). A node sends its messages to a peer one at a time, in
// order (pipe.caller).
//
// Keys: never on the wire. Each direction's SRTP master key and salt are
// derived (HKDF-SHA256) from the pipe's X25519 shared secret and the
// cluster secret (pipe.go, keys). A hello with another key from a known
// peer means it restarted: the old pipe dies.
//
// Media: one UDP socket per node (Links.conn) carries every pipe; the
// peer's address is its HTTP address with the port from its hello.
// Each relayed track is one SSRC, announced by publish. The receiving
// side NACKs what it lost (pion's NACK generator) and sends PLIs; the
// sending side answers NACKs from the source's packet cache and passes
// PLIs to the source (through its 500 ms throttle).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/internal/jwtcheck"
	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/sfu"
)

// LinkPath is where the app mounts Links.Handler.
const LinkPath = "/internal/v1/links"

// linkAudience is the aud of the JWT a node calls its peers with.
const linkAudience = "relayd-node"

// Timeouts. Between nodes of one data centre a control call takes well
// under a millisecond; callTimeout only bounds how long a relay's join
// waits for a node that does not answer.
const (
	callTimeout    = 5 * time.Second
	tokenTTL       = time.Minute // a call's JWT
	maxBody        = 64 << 10    // bytes of a control message
	keepalive      = 500 * time.Millisecond
	silenceTimeout = 4 * time.Second // nothing from the peer for this long: it is gone
)

// LinkConfig lists a Links' dependencies.
type LinkConfig struct {
	NodeID string
	// Secret is the cluster's shared secret: it signs the calls' JWTs and
	// is the root of the pipes' SRTP keys.
	Secret []byte
	// Conn is the UDP socket every pipe uses (a socket, or a conn of the
	// ICE UDP mux: see LinkUfrag); Close closes it. nil: Links opens one
	// on UDPAddr (default ":0", a port the system picks: the peers learn
	// it in the hello).
	Conn    net.PacketConn
	UDPAddr string
	// Locate tells which node holds room (cluster placement); ok false:
	// no node is known to hold it.
	Locate func(room string) (nodeID, baseURL string, ok bool)
	// SFU holds this node's rooms, for the receiving side.
	SFU        *sfu.SFU
	Logger     *slog.Logger
	Metrics    *metrics.Metrics // default: the SFU's
	HTTPClient *http.Client     // default: a client with callTimeout and no proxy
	// The hooks of a relayed copy's state (copystate.go), each optional,
	// called from the link's handler (they must not block for long):
	// OnHeld, the source of relay participant p (here, fed over a link)
	// is held (true) or resumed (false); OnPaused, p's relay is paused
	// or resumed; OnMuted, the source of up, one of p's tracks, was muted
	// or unmuted by "publisher" or "admin".
	OnHeld   func(p *sfu.Participant, held bool)
	OnPaused func(p *sfu.Participant, paused bool)
	OnMuted  func(p *sfu.Participant, up *sfu.UpTrack, muted bool, by string)
}

// Links implements Remote: it keeps one pipe per peer node.
//
// Goroutines: read (the UDP socket's one reader); per pipe, its writer
// and caller (all in wg), and each pipe's ingress readers (in the pipe's
// wg). PeerGone and Close stop them; Close returns when none is left.
type Links struct {
	cfg  LinkConfig
	log  *slog.Logger
	conn net.PacketConn
	port int

	mu     sync.Mutex
	pipes  map[string]*pipe         // by peer node id
	byAddr map[netip.AddrPort]*pipe // up pipes, by the peer's UDP address
	closed bool

	wg sync.WaitGroup
}

// NewLinks makes a Links and starts reading its UDP socket.
func NewLinks(c LinkConfig) (*Links, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil && c.SFU != nil {
		c.Metrics = c.SFU.Metrics()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
	if c.HTTPClient == nil {
		// Straight to the peer, never through a proxy: the peer's UDP
		// address is the one its HTTP answers from.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		c.HTTPClient = &http.Client{Timeout: callTimeout, Transport: tr}
	}
	if c.Locate == nil {
		c.Locate = func(string) (string, string, bool) { return "", "", false }
	}
	l := &Links{cfg: c, log: c.Logger.With("node", c.NodeID), conn: c.Conn,
		pipes: map[string]*pipe{}, byAddr: map[netip.AddrPort]*pipe{}}
	if l.conn == nil {
		addr := c.UDPAddr
		if addr == "" {
			addr = ":0"
		}
		conn, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("relay links: %w", err)
		}
		l.conn = conn
	}
	ua, ok := l.conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, errors.New("relay links: not a UDP socket")
	}
	l.port = ua.Port
	l.wg.Add(1)
	go l.read()
	return l, nil
}

// Has implements Remote: room lives on another node.
func (l *Links) Has(room string) bool {
	id, _, ok := l.cfg.Locate(room)
	return ok && id != "" && id != l.cfg.NodeID
}

// Join implements Remote.
func (l *Links) Join(room, identity, name, srcRoom string, ended func(Error)) (RemoteDest, Error) {
	nodeID, baseURL, ok := l.cfg.Locate(room)
	if !ok || nodeID == l.cfg.NodeID {
		return nil, ErrFailedJoinDest
	}
	p, err := l.connect(nodeID, baseURL)
	if err != nil {
		l.log.Info("relay link unavailable", "peer", nodeID, "dest", room, "err", err)
		return nil, ErrServerConnectionLost
	}
	return p.join(room, identity, name, srcRoom, ended)
}

// Up returns the number of pipes that are up (tests: one per node pair;
// the app: the relayd_relay_links gauge).
func (l *Links) Up() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, p := range l.pipes {
		if p.up {
			n++
		}
	}
	return n
}

// PeerGone tells Links that the cluster saw nodeID die: its pipe is closed;
// every remote destination through it ends (ErrServerConnectionLost) and
// the relay participants it fed here leave.
func (l *Links) PeerGone(nodeID string) {
	l.mu.Lock()
	p := l.pipes[nodeID]
	l.mu.Unlock()
	if p != nil {
		p.kill("peer gone")
	}
}

// Close closes every pipe and waits for their goroutines.
func (l *Links) Close() {
	l.mu.Lock()
	l.closed = true
	ps := make([]*pipe, 0, len(l.pipes))
	for _, p := range l.pipes {
		ps = append(ps, p)
	}
	l.mu.Unlock()
	for _, p := range ps {
		p.kill("closing")
	}
	_ = l.conn.Close() // the reader returns
	l.wg.Wait()
}

// pipeFor returns the pipe to peer, made if there is none.
func (l *Links) pipeFor(peer string) (*pipe, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("links closed")
	}
	p := l.pipes[peer]
	if p == nil {
		p = newPipe(l, peer)
		l.pipes[peer] = p
	}
	return p, nil
}

// connect returns the pipe to nodeID once it is up, saying hello first
// when it is not.
func (l *Links) connect(nodeID, baseURL string) (*pipe, error) {
	p, err := l.pipeFor(nodeID)
	if err != nil {
		return nil, err
	}
	p.dial.Lock()
	defer p.dial.Unlock()
	l.mu.Lock()
	if p.url == "" {
		p.url = baseURL
	}
	up := p.up
	l.mu.Unlock()
	if up {
		return p, nil
	}
	if p.isDead() {
		return nil, errors.New("link died")
	}
	var peerIP netip.Addr
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		if a, ok := ci.Conn.RemoteAddr().(*net.TCPAddr); ok {
			peerIP = a.AddrPort().Addr().Unmap()
		}
	}}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	var r wire
	if err := l.post(ctx, baseURL, wire{T: "hello", Node: l.cfg.NodeID, Pipe: p.local, Port: l.port}, &r); err != nil {
		p.kill("hello failed")
		return nil, err
	}
	if r.Node != nodeID || !peerIP.IsValid() {
		p.kill("bad hello")
		return nil, fmt.Errorf("hello answered by %q", r.Node)
	}
	if err := p.establish(r.Pipe, netip.AddrPortFrom(peerIP, uint16(r.Port))); err != nil {
		p.kill(err.Error())
		return nil, err
	}
	return p, nil
}

// errUnknownPipe: the peer does not know the pipe a message names (it
// restarted, or killed the pipe): the pipe is dead.
var errUnknownPipe = errors.New("the peer does not know this pipe")

// post sends one control message to the peer at baseURL and decodes its
// answer into reply.
func (l *Links) post(ctx context.Context, baseURL string, m wire, reply *wire) error {
	tok, err := l.token()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(m)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+LinkPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusConflict:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return errUnknownPipe
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return fmt.Errorf("%s: HTTP %d", m.T, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(reply); err != nil {
		return fmt.Errorf("%s: decode answer: %w", m.T, err)
	}
	return nil
}

// Handler serves the peers' control messages (mounted by the app at POST
// LinkPath): a Bearer JWT, one message in, its answer out. 409: the
// message names a pipe this node does not have (the sender must say hello
// again).
func (l *Links) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		peer, err := l.verify(r.Header.Get("Authorization"))
		if err != nil {
			l.log.Warn("link call refused", "err", err)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var m wire
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&m); err != nil || m.Node != peer || m.Pipe == "" || peer == l.cfg.NodeID {
			http.Error(w, "bad message", http.StatusBadRequest)
			return
		}
		var reply wire
		status := http.StatusOK
		if m.T == "hello" {
			reply, status = l.hello(m, r.RemoteAddr)
		} else {
			reply, status = l.serve(m)
		}
		if status != http.StatusOK {
			http.Error(w, http.StatusText(status), status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply)
	})
}

// hello answers a peer's hello: the pipe to it is up (a new one if the
// peer restarted).
func (l *Links) hello(m wire, remote string) (wire, int) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil || m.Port <= 0 || m.Port > 65535 {
		return wire{}, http.StatusBadRequest
	}
	p, err := l.pipeFor(m.Node)
	if err != nil {
		return wire{}, http.StatusServiceUnavailable
	}
	l.mu.Lock()
	restarted := p.remote != "" && p.remote != m.Pipe
	l.mu.Unlock()
	if restarted {
		p.kill("the peer restarted")
		if p, err = l.pipeFor(m.Node); err != nil {
			return wire{}, http.StatusServiceUnavailable
		}
	}
	if err := p.establish(m.Pipe, netip.AddrPortFrom(ap.Addr().Unmap(), uint16(m.Port))); err != nil {
		p.log.Warn("link hello", "err", err)
		return wire{}, http.StatusConflict
	}
	return wire{Node: l.cfg.NodeID, Pipe: p.local, Port: l.port}, http.StatusOK
}

// upWait bounds how long a message waits for its pipe to come up (serve).
const upWait = 2 * time.Second

// serve handles a message on an up pipe. When both nodes dial at once,
// the peer's pipe may be up (this node answered its hello) before this
// one is (this node's own hello has not had its answer yet), and its
// first call may come first: it waits for the pipe, at most upWait,
// rather than being refused (which kills the pipe on the peer's side).
func (l *Links) serve(m wire) (wire, int) {
	l.mu.Lock()
	p := l.pipes[m.Node]
	l.mu.Unlock()
	if p != nil {
		t := time.NewTimer(upWait)
		select {
		case <-p.upc:
		case <-p.dead:
		case <-t.C:
		}
		t.Stop()
	}
	l.mu.Lock()
	ok := p != nil && l.pipes[m.Node] == p && p.up && p.remote == m.Pipe
	l.mu.Unlock()
	if !ok {
		return wire{}, http.StatusConflict
	}
	reply := wire{Node: l.cfg.NodeID, Pipe: p.local}
	switch m.T {
	case "join":
		reply.Error = int(p.onJoin(m))
	case "publish":
		reply.Error = int(p.onPublish(m))
	case "unpublish":
		p.onUnpublish(m.Dest, m.SSRC)
	case "leave":
		p.onLeave(m.Dest)
	case "ended":
		p.onEnded(m.Dest)
	case wireHeld, wireUnheld:
		p.onHeld(m.Dest, m.T == wireHeld)
	case wirePaused, wireUnpaused:
		p.onPaused(m.Dest, m.T == wirePaused)
	case wireMuted:
		p.onMuted(m)
	default:
		return wire{}, http.StatusBadRequest
	}
	return reply, http.StatusOK
}

// token is the JWT this node calls its peers with.
func (l *Links) token() (string, error) {
	if len(l.cfg.Secret) == 0 {
		return "", errors.New("no cluster secret")
	}
	now := time.Now()
	c := jwt.RegisteredClaims{
		Subject:   l.cfg.NodeID,
		Audience:  jwt.ClaimStrings{linkAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(tokenTTL)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(l.cfg.Secret)
}

// verify checks a call's Authorization header and returns the peer's
// node id.
func (l *Links) verify(header string) (string, error) {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || tok == "" {
		return "", errors.New("no bearer token")
	}
	if len(l.cfg.Secret) == 0 {
		return "", errors.New("no cluster secret")
	}
	var c jwt.RegisteredClaims
	if err := jwtcheck.Parse(tok, &c, l.cfg.Secret, jwt.WithAudience(linkAudience)); err != nil {
		return "", err
	}
	if c.Subject == "" {
		return "", errors.New("no node id in token")
	}
	return c.Subject, nil
}

// wire is a control message, or its answer. T is one of hello, join,
// publish, unpublish, leave, ended, held, unheld. Node and Pipe name the sender and its
// pipe (its public key); Error is a join's or publish's failure (an Error).
type wire struct {
	T        string     `json:"t,omitempty"`
	Node     string     `json:"node"`
	Pipe     string     `json:"pipe"`
	Port     int        `json:"port,omitempty"`
	Dest     string     `json:"dest,omitempty"`
	Room     string     `json:"room,omitempty"`
	Identity string     `json:"identity,omitempty"`
	Name     string     `json:"name,omitempty"`
	SrcRoom  string     `json:"srcRoom,omitempty"`
	Track    string     `json:"track,omitempty"`
	Kind     string     `json:"kind,omitempty"`
	SSRC     uint32     `json:"ssrc,omitempty"`
	Codec    *wireCodec `json:"codec,omitempty"`
	// Layers: a simulcast track's layers by slot, each on an SSRC of its
	// own (the first is SSRC).
	Layers []wireLayer `json:"layers,omitempty"`
	Error  int         `json:"error,omitempty"`
	// Muted and By: a copy's mute (copystate.go); a publish says whether
	// the copy starts muted.
	Muted bool   `json:"muted,omitempty"`
	By    string `json:"by,omitempty"`
}

// wireLayer is one layer of a relayed simulcast track.
type wireLayer struct {
	RID        string `json:"rid"`
	SSRC       uint32 `json:"ssrc"`
	MaxBitrate int    `json:"maxBitrate,omitempty"`
}

// wireCodec is the codec a relayed track is sent with.
type wireCodec struct {
	MimeType  string `json:"mimeType"`
	ClockRate uint32 `json:"clockRate"`
	Channels  uint16 `json:"channels,omitempty"`
	Fmtp      string `json:"fmtp,omitempty"`
}

func toWireCodec(c webrtc.RTPCodecCapability) *wireCodec {
	return &wireCodec{MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, Fmtp: c.SDPFmtpLine}
}

func (c *wireCodec) capability() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, SDPFmtpLine: c.Fmtp}
}
