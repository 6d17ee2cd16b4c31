package relay

// Links: the relay's reach into rooms of other nodes (cluster mode).
//
// One pion PeerConnection per node pair carries every relayed track between
// the two nodes, both ways, plus one data channel for control (link.go).
//
// Bootstrap: the first node that needs the link POSTs its offer (data
// channel included, ICE gathering complete, no trickle) with a short-lived
// HS256 JWT (aud "relayd-node", sub its node id) to the peer's
// /internal/v1/links and gets the answer back. Both nodes may dial each
// other at once: the lower node id's dial wins (the higher node answers it
// and refuses the other with 409; the refused dialer waits for the winning
// dial to reach it), so there is exactly one PeerConnection per pair.
//
// Negotiation: the dialer stays the only offerer for the life of the link,
// so there is never glare (linkneg.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/sfu"
)

// LinkPath is where the app mounts Links.Handler.
const LinkPath = "/internal/v1/links"

// linkAudience is the aud of the JWT a node dials with.
const linkAudience = "relayd-node"

// Timeouts. On loopback or in one data centre a link is up in well under
// a second; these only bound how long a relay's join waits for a node that
// does not answer.
const (
	connectTimeout = 5 * time.Second // dial + ICE + DTLS + SCTP until the data channel is open
	joinTimeout    = 5 * time.Second // a join's answer over the data channel
	tokenTTL       = time.Minute     // the dial's JWT
	tokenLeeway    = 5 * time.Second // clock skew between nodes
	maxOfferBody   = 1 << 20         // bytes of a dial's request body
	keepalive      = 500 * time.Millisecond
	silenceTimeout = 4 * time.Second // no message for this long: the peer is gone
)

// LinkConfig lists a Links' dependencies.
type LinkConfig struct {
	NodeID string
	// Secret is the cluster's shared HS256 secret: peers authenticate
	// with a short-lived JWT (aud "relayd-node", sub = node id).
	Secret []byte
	// API builds the link PeerConnections: sfu.NewAPI(...).Publisher (NACK
	// generator, receiver reports, TWCC: the receiving side is a
	// publisher to its SFU).
	API *webrtc.API
	// Locate tells which node holds room (cluster placement); ok false:
	// no node is known to hold it.
	Locate func(room string) (nodeID, baseURL string, ok bool)
	// SFU holds this node's rooms, for the receiving side.
	SFU        *sfu.SFU
	Logger     *slog.Logger
	Metrics    *metrics.Metrics // default: the SFU's
	HTTPClient *http.Client     // default: a client with a 10 s timeout
}

// Links implements Remote: it keeps one link per peer node.
//
// Goroutines: one dial per link being dialed, one loop per link (both
// counted in wg), and each link's ingress readers (counted in the link).
// PeerGone and Close stop them; Close returns when none is left.
type Links struct {
	cfg LinkConfig
	log *slog.Logger

	mu     sync.Mutex
	peers  map[string]*link // by node id: the one link (dialing or up)
	closed bool

	wg sync.WaitGroup
}

// NewLinks makes a Links.
func NewLinks(c LinkConfig) *Links {
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
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Locate == nil {
		c.Locate = func(string) (string, string, bool) { return "", "", false }
	}
	return &Links{cfg: c, log: c.Logger.With("node", c.NodeID), peers: map[string]*link{}}
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
	lk, err := l.connect(nodeID, baseURL)
	if err != nil {
		l.log.Info("relay link unavailable", "peer", nodeID, "room", room, "err", err)
		return nil, ErrServerConnectionLost
	}
	return lk.join(room, identity, name, srcRoom, ended)
}

// PeerConnections returns the number of links that have a PeerConnection
// (tests: one per node pair).
func (l *Links) PeerConnections() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, lk := range l.peers {
		if lk.installed {
			n++
		}
	}
	return n
}

// PeerGone tells Links that the cluster saw nodeID die: its link is closed;
// every remote destination through it ends (ErrServerConnectionLost) and
// the relay participants it fed here leave.
func (l *Links) PeerGone(nodeID string) {
	l.mu.Lock()
	lk := l.peers[nodeID]
	l.mu.Unlock()
	if lk != nil {
		lk.kill("peer gone")
	}
}

// Close closes every link and waits for their goroutines.
func (l *Links) Close() {
	l.mu.Lock()
	l.closed = true
	lks := make([]*link, 0, len(l.peers))
	for _, lk := range l.peers {
		lks = append(lks, lk)
	}
	l.mu.Unlock()
	for _, lk := range lks {
		lk.kill("closing")
	}
	l.wg.Wait()
}

// connect returns the link to nodeID once its data channel is open,
// dialing it first when there is none.
func (l *Links) connect(nodeID, baseURL string) (*link, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("links closed")
	}
	lk := l.peers[nodeID]
	if lk == nil {
		lk = newLink(l, nodeID)
		l.peers[nodeID] = lk
		l.wg.Add(1)
		go l.dial(lk, baseURL)
	}
	l.mu.Unlock()
	t := time.NewTimer(connectTimeout)
	defer t.Stop()
	select {
	case <-lk.ready:
		return lk, nil
	case <-lk.dead:
		return nil, errors.New("link failed")
	case <-t.C:
		return nil, errors.New("link not up in time")
	}
}

// forget drops lk from the peer table if it is still there.
func (l *Links) forget(lk *link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peers[lk.peer] == lk {
		delete(l.peers, lk.peer)
	}
}

