package client

// Resume (protocol 1.1, docs/protocol.md §8.12): a 1.1 session whose
// socket dropped comes back within the server's grace as the same
// participant. Resume opens /v1/ws?token=T&resume=R with the newest
// session token (token.refresh replaces it) and resume token (each join
// result has a new one), joins {version:"1.1", lastSeq} and then:
//   - resumed: the missed notifications arrive (those already seen are
//     dropped by seq), the server's subscriber offer restarts ICE on the
//     subscriber PC (answered as any offer), and Resume restarts ICE on
//     the publisher PC itself (an offer with new credentials: no track is
//     republished);
//   - not resumed (the grace ran out, the token was used...): a fresh
//     session; the old PeerConnections are closed, as the contract asks,
//     and the caller publishes again.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// TokenRefreshEvent is the params of token.refresh (1.1, §8.13): a new
// session token with the same claims, to use for the next resume or
// rejoin (Token returns the newest), and fresh ICE servers.
type TokenRefreshEvent struct {
	Token      string      `json:"token"`
	ExpiresAt  time.Time   `json:"expiresAt"`
	ICEServers []ICEServer `json:"iceServers"`
}

// Token returns the session token a resume would use now: the one given
// to Dial, or the newest token.refresh's.
func (c *Client) Token() string {
	c.resumeMu.Lock()
	defer c.resumeMu.Unlock()
	return c.token
}

// ResumeToken returns the newest join result's resume token ("" before a
// 1.1 join).
func (c *Client) ResumeToken() string {
	c.resumeMu.Lock()
	defer c.resumeMu.Unlock()
	return c.resumeToken
}

// joined keeps a join result's resume token.
func (c *Client) joined(r *JoinResult) {
	if r.ResumeToken == "" {
		return
	}
	c.resumeMu.Lock()
	c.resumeToken = r.ResumeToken
	c.resumeMu.Unlock()
}

// tokenRefreshed keeps a token.refresh's token; the reader calls it.
func (c *Client) tokenRefreshed(n Notification) {
	var ev TokenRefreshEvent
	if n.Decode(&ev) != nil || ev.Token == "" {
		return
	}
	c.resumeMu.Lock()
	c.token = ev.Token
	c.resumeMu.Unlock()
}

// resumeResult looks at the answer to a resume's join on ws, in the
// reader, before the caller gets it: a fresh session (resumed false)
// numbers its notifications from 1 again, so nothing is dropped as seen.
func (c *Client) resumeResult(ws *wsock, m wireMessage) {
	if ws.joinID == 0 || string(m.ID) != strconv.FormatInt(ws.joinID, 10) {
		return
	}
	ws.joinID = 0
	if m.Error != nil {
		return // -32602 (lastSeq): the session is still held
	}
	var r struct {
		Resumed bool `json:"resumed"`
	}
	if json.Unmarshal(m.Result, &r) == nil && !r.Resumed {
		ws.dedup = 0
		c.lastSeq.Store(0)
	}
}

// ResumeOptions adjust Resume.
type ResumeOptions struct {
	// Token is the session token to open the socket with; "": Token().
	Token string
	// LastSeq, when set, is sent instead of LastSeq() (tests of the
	// server's checks).
	LastSeq *uint64
	// KeepPeers keeps the PeerConnections untouched after the join:
	// no publisher ICE restart when resumed, no closing when not.
	KeepPeers bool
	// Reloaded resumes as a reloaded page does: the PeerConnections are
	// closed first, and the session's tracks are published again on a
	// new publisher PC by the caller (Publish), which the server makes
	// the new source of the same tracks; the server's subscriber offer
	// makes a new subscriber PC.
	Reloaded bool
}

