package client

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// miniSFU is a one-participant fake server that speaks the contract with
// real pion PeerConnections: what the client publishes comes back to it on
// its subscriber PC (loopback through the "server").
type miniSFU struct {
	t         *testing.T
	denyFirst atomic.Bool // answer the first "offer" with 4003
	cands     sync.Map    // target -> *atomic.Int32: trickled candidates received
}

func (m *miniSFU) candidates(target string) int {
	v, _ := m.cands.LoadOrStore(target, new(atomic.Int32))
	return int(v.(*atomic.Int32).Load())
}

// sfuSession is the server side of one connection.
type sfuSession struct {
	m   *miniSFU
	fc  *fakeConn
	api *webrtc.API
	wg  sync.WaitGroup

	mu      sync.Mutex
	done    chan struct{}
	pub     *sfuPeer
	sub     *sfuPeer
	pending map[string]chan inMsg
	nextID  int
	negMu   sync.Mutex // serializes subscriber negotiations
}

type sfuPeer struct {
	pc          *webrtc.PeerConnection
	mu          sync.Mutex
	remoteSet   bool
	remoteQueue []webrtc.ICECandidateInit
	canTrickle  bool
	localQueue  []*webrtc.ICECandidateInit
}

func (s *sfuSession) newPeer(target string) *sfuPeer {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		s.m.t.Error(err)
		return nil
	}
	p := &sfuPeer{pc: pc}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		var init *webrtc.ICECandidateInit
		if c != nil {
			v := c.ToJSON()
			init = &v
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.canTrickle {
			p.localQueue = append(p.localQueue, init)
			return
		}
		s.fc.notify(s.m.t, "trickle", TrickleParams{Target: target, Candidate: init})
	})
	return p
}

func (s *sfuSession) startTrickle(p *sfuPeer, target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.canTrickle = true
	for _, c := range p.localQueue {
		s.fc.notify(s.m.t, "trickle", TrickleParams{Target: target, Candidate: c})
	}
	p.localQueue = nil
}

func (p *sfuPeer) setRemote(desc webrtc.SessionDescription) error {
	if err := p.pc.SetRemoteDescription(desc); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.remoteSet = true
	for _, c := range p.remoteQueue {
		_ = p.pc.AddICECandidate(c)
	}
	p.remoteQueue = nil
	return nil
}

func (p *sfuPeer) addCandidate(c webrtc.ICECandidateInit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.remoteSet {
		p.remoteQueue = append(p.remoteQueue, c)
		return
	}
	_ = p.pc.AddICECandidate(c)
}

func (m *miniSFU) serve(fc *fakeConn) {
	api, err := NewAPI()
	if err != nil {
		m.t.Error(err)
		return
	}
	s := &sfuSession{m: m, fc: fc, api: api, done: make(chan struct{}), pending: map[string]chan inMsg{}}
	defer func() {
		s.mu.Lock()
		close(s.done)
		pub, sub := s.pub, s.sub
		s.mu.Unlock()
		for _, p := range []*sfuPeer{pub, sub} {
			if p != nil {
				_ = p.pc.GracefulClose()
			}
		}
		s.wg.Wait()
	}()
	for {
		msg, err := fc.read()
		if err != nil {
			return
		}
		if msg.Method == "" { // a response to one of our requests
			s.mu.Lock()
			ch := s.pending[string(msg.ID)]
			delete(s.pending, string(msg.ID))
			s.mu.Unlock()
			if ch != nil {
				ch <- msg
			}
			continue
		}
		switch msg.Method {
		case "join":
			fc.result(m.t, msg.ID, map[string]any{
				"participant":  map[string]any{"identity": "alice", "name": "Alice", "role": "host", "tracks": []any{}},
				"room":         map[string]any{"name": "r1", "host": "alice", "status": "idle", "createdAt": "2024-05-01T10:00:00Z"},
				"participants": []any{},
				"tracks":       []any{},
			})
		case "offer":
			s.publisherOffer(msg)
		case "trickle":
			var tp TrickleParams
			if json.Unmarshal(msg.Params, &tp) != nil {
				continue
			}
			v, _ := m.cands.LoadOrStore(tp.Target, new(atomic.Int32))
			v.(*atomic.Int32).Add(1)
			if tp.Candidate == nil {
				continue
			}
			if !strings.Contains(tp.Candidate.Candidate, " 127.0.0.1 ") {
				m.t.Errorf("non-loopback candidate trickled: %s", tp.Candidate.Candidate)
			}
			s.mu.Lock()
			p := s.pub
			if tp.Target == TargetSubscriber {
				p = s.sub
			}
			s.mu.Unlock()
			if p != nil {
				p.addCandidate(*tp.Candidate)
			}
		case "leave":
			fc.result(m.t, msg.ID, map[string]any{})
			fc.closeWith(1000)
		}
	}
}

