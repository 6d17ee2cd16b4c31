package relay

// link: the one PeerConnection between this node and one peer node, its
// control data channel and its event loop.
//
// Death: the PeerConnection going failed or closed, the data channel
// closing, no message from the peer for silenceTimeout (both sides ping
// every keepalive), the link not coming up within connectTimeout, or
// Links.PeerGone. Then kill closes the PeerConnection; every remote
// destination through it ends with ErrServerConnectionLost, and the relay
// participants it fed here leave their rooms.

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// maxFrame is the largest data channel message sent: bigger control
// messages (SDP with many m-lines) go in several frames. 16 KiB is what
// every SCTP stack takes.
const maxFrame = 16 * 1024

// maxMessage bounds a reassembled control message.
const maxMessage = 1 << 20

// Frame flags, the first byte of each data channel message.
const (
	frameLast byte = 0
	frameMore byte = 1
)

// link is one node pair's PeerConnection.
//
// Locking: Links.mu guards installed, accepting and offerer (offerer is
// set by install before the loop starts, and the loop reads it freely). mu
// guards the destination tables (out, in, byTrack) and closed. The loop
// goroutine alone negotiates, adds and removes tracks, and sends on the
// data channel, so control messages keep their order.
//
// Goroutines: loop (started by install, ends with the link); one reader
// per ingress track and one per received pion track (wg). kill stops them.
type link struct {
	l    *Links
	peer string
	log  *slog.Logger

	ctx    context.Context // the dial's; cancelled by kill
	cancel context.CancelFunc

	// guarded by l.mu
	installed, accepting, offerer bool

	installedCh chan struct{} // closed by install
	ready       chan struct{} // closed when the data channel is open
	readyOnce   sync.Once
	dead        chan struct{} // closed by kill
	killOnce    sync.Once

	pc    atomic.Pointer[webrtc.PeerConnection]
	dc    atomic.Pointer[webrtc.DataChannel]
	heard atomic.Int64 // unix nanos of the last message from the peer

	qmu   sync.Mutex
	queue []any
	wake  chan struct{}

	mu      sync.Mutex
	closed  bool
	out     map[string]*remoteDest  // sending side, by dest id
	in      map[string]*ingressDest // receiving side, by dest id
	byTrack map[string]*ingress     // receiving side, by track id
	wg      sync.WaitGroup

	// loop-owned
	neg negotiation
}

func newLink(l *Links, peer string) *link {
	ctx, cancel := context.WithCancel(context.Background())
	return &link{
		l: l, peer: peer, log: l.log.With("peer", peer),
		ctx: ctx, cancel: cancel,
		installedCh: make(chan struct{}),
		ready:       make(chan struct{}),
		dead:        make(chan struct{}),
		wake:        make(chan struct{}, 1),
		out:         map[string]*remoteDest{},
		in:          map[string]*ingressDest{},
		byTrack:     map[string]*ingress{},
	}
}

// loop events besides wire messages
type (
	evOpen      struct{}
	evDead      struct{ why string }
	evDestEnded struct{ dest string } // a relay participant here got SessionEnded
)

// newPC makes a PeerConnection for the link; the offerer also makes the
// control data channel. Callbacks of a PeerConnection that is not (or no
// longer) the link's are ignored: a dial that lost the tie-break.
func (lk *link) newPC(offerer bool) (*webrtc.PeerConnection, *webrtc.DataChannel, error) {
	pc, err := lk.l.cfg.API.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return nil, nil, err
	}
	current := func() bool { return lk.pc.Load() == pc }
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if !current() {
			return
		}
		lk.log.Debug("link state", "state", s.String())
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			lk.post(evDead{"peer connection " + s.String()})
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		if current() {
			lk.onTrack(pc, tr, recv)
		}
	})
	if !offerer {
		pc.OnDataChannel(func(dc *webrtc.DataChannel) {
			if current() && lk.dc.CompareAndSwap(nil, dc) {
				lk.watch(pc, dc)
			}
		})
		return pc, nil, nil
	}
	ordered := true
	dc, err := pc.CreateDataChannel("relayd-link", &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		_ = pc.Close()
		return nil, nil, err
	}
	lk.watch(pc, dc)
	return pc, dc, nil
}

