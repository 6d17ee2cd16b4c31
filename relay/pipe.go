package relay

// pipe: the one SRTP flow between this node and one peer node, its keys,
// its two goroutines (writer and caller) and its death.
//
// Death: PeerGone, Links.Close, nothing heard from the peer for
// silenceTimeout (both sides send a keepalive every keepalive), a control
// call the peer does not answer or answers 409, the peer's goodbye (an
// RTCP BYE), or a hello from the peer with another key (it restarted). Then kill: every remote destination
// through it ends with ErrServerConnectionLost, and the relay
// participants it fed here leave their rooms.

import (
	"context"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/relaysfu/relayd/sfu"
)

// profile is the pipes' SRTP protection profile: AES-GCM is the cheapest
// authenticated one on CPUs with AES instructions.
const profile = srtp.ProtectionProfileAeadAes128Gcm

// replayWindow is the SRTP replay window in packets, as browsers use: a
// retransmission within it is accepted once.
const replayWindow = 1024

// outQueueSize bounds what waits for a pipe's writer: a keyframe burst of
// every relayed track through the pipe (~50 packets each) fits.
const outQueueSize = 1024

// LinkUfrag names the pipes' conn on an ICE UDP mux, for a node whose
// pipes share the clients' UDP port (LinkConfig.Conn = mux.GetConn(
// LinkUfrag, addr)). The mux sends the pipes what comes from an address
// they have written to: each side writes to its peer at once (a
// keepalive) when the pipe comes up. (Through a NAT, where the peer is
// heard from another address than its hello's, a pipe needs a socket of
// its own.)
const LinkUfrag = "relaydlink"

// keepaliveSSRC is the SSRC of a pipe's keepalives (relayed tracks draw
// theirs at random, never 0 or 1).
const keepaliveSSRC = 1

// pipe is one node pair's flow.
//
// Locking: Links.mu guards url, remote, addr and up (the UDP reader reads
// recv only after finding the pipe up under it). mu guards the tables
// and closed. smu guards send (the writer's, and kill's goodbye); the
// outTracks' sequence state is the writer's, recv the UDP reader's.
type pipe struct {
	l     *Links
	peer  string
	log   *slog.Logger
	priv  *ecdh.PrivateKey
	local string     // our X25519 public key, hex: this pipe's identity on the wire
	dial  sync.Mutex // one hello at a time

	// guarded by Links.mu
	url    string // the peer's base URL, when we dialed it
	remote string // the peer's public key (hex), once known
	addr   netip.AddrPort
	up     bool
	upc    chan struct{} // closed when up is set

	ctx      context.Context // cancelled by kill: ends a call in flight
	cancel   context.CancelFunc
	dead     chan struct{}
	killOnce sync.Once
	heard    atomic.Int64 // unix nanos of the last packet from the peer

	smu  sync.Mutex    // the writer's, and kill's goodbye
	send *srtp.Context // guarded by smu
	recv *srtp.Context // the UDP reader's
	nack interceptor.Interceptor

	out   chan outItem // media and RTCP to send: the writer's queue
	calls callQueue

	mu        sync.Mutex
	closed    bool
	dests     map[string]*remoteDest  // sending side, by dest id
	outBySSRC map[uint32]*outTrack    // sending side
	in        map[string]*ingressDest // receiving side, by dest id
	inBySSRC  map[uint32]*ingress     // receiving side
	wg        sync.WaitGroup          // the ingress up tracks' readers
}

func newPipe(l *Links, peer string) *pipe {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand never fails (Go 1.24+)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &pipe{
		l: l, peer: peer, log: l.log.With("peer", peer), priv: priv, local: hex.EncodeToString(priv.PublicKey().Bytes()),
		ctx: ctx, cancel: cancel,
		dead:      make(chan struct{}),
		upc:       make(chan struct{}),
		out:       make(chan outItem, outQueueSize),
		calls:     callQueue{wake: make(chan struct{}, 1)},
		dests:     map[string]*remoteDest{},
		outBySSRC: map[uint32]*outTrack{},
		in:        map[string]*ingressDest{},
		inBySSRC:  map[uint32]*ingress{},
	}
}

func (p *pipe) isDead() bool {
	select {
	case <-p.dead:
		return true
	default:
		return false
	}
}

// keys derives the SRTP master key and salt of what from sends to to:
// HKDF-SHA256 of the pipe's X25519 shared secret and the cluster secret,
// salted with from's public key. The ephemeral exchange makes the keys
// new for every pipe (and a recording of a pipe useless to whoever learns
// the cluster secret later); the cluster secret makes them unknown to
// whoever altered a hello on the way without it.
func keys(secret, shared []byte, senderKey, from, to string) (key, salt []byte, err error) {
	kl, _ := profile.KeyLen()
	sl, _ := profile.SaltLen()
	pub, err := hex.DecodeString(senderKey)
	if err != nil || len(pub) != 32 {
		return nil, nil, errors.New("bad pipe key")
	}
	b, err := hkdf.Key(sha256.New, append(slices.Clip(shared), secret...), pub, "relayd pipe srtp "+from+">"+to, kl+sl)
	if err != nil {
		return nil, nil, err
	}
	return b[:kl], b[kl:], nil
}