func (s *sfuSession) publisherOffer(msg inMsg) {
	if s.m.denyFirst.CompareAndSwap(true, false) {
		s.fc.fail(s.m.t, msg.ID, CodeForbidden, "may not publish")
		return
	}
	var offer SDPParams
	_ = json.Unmarshal(msg.Params, &offer)
	s.mu.Lock()
	if s.pub == nil {
		s.pub = s.newPeer(TargetPublisher)
		s.pub.pc.OnTrack(s.forward)
	}
	p := s.pub
	s.mu.Unlock()
	if err := p.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer.SDP}); err != nil {
		s.fc.fail(s.m.t, msg.ID, CodeInvalidParams, err.Error())
		return
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(answer)
	}
	if err != nil {
		s.fc.fail(s.m.t, msg.ID, CodeInternalError, err.Error())
		return
	}
	s.fc.result(s.m.t, msg.ID, SDPParams{SDP: answer.SDP})
	s.startTrickle(p, TargetPublisher)
}

// forward sends a published track back to the client's subscriber PC.
func (s *sfuSession) forward(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, remote.ID(), remote.StreamID())
	if err != nil {
		s.m.t.Error(err)
		return
	}
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return
	default:
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	s.fc.notify(s.m.t, NotifyTrackPublished, TrackEvent{Track: Track{
		ID: remote.ID(), Participant: "alice", Kind: remote.Kind().String(), Codec: remote.Codec().MimeType}})
	sender := s.negotiateSubscriber(func(pc *webrtc.PeerConnection) (*webrtc.RTPSender, error) { return pc.AddTrack(local) })
	if sender == nil {
		return
	}
	s.mu.Lock()
	pubPC := s.pub.pc
	s.mu.Unlock()
	// Subscriber RTCP: forward PLIs to the publisher; ask for a keyframe now.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					_ = pubPC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}})
				}
			}
		}
	}()
	// Like a real SFU: a keyframe for the new subscriber once it can receive.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.mu.Lock()
		subPC := s.sub.pc
		s.mu.Unlock()
		for subPC.ConnectionState() != webrtc.PeerConnectionStateConnected {
			select {
			case <-s.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		_ = pubPC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}})
	}()

	buf := make([]byte, 1600)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			break
		}
		_, _ = local.Write(buf[:n])
	}
	// Unpublished: take it off the subscriber PC.
	s.fc.notify(s.m.t, NotifyTrackUnpublished, TrackEvent{Track: Track{ID: remote.ID(), Participant: "alice"}})
	s.negotiateSubscriber(func(pc *webrtc.PeerConnection) (*webrtc.RTPSender, error) { return sender, pc.RemoveTrack(sender) })
}

// negotiateSubscriber changes the subscriber PC with change and sends the
// client an "offer" request, applying its answer.
func (s *sfuSession) negotiateSubscriber(change func(*webrtc.PeerConnection) (*webrtc.RTPSender, error)) *webrtc.RTPSender {
	s.negMu.Lock()
	defer s.negMu.Unlock()
	s.mu.Lock()
	if s.sub == nil {
		s.sub = s.newPeer(TargetSubscriber)
	}
	p := s.sub
	s.nextID++
	id := fmt.Sprintf(`"srv-%d"`, s.nextID)
	ch := make(chan inMsg, 1)
	s.pending[id] = ch
	s.mu.Unlock()

	sender, err := change(p.pc)
	if err != nil {
		return nil
	}
	offer, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		return nil
	}
	s.fc.send(s.m.t, map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(id), "method": "offer", "params": SDPParams{SDP: offer.SDP}})
	s.startTrickle(p, TargetSubscriber)
	select {
	case resp := <-ch:
		var answer SDPParams
		if resp.Error != nil || json.Unmarshal(resp.Result, &answer) != nil {
			s.failf(p, "subscriber answer: %s", resp.raw)
			return nil
		}
		if err := p.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.SDP}); err != nil {
			s.failf(p, "applying client answer: %v", err)
			return nil
		}
	case <-s.done:
		return nil
	case <-time.After(5 * time.Second):
		s.failf(p, "client did not answer the subscriber offer")
		return nil
	}
	return sender
}

// failf reports a failure unless the session is over or ending (the
// client closed its PeerConnections: the test may be over too).
func (s *sfuSession) failf(p *sfuPeer, format string, args ...any) {
	if p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
		return
	}
	select {
	case <-s.done:
	default:
		s.m.t.Errorf(format, args...)
	}
}

func startMiniSFU(t *testing.T) (*miniSFU, *fakeServer) {
	m := &miniSFU{t: t}
	return m, newFakeServer(t, m.serve)
}