// Resume resumes the session on a new WebSocket (see the top of this
// file). The old socket is closed first if it is still open. An expired
// token gets *HTTPError 401 (a new one must come from the back end); a
// lastSeq past the server's gets *RPCError -32602 with the session still
// held (Resume may be called again).
func (c *Client) Resume(ctx context.Context, o ResumeOptions) (*JoinResult, error) {
	select {
	case <-c.done:
		return nil, ErrClosed
	default:
	}
	c.resumeMu.Lock()
	tok, rt, base := c.token, c.resumeToken, c.baseURL
	c.resumeMu.Unlock()
	if o.Token != "" {
		tok = o.Token
	}
	if rt == "" {
		return nil, errors.New("client: no resume token (join with version 1.1 first)")
	}
	old := c.ws.Load()
	_ = old.conn.Close()
	if o.Reloaded {
		c.dropPeers()
	}
	select {
	case <-old.closed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	u, err := wsURL(base, tok)
	if err != nil {
		return nil, err
	}
	u += "&resume=" + url.QueryEscape(rt)
	ws, err := c.dialWS(ctx, u)
	if err != nil {
		return nil, err
	}
	last := c.lastSeq.Load()
	if o.LastSeq != nil {
		last = *o.LastSeq
	}
	id := c.nextID.Add(1)
	ws.dedup, ws.joinID = c.lastSeq.Load(), id
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		_ = ws.conn.Close()
		return nil, ErrClosed
	}
	c.ws.Store(ws)
	c.wg.Add(1)
	c.mu.Unlock()
	go c.readLoop(ws)

	var r JoinResult
	if err := c.callID(ctx, id, "join", JoinParams{Version: "1.1", LastSeq: &last}, &r, nil); err != nil {
		return nil, err
	}
	c.joined(&r)
	if o.KeepPeers || o.Reloaded {
		return &r, nil
	}
	if !r.Resumed {
		c.dropPeers()
		return &r, nil
	}
	if err := c.RestartICE(ctx); err != nil {
		return &r, fmt.Errorf("client: resumed, but the publisher's ICE restart failed: %w", err)
	}
	return &r, nil
}

// RestartICE restarts ICE on the publisher PeerConnection (if there is
// one): an offer with new ICE credentials, answered by the server on the
// same PC, so tracks, ids and mids stay and nothing is republished. A
// client whose network changed calls it (Resume does after resuming).
// The subscriber PC's restart is the server's offer.
func (c *Client) RestartICE(ctx context.Context) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	p := c.pub
	c.mu.Unlock()
	if p == nil || p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed || !p.negotiated.Load() {
		return nil
	}
	p.holdTrickle() // the new generation's candidates follow the offer
	c.refreshInterfaces()
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return fmt.Errorf("client: create restart offer: %w", err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("client: set local restart offer: %w", err)
	}
	return c.exchangeOffer(ctx, p, offer.SDP)
}

// dropPeers closes both PeerConnections after a resume that resumed
// nothing: the server has a fresh session with none.
func (c *Client) dropPeers() {
	c.mu.Lock()
	pub, sub := c.pub, c.sub
	c.pub, c.sub = nil, nil
	c.mu.Unlock()
	for _, p := range []*peer{pub, sub} {
		if p != nil {
			_ = p.pc.Close()
		}
	}
}

// holdTrickle holds the PC's local candidates until startTrickle: an ICE
// restart's new candidates must not reach the server before the offer or
// answer that carries their credentials.
func (p *peer) holdTrickle() {
	p.localMu.Lock()
	p.canTrickle = false
	p.localMu.Unlock()
}

// DropSocket closes the WebSocket at once, without a close frame, as a
// network that went away does: the server holds a 1.1 session for its
// grace. The PeerConnections are left as they are. Resume comes back.
func (c *Client) DropSocket() {
	ws := c.ws.Load()
	_ = ws.conn.Close()
	<-ws.closed
}

// liveNet is the client's transport.Net: the standard library's, with the
// list of interfaces read again on refresh. pion's ICE agent gathers from
// its Net's list, which stdnet reads once: without a refresh, an ICE
// restart after a network change (Wi-Fi to cellular) would gather the
// addresses that are gone.
type liveNet struct {
	transport.Net // the first list's: sockets and resolving use no list
	cur           atomic.Pointer[stdnet.Net]
}

func newLiveNet() (*liveNet, error) {
	first, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("client: reading the network interfaces: %w", err)
	}
	n := &liveNet{Net: first}
	n.cur.Store(first)
	return n, nil
}

// Interfaces returns the interfaces as last read.
func (n *liveNet) Interfaces() ([]*transport.Interface, error) { return n.cur.Load().Interfaces() }

// InterfaceByIndex looks in the interfaces as last read.
func (n *liveNet) InterfaceByIndex(i int) (*transport.Interface, error) {
	return n.cur.Load().InterfaceByIndex(i)
}

// InterfaceByName looks in the interfaces as last read.
func (n *liveNet) InterfaceByName(name string) (*transport.Interface, error) {
	return n.cur.Load().InterfaceByName(name)
}

// refresh reads the interfaces again (a failure keeps the last list).
func (n *liveNet) refresh() {
	if fresh, err := stdnet.NewNet(); err == nil {
		n.cur.Store(fresh)
	}
}

// refreshInterfaces reads the interfaces again before an ICE restart.
func (c *Client) refreshInterfaces() {
	if c.net != nil {
		c.net.refresh()
	}
}