// shared is the pipe's X25519 secret with the peer's public key (hex).
func (p *pipe) shared(remote string) ([]byte, error) {
	b, err := hex.DecodeString(remote)
	if err != nil {
		return nil, errors.New("bad pipe key")
	}
	pub, err := ecdh.X25519().NewPublicKey(b)
	if err != nil {
		return nil, errors.New("bad pipe key")
	}
	return p.priv.ECDH(pub)
}

// establish brings the pipe up with the peer's public key and UDP address
// (again with the same key: nothing to do).
func (p *pipe) establish(remote string, addr netip.AddrPort) error {
	l := p.l
	shared, err := p.shared(remote)
	if err != nil {
		return err
	}
	sk, ss, err := keys(l.cfg.Secret, shared, p.local, l.cfg.NodeID, p.peer)
	if err != nil {
		return err
	}
	rk, rs, err := keys(l.cfg.Secret, shared, remote, p.peer, l.cfg.NodeID)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed || p.isDead() || l.pipes[p.peer] != p:
		return errors.New("link closed")
	case p.up && p.remote == remote:
		return nil
	case p.up:
		return errors.New("the peer restarted")
	}
	if p.send, err = srtp.CreateContext(sk, ss, profile); err != nil {
		return err
	}
	if p.recv, err = srtp.CreateContext(rk, rs, profile, srtp.SRTPReplayProtection(replayWindow), srtp.SRTCPReplayProtection(replayWindow)); err != nil {
		return err
	}
	// At most 3 NACKs per lost packet, one every 100 ms (as for
	// publishers, sfu/api.go).
	f, err := nack.NewGeneratorInterceptor(nack.GeneratorMaxNacksPerPacket(3))
	if err != nil {
		return err
	}
	if p.nack, err = f.NewInterceptor(""); err != nil {
		return err
	}
	p.nack.BindRTCPWriter(interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		p.sendRTCP(pkts...)
		return 0, nil
	}))
	p.remote, p.addr, p.up = remote, addr, true
	close(p.upc)
	l.byAddr[addr] = p
	p.heard.Store(time.Now().UnixNano())
	l.wg.Add(2)
	go p.writer()
	go p.caller()
	p.log.Info("relay link up", "addr", addr)
	return nil
}

// kill ends the pipe (once): see the file comment. It returns when the
// relay participants it fed have left.
func (p *pipe) kill(why string) {
	p.killOnce.Do(func() {
		p.cancel()
		close(p.dead)
		p.goodbye()
		l := p.l
		l.mu.Lock()
		if l.pipes[p.peer] == p {
			delete(l.pipes, p.peer)
		}
		if l.byAddr[p.addr] == p {
			delete(l.byAddr, p.addr)
		}
		l.mu.Unlock()
		p.mu.Lock()
		p.closed = true
		dests, ins := p.dests, p.in
		p.dests, p.in, p.outBySSRC = map[string]*remoteDest{}, map[string]*ingressDest{}, map[uint32]*outTrack{}
		var lost []*remoteDest
		var ots []*outTrack
		for _, rd := range dests {
			if rd.live && rd.returned {
				lost = append(lost, rd)
			}
			rd.live = false
			ots = append(ots, rd.takeTracksLocked()...)
		}
		type fed struct {
			part *sfu.Participant
			srcs []*ingressSource
		}
		var feds []fed
		for _, d := range ins {
			part, srcs := d.detachLocked(p)
			feds = append(feds, fed{part, srcs})
		}
		p.mu.Unlock()
		level := slog.LevelWarn
		if why == "closing" {
			level = slog.LevelInfo
		}
		p.log.Log(context.Background(), level, "relay link closed", "why", why, "sending", len(dests), "receiving", len(ins))
		for _, ot := range ots {
			ot.dst.RemoveSink(ot)
		}
		for _, f := range feds {
			end(nil, f.srcs, false)
		}
		p.wg.Wait() // the readers have unpublished their tracks
		if p.nack != nil {
			_ = p.nack.Close()
		}
		for _, f := range feds {
			end(f.part, nil, true)
		}
		for _, rd := range lost {
			rd.ended(ErrServerConnectionLost)
		}
	})
}