// watch hooks the control data channel to the loop.
func (lk *link) watch(pc *webrtc.PeerConnection, dc *webrtc.DataChannel) {
	current := func() bool { return lk.pc.Load() == pc }
	dc.OnOpen(func() {
		if current() {
			lk.heard.Store(time.Now().UnixNano())
			lk.readyOnce.Do(func() { close(lk.ready) })
			lk.post(evOpen{})
		}
	})
	dc.OnClose(func() {
		if current() {
			lk.post(evDead{"data channel closed"})
		}
	})
	var buf []byte // pion calls OnMessage from one goroutine, in order
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if !current() || len(m.Data) == 0 {
			return
		}
		lk.heard.Store(time.Now().UnixNano())
		buf = append(buf, m.Data[1:]...)
		if len(buf) > maxMessage {
			buf = nil
			lk.post(evDead{"control message too large"})
			return
		}
		if m.Data[0] == frameMore {
			return
		}
		var w wire
		err := json.Unmarshal(buf, &w)
		buf = nil
		if err != nil {
			lk.log.Warn("bad control message", "err", err)
			return
		}
		if w.T != "ping" {
			lk.post(&w)
		}
	})
}

// post hands an event to the loop; it never blocks.
func (lk *link) post(ev any) {
	lk.qmu.Lock()
	lk.queue = append(lk.queue, ev)
	lk.qmu.Unlock()
	select {
	case lk.wake <- struct{}{}:
	default:
	}
}

func (lk *link) take() []any {
	lk.qmu.Lock()
	defer lk.qmu.Unlock()
	q := lk.queue
	lk.queue = nil
	return q
}

// loop runs the link's control: messages from the peer, operations of the
// relays here, keepalives. Owned by Links.wg; returns when the link dies.
func (lk *link) loop() {
	defer lk.l.wg.Done()
	start := time.Now()
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	for {
		select {
		case <-lk.dead:
			return
		case <-lk.wake:
			for _, ev := range lk.take() {
				lk.handle(ev)
				if lk.isDead() {
					return
				}
			}
		case <-tick.C:
			lk.tick(start)
		}
	}
}

func (lk *link) isDead() bool {
	select {
	case <-lk.dead:
		return true
	default:
		return false
	}
}

func (lk *link) tick(start time.Time) {
	select {
	case <-lk.ready:
	default:
		if time.Since(start) > connectTimeout {
			lk.kill("not up in time")
		}
		return
	}
	if time.Since(time.Unix(0, lk.heard.Load())) > silenceTimeout {
		lk.kill("peer silent")
		return
	}
	lk.send(wire{T: "ping"})
}

func (lk *link) handle(ev any) {
	switch e := ev.(type) {
	case *wire:
		lk.handleWire(e)
	case evOpen:
		lk.log.Info("relay link up", "offerer", lk.offerer)
	case evDead:
		lk.kill(e.why)
	case evDestEnded:
		lk.destEnded(e.dest)
	case opJoin:
		lk.send(wire{T: "join", Dest: e.rd.id, Room: e.rd.room, Identity: e.rd.identity, Name: e.name, SrcRoom: e.srcRoom})
	case opPublish:
		lk.publish(e.rd, e.ot)
	case opUnpublish:
		lk.unpublish(e.dest, []*outTrack{e.ot})
	case opLeave:
		lk.unpublish(e.dest, e.ots)
		lk.send(wire{T: "leave", Dest: e.dest})
	}
}