// install makes pc lk's PeerConnection and starts lk's loop, unless lk was
// replaced, already has one, or Links is closing.
func (l *Links) install(lk *link, pc *webrtc.PeerConnection, dc *webrtc.DataChannel, offerer bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.peers[lk.peer] != lk || lk.installed {
		return false
	}
	lk.installed, lk.offerer = true, offerer
	lk.pc.Store(pc)
	if dc != nil {
		lk.dc.Store(dc)
	}
	l.wg.Add(1)
	go lk.loop()
	close(lk.installedCh)
	return true
}

// linkOffer is the body of a dial and of its answer.
type linkOffer struct {
	Node string `json:"node"`
	SDP  string `json:"sdp"`
}

// dial offers a link to the peer at baseURL. Owned by Links.wg; ends when
// the link is up (its loop takes over), refused for the peer's own dial,
// or failed.
func (l *Links) dial(lk *link, baseURL string) {
	defer l.wg.Done()
	pc, dc, err := lk.newPC(true)
	if err != nil {
		lk.log.Error("link peer connection", "err", err)
		lk.kill("no peer connection")
		return
	}
	answer, status, err := l.post(lk.ctx, baseURL, pc)
	switch {
	case err == nil && status == http.StatusOK:
		if !l.install(lk, pc, dc, true) {
			_ = pc.GracefulClose()
			return
		}
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
			lk.log.Warn("link answer", "err", err)
			lk.kill("bad answer")
		}
		return
	case err == nil && status == http.StatusConflict:
		// The peer's own dial wins the tie-break: wait for it here.
		lk.log.Debug("link dials crossed: the peer's wins")
		_ = pc.GracefulClose()
		t := time.NewTimer(connectTimeout)
		defer t.Stop()
		select {
		case <-lk.installedCh:
		case <-lk.dead:
		case <-t.C:
			lk.kill("the peer's dial never came")
		}
		return
	}
	_ = pc.GracefulClose()
	if err == nil {
		err = fmt.Errorf("HTTP %d", status)
	}
	lk.log.Warn("link dial failed", "url", baseURL, "err", err)
	lk.kill("dial failed")
}

// post sends pc's offer to the peer and returns its answer.
func (l *Links) post(ctx context.Context, baseURL string, pc *webrtc.PeerConnection) (string, int, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", 0, err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", 0, err
	}
	sfu.WaitGathering(pc)
	body, _ := json.Marshal(linkOffer{Node: l.cfg.NodeID, SDP: pc.LocalDescription().SDP})
	tok, err := l.token()
	if err != nil {
		return "", 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+LinkPath, strings.NewReader(string(body)))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxOfferBody))
		return "", resp.StatusCode, nil
	}
	var a linkOffer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxOfferBody)).Decode(&a); err != nil {
		return "", 0, fmt.Errorf("decode answer: %w", err)
	}
	return a.SDP, resp.StatusCode, nil
}

// Handler accepts a peer's dial (mounted by the app at POST LinkPath):
// Bearer JWT, {node, sdp} offer in, {node, sdp} answer out. 409: this
// node's own dial to that peer wins the tie-break.
func (l *Links) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		peer, err := l.verify(r.Header.Get("Authorization"))
		if err != nil {
			l.log.Warn("link dial refused", "err", err)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var o linkOffer
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOfferBody)).Decode(&o); err != nil || o.SDP == "" || o.Node != peer {
			http.Error(w, "bad offer", http.StatusBadRequest)
			return
		}
		answer, status := l.accept(peer, o.SDP)
		if status != http.StatusOK {
			http.Error(w, http.StatusText(status), status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(linkOffer{Node: l.cfg.NodeID, SDP: answer})
	})
}

// accept answers peer's offer and makes the result the link to peer.
func (l *Links) accept(peer, offer string) (string, int) {
	if peer == l.cfg.NodeID {
		return "", http.StatusBadRequest
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return "", http.StatusServiceUnavailable
	}
	var old *link
	lk := l.peers[peer]
	switch {
	case lk == nil:
	case lk.installed && lk.offerer && peer > l.cfg.NodeID:
		// Our dial won (the peer's crossed it): the peer will use ours.
		l.mu.Unlock()
		return "", http.StatusConflict
	case lk.installed:
		// The peer dials again: it lost the link we still hold.
		old, lk = lk, nil
	case lk.accepting || peer > l.cfg.NodeID:
		// We are dialing and our dial wins.
		l.mu.Unlock()
		return "", http.StatusConflict
	}
	if lk == nil {
		lk = newLink(l, peer)
		l.peers[peer] = lk
	}
	lk.accepting = true
	l.mu.Unlock()
	if old != nil {
		old.kill("replaced by the peer's new dial")
	}

	pc, _, err := lk.newPC(false)
	if err != nil {
		lk.kill("no peer connection")
		return "", http.StatusInternalServerError
	}
	if !l.install(lk, pc, nil, false) {
		_ = pc.GracefulClose()
		return "", http.StatusServiceUnavailable
	}
	fail := func(err error) (string, int) {
		lk.log.Warn("link offer", "err", err)
		lk.kill("bad offer")
		return "", http.StatusBadRequest
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(err)
	}
	sfu.WaitGathering(pc)
	return pc.LocalDescription().SDP, http.StatusOK
}

// token is the JWT this node dials with.
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

// verify checks a dial's Authorization header and returns the peer's
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
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(linkAudience),
		jwt.WithLeeway(tokenLeeway),
	)
	if _, err := p.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return l.cfg.Secret, nil }); err != nil {
		return "", err
	}
	if c.Subject == "" {
		return "", errors.New("no node id in token")
	}
	return c.Subject, nil
}