// goodbye tells the peer at once that the pipe is dead (an RTCP BYE of
// the keepalive SSRC), rather than after its silenceTimeout. Best effort:
// one packet.
func (p *pipe) goodbye() {
	p.l.mu.Lock()
	up := p.up
	p.l.mu.Unlock()
	if !up {
		return
	}
	b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.Goodbye{Sources: []uint32{keepaliveSSRC}}})
	if err != nil {
		return
	}
	p.smu.Lock()
	defer p.smu.Unlock()
	p.write(p.send.EncryptRTCP(nil, b, nil))
}

// outItem is one thing for the writer to send: a relayed packet (by its
// extended sequence number in the source's cache), a retransmission (by
// the sequence number the peer NACKed), or RTCP.
type outItem struct {
	ot     *outTrack
	ext    uint64
	resync bool // the first packet after a pause: no gap on the wire
	nack   bool
	seq    uint16
	rtcp   []byte
}

// enqueue hands the writer an item; when its queue is full the item is
// dropped (a slow pipe never blocks the source's reader).
func (p *pipe) enqueue(it outItem) bool {
	select {
	case p.out <- it:
		return true
	default:
		return false
	}
}

// sendRTCP sends RTCP to the peer (a NACK, a PLI), through the writer.
func (p *pipe) sendRTCP(pkts ...rtcp.Packet) {
	b, err := rtcp.Marshal(pkts)
	if err == nil {
		p.enqueue(outItem{rtcp: b})
	}
}

// writer owns the sending SRTP context: it sends what is queued, and a
// keepalive every keepalive; it kills the pipe when the peer is silent.
// Owned by Links.wg; returns when the pipe dies.
func (p *pipe) writer() {
	defer p.l.wg.Done()
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	ka, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: keepaliveSSRC}})
	buf := make([]byte, sfu.MaxPacketSize)
	enc := make([]byte, 0, sfu.MaxPacketSize+64)
	p.smu.Lock()
	p.write(p.send.EncryptRTCP(enc[:0], ka, nil)) // at once: see LinkUfrag
	p.smu.Unlock()
	var hdr rtp.Header
	for {
		select {
		case <-p.dead:
			return
		case <-tick.C:
			if time.Since(time.Unix(0, p.heard.Load())) > silenceTimeout {
				p.kill("peer silent")
				return
			}
			p.smu.Lock()
			p.write(p.send.EncryptRTCP(enc[:0], ka, nil))
			p.smu.Unlock()
		case it := <-p.out:
			p.smu.Lock()
			switch {
			case it.rtcp != nil:
				p.write(p.send.EncryptRTCP(enc[:0], it.rtcp, nil))
			case it.nack:
				if b := it.ot.retransmit(it.seq, buf, &hdr); b != nil {
					p.write(p.send.EncryptRTP(enc[:0], b, &hdr))
				}
			default:
				if b := it.ot.next(it, buf, &hdr); b != nil {
					p.write(p.send.EncryptRTP(enc[:0], b, &hdr))
				}
			}
			p.smu.Unlock()
		}
	}
}

func (p *pipe) write(b []byte, err error) {
	if err != nil {
		p.log.Debug("link encrypt", "err", err)
		return
	}
	p.l.mu.Lock()
	addr := p.addr
	p.l.mu.Unlock()
	if _, err := p.l.conn.WriteTo(b, net.UDPAddrFromAddrPort(addr)); err != nil {
		p.log.Debug("link send", "err", err)
	}
}

// read is the UDP socket's one reader: it finds the pipe by the sender's
// address, decrypts, and hands RTP to its ingress, RTCP to its tracks.
// Owned by Links.wg; returns when the socket closes or Links closes.
func (l *Links) read() {
	defer l.wg.Done()
	buf := make([]byte, sfu.MaxPacketSize+64)
	dec := make([]byte, 0, sfu.MaxPacketSize+64)
	var hdr rtp.Header
	for {
		n, from, err := l.conn.ReadFrom(buf)
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			var ne net.Error
			if closed || !errors.As(err, &ne) || !ne.Timeout() {
				return
			}
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || n < 12 || buf[0]>>6 != 2 {
			continue // not RTP or RTCP
		}
		addr := ua.AddrPort()
		addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
		l.mu.Lock()
		p := l.byAddr[addr]
		var others []*pipe
		if p == nil {
			for _, x := range l.byAddr {
				others = append(others, x)
			}
		}
		l.mu.Unlock()
		b := buf[:n]
		var out []byte
		var ctrl bool
		if p == nil {
			// Not a peer's address: a peer's packets from another
			// address than its hello's (NAT, another interface) open
			// with its keys; it is then at this address.
			for _, x := range others {
				if out, ctrl, err = x.open(b, dec, &hdr); err == nil {
					p = x
					l.moved(p, addr)
					break
				}
			}
		} else {
			out, ctrl, err = p.open(b, dec, &hdr)
		}
		if p == nil || err != nil {
			continue // nobody's, or not authentic: dropped
		}
		p.heard.Store(time.Now().UnixNano())
		if ctrl {
			p.onRTCP(out)
		} else {
			p.onRTP(hdr.SSRC, out)
		}
	}
}