func (lk *link) handleWire(w *wire) {
	switch w.T {
	case "offer":
		lk.onOffer(w.SDP)
	case "answer":
		lk.onAnswer(w.SDP)
	case "applied":
		lk.onApplied()
	case "need":
		lk.onNeed(w.Audio, w.Video)
	case "join":
		lk.onJoin(w)
	case "joined", "refused", "ended":
		lk.onJoinAnswer(w)
	case "publish":
		lk.onPublish(w)
	case "unpublish":
		lk.onUnpublish(w.Dest, w.Track)
	case "leave":
		lk.onLeave(w.Dest)
	default:
		lk.log.Debug("unknown control message", "t", w.T)
	}
}

// send writes one control message, in frames of at most maxFrame bytes.
// Only the loop sends, so messages keep their order.
func (lk *link) send(w wire) {
	dc := lk.dc.Load()
	if dc == nil {
		return
	}
	b, err := json.Marshal(w)
	if err != nil {
		return
	}
	for {
		n, flag := len(b), frameLast
		if n > maxFrame-1 {
			n, flag = maxFrame-1, frameMore
		}
		frame := make([]byte, 0, n+1)
		frame = append(append(frame, flag), b[:n]...)
		if err := dc.Send(frame); err != nil {
			lk.log.Debug("control send failed", "t", w.T, "err", err)
			return
		}
		b = b[n:]
		if flag == frameLast {
			return
		}
	}
}

// kill ends the link (once): see the file comment. It returns when the
// link's PeerConnection is closed and its readers are gone.
func (lk *link) kill(why string) {
	lk.killOnce.Do(func() {
		lk.cancel()
		close(lk.dead)
		lk.l.forget(lk)
		lk.mu.Lock()
		lk.closed = true
		outs, ins := lk.out, lk.in
		lk.out, lk.in, lk.byTrack = map[string]*remoteDest{}, map[string]*ingressDest{}, map[string]*ingress{}
		var lost []*remoteDest
		var ots []*outTrack
		for _, rd := range outs {
			if rd.state == destActive && rd.returned {
				lost = append(lost, rd)
			}
			rd.state = destDone
			for _, ot := range rd.tracks {
				ots = append(ots, ot)
			}
			rd.tracks = nil
			rd.wakeJoin()
		}
		lk.mu.Unlock()
		level := slog.LevelWarn
		if why == "closing" {
			level = slog.LevelInfo
		}
		lk.log.Log(context.Background(), level, "relay link closed", "why", why, "sending", len(outs), "receiving", len(ins))
		for _, ot := range ots {
			ot.close()
		}
		for _, d := range ins {
			d.closeTracks()
		}
		if pc := lk.pc.Load(); pc != nil {
			_ = pc.GracefulClose()
		}
		lk.wg.Wait()
		for _, d := range ins {
			if d.p != nil {
				d.p.Leave()
			}
		}
		for _, rd := range lost {
			rd.ended(ErrServerConnectionLost)
		}
	})
}

// wire is a control message. t is one of: offer, answer, need (the
// answerer asks for an offer with enough m-lines), applied (the offerer
// applied the last answer), join, joined, refused, publish, unpublish,
// leave, ended, ping.
type wire struct {
	T        string     `json:"t"`
	SDP      string     `json:"sdp,omitempty"`
	Audio    int        `json:"audio,omitempty"`
	Video    int        `json:"video,omitempty"`
	Dest     string     `json:"dest,omitempty"`
	Room     string     `json:"room,omitempty"`
	Identity string     `json:"identity,omitempty"`
	Name     string     `json:"name,omitempty"`
	SrcRoom  string     `json:"srcRoom,omitempty"`
	Track    string     `json:"track,omitempty"`
	Kind     string     `json:"kind,omitempty"`
	Codec    *wireCodec `json:"codec,omitempty"`
	Error    int        `json:"error,omitempty"`
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
	if c == nil {
		return webrtc.RTPCodecCapability{}
	}
	return webrtc.RTPCodecCapability{MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, SDPFmtpLine: c.Fmtp}
}