// open decrypts and authenticates a datagram of the peer's into dec
// (the UDP reader's).
func (p *pipe) open(b, dec []byte, hdr *rtp.Header) ([]byte, bool, error) {
	if isRTCP(b) {
		out, err := p.recv.DecryptRTCP(dec[:0], b, nil)
		return out, true, err
	}
	out, err := p.recv.DecryptRTP(dec[:0], b, hdr)
	return out, false, err
}

// moved records that p's peer now sends from addr, and is sent to there.
func (l *Links) moved(p *pipe, addr netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !p.up || l.pipes[p.peer] != p {
		return
	}
	if l.byAddr[p.addr] == p {
		delete(l.byAddr, p.addr)
	}
	p.log.Info("relay link peer moved", "from", p.addr, "to", addr)
	p.addr = addr
	l.byAddr[addr] = p
}

// isRTCP tells RTCP from RTP on one flow (RFC 5761: RTCP packet types
// 192-223 in the second byte).
func isRTCP(b []byte) bool { return len(b) > 1 && b[1] >= 192 && b[1] <= 223 }

// onRTCP handles the peer's feedback on our tracks: NACKs are answered
// from the source's cache, PLIs go to the source.
func (p *pipe) onRTCP(b []byte) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	for _, pkt := range pkts {
		switch x := pkt.(type) {
		case *rtcp.TransportLayerNack:
			if ot := p.outTrack(x.MediaSSRC); ot != nil {
				for _, pair := range x.Nacks {
					for _, seq := range pair.PacketList() {
						ot.nackIn.Inc()
						p.enqueue(outItem{ot: ot, nack: true, seq: seq})
					}
				}
			}
		case *rtcp.PictureLossIndication:
			if ot := p.outTrack(x.MediaSSRC); ot != nil {
				ot.pliIn.Inc()
				ot.dst.RequestLayerKeyframe(ot.layer)
			}
		case *rtcp.Goodbye:
			if slices.Contains(x.Sources, keepaliveSSRC) {
				p.l.wg.Add(1) // not in the reader: kill waits for the pipe's readers
				go func() {
					defer p.l.wg.Done()
					p.kill("the peer closed the link")
				}()
				return
			}
		}
	}
}

func (p *pipe) outTrack(ssrc uint32) *outTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.outBySSRC[ssrc]
}

// call is one control message for the peer; reply is nil for the ones
// nobody waits for.
type call struct {
	m     wire
	url   string // "": the pipe's
	reply chan callResult
}

type callResult struct {
	w   wire
	err error
}

// callQueue is the pipe's control messages, in order: unbounded, so that
// a leave or an ended is never dropped.
type callQueue struct {
	mu   sync.Mutex
	q    []call
	wake chan struct{}
}

func (p *pipe) enqueueCall(c call) {
	p.calls.mu.Lock()
	p.calls.q = append(p.calls.q, c)
	p.calls.mu.Unlock()
	select {
	case p.calls.wake <- struct{}{}:
	default:
	}
}

// call sends m and waits for the answer (or the pipe's death).
func (p *pipe) call(m wire) (wire, error) {
	m.Node, m.Pipe = p.l.cfg.NodeID, p.local
	c := call{m: m, reply: make(chan callResult, 1)}
	p.enqueueCall(c)
	select {
	case r := <-c.reply:
		return r.w, r.err
	case <-p.dead:
		return wire{}, errors.New("link died")
	}
}

// tell sends m without waiting; url "" is the pipe's own.
func (p *pipe) tell(m wire, url string) {
	m.Node, m.Pipe = p.l.cfg.NodeID, p.local
	p.enqueueCall(call{m: m, url: url})
}

// caller sends the control messages one at a time, in order. A message
// the peer does not take (no answer, or 409) kills the pipe. Owned by
// Links.wg; returns when the pipe dies.
func (p *pipe) caller() {
	defer p.l.wg.Done()
	for {
		select {
		case <-p.dead:
			return
		case <-p.calls.wake:
		}
		p.calls.mu.Lock()
		q := p.calls.q
		p.calls.q = nil
		p.calls.mu.Unlock()
		for _, c := range q {
			url := c.url
			if url == "" {
				p.l.mu.Lock()
				url = p.url
				p.l.mu.Unlock()
			}
			var r callResult
			if url == "" {
				r.err = fmt.Errorf("%s: the peer's address is unknown", c.m.T)
			} else {
				r.err = p.l.post(p.ctx, url, c.m, &r.w)
			}
			if c.reply != nil {
				c.reply <- r
			}
			if r.err != nil && !p.isDead() {
				p.log.Warn("link call failed", "t", c.m.T, "err", r.err)
				p.kill("call failed")
				return
			}
		}
	}
}
