package client

// Simulcast publishing (protocol 1.1, §8.10): one video track sent as up to
// three encodings ("layers"), each its own RTP stream with its own SSRC,
// told apart by its rid (RFC 8851), lowest quality first, as LiveKit's
// q, h, f.
//
// pion sends a simulcast track as one RTPSender with several encodings: the
// first layer is added with AddTransceiverFromTrack and the others with
// RTPSender.AddEncoding, before the first offer. Its offer then carries
// a=rid:<rid> send per layer and a=simulcast:send q;h;f. pion does not put
// the mid and rid header extensions on the packets itself, and a receiver
// (pion's included) needs them to match a stream whose SSRC the SDP does
// not give: LayerTrack writes them on every packet. A layer's RTCP comes on
// its own stream (RTPSender.ReadSimulcast): one goroutine per layer reads
// it, so that the NACK responder runs and PLIs reach the layer.
//
// The server tells the publisher which layers some viewer needs with
// publisher.layers (dynacast); a LayerTrack whose rid is not in the last
// list drops what is written to it (Active is false), and a producer that
// checks Active can stop encoding it. The notification names the track by
// the server's id, which a 1.1 publisher learns from its own
// track.published (a relayd extension, §6.4): the Client matches those to
// its local video tracks by order of publication.

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Notifications of simulcast and adaptation (1.1 sessions, §8.10).
const (
	NotifyTrackLayer      = "track.layer"      // TrackLayerEvent
	NotifyTrackUpdated    = "track.updated"    // TrackUpdatedEvent
	NotifyPublisherLayers = "publisher.layers" // PublisherLayersEvent, to the publisher
)

// Layer qualities (Layer.Quality, TrackLayerEvent.Quality) and the
// "auto" of TrackSettingsParams.Quality.
const (
	QualityLow    = "low"
	QualityMedium = "medium"
	QualityHigh   = "high"
	QualityAuto   = "auto"
)

// Layer is one simulcast layer of a video track (Track.Layers), lowest
// first: its size from its last keyframe (0 while unknown) and its maximum
// bit rate from the publisher's a=rid max-br (0 when not given).
type Layer struct {
	RID        string `json:"rid"`
	Quality    string `json:"quality"` // low, medium, high
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	MaxBitrate int    `json:"maxBitrate,omitempty"` // bit/s
}

// TrackLayerEvent is the params of track.layer: the layer this session now
// receives of a video track. It comes with the track's first forwarded
// packet and at each switch. A track sent without simulcast is "high"
// with no RID.
type TrackLayerEvent struct {
	TrackID string `json:"trackId"`
	Quality string `json:"quality"`
	RID     string `json:"rid,omitempty"`
	// Reason: "requested" (the layer the settings ask for), "bandwidth"
	// (the downlink estimate is too low for it) or "publisher" (that layer
	// is not arriving).
	Reason string `json:"reason"`
}

// TrackUpdatedEvent is the params of track.updated: a track's object
// changed (its layers), at most every 2 s per track.
type TrackUpdatedEvent struct {
	Track Track `json:"track"`
}

// PublisherLayersEvent is the params of publisher.layers, sent to a
// simulcast track's publisher: the rids some subscriber, relay or recording
// needs now (dynacast). The others may stop; an empty list: none is needed.
type PublisherLayersEvent struct {
	TrackID string   `json:"trackId"`
	Active  []string `json:"active"`
}

// SimulcastLayer describes one layer for NewSimulcastTrack.
type SimulcastLayer struct {
	RID string // 1-16 of A-Z, a-z, 0-9, '-', '_' (q, h, f by convention)
	// MaxBitrate, when set, is announced as a=rid:<rid> send max-br=<bit/s>
	// (RFC 8851), which the server shows as Layer.MaxBitrate.
	MaxBitrate int
}

// DefaultSimulcastLayers are LiveKit's and relayd's three layers, lowest
// first, without bit rates.
func DefaultSimulcastLayers() []SimulcastLayer {
	return []SimulcastLayer{{RID: "q"}, {RID: "h"}, {RID: "f"}}
}

// maxSimulcastLayers is the contract's limit (§8.10).
const maxSimulcastLayers = 3

var ridPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,16}$`)

// SimulcastTrack is one video track sent as 1-3 layers. Publish it with
// Client.Publish(ctx, st.Tracks()...) (other tracks may come along), then
// write each layer's own encoded stream to its LayerTrack.
type SimulcastTrack struct {
	layers []*LayerTrack // lowest first

	mu       sync.Mutex
	serverID string   // the server's id (a 1.1 session's own track.published)
	active   []string // the last publisher.layers (nil: none came, all are active)
}

// LayerTrack is one layer of a SimulcastTrack: a TrackLocalStaticRTP with
// its rid, which also puts the mid and rid header extensions on every
// packet and drops what is written while the server says the layer is not
// needed (Active). It takes its own RTCP (RTCPHandler): a PLI or FIR sets
// KeyframeWanted.
type LayerTrack struct {
	*webrtc.TrackLocalStaticRTP
	parent     *SimulcastTrack
	maxBitrate int

	midExt, ridExt atomic.Uint32 // negotiated header extension ids, 0 before Bind
	tr             atomic.Pointer[webrtc.RTPTransceiver]
	inactive       atomic.Bool // not in the last publisher.layers
	keyframeWanted atomic.Bool
	handler        atomic.Pointer[rtcpHandlerBox]
	dropped        atomic.Int64
}

type rtcpHandlerBox struct{ h RTCPHandler }

// NewSimulcastTrack makes a simulcast track of codec (a video codec the
// server accepts: VP8 or H.264 for simulcast) with track id id and msid
// stream id streamID. layers are lowest quality first, 1 to 3 of them with
// distinct rids; none: DefaultSimulcastLayers.
func NewSimulcastTrack(codec webrtc.RTPCodecCapability, id, streamID string, layers ...SimulcastLayer) (*SimulcastTrack, error) {
	if len(layers) == 0 {
		layers = DefaultSimulcastLayers()
	}
	if len(layers) > maxSimulcastLayers {
		return nil, fmt.Errorf("client: simulcast: %d layers, at most %d", len(layers), maxSimulcastLayers)
	}
	if !strings.HasPrefix(strings.ToLower(codec.MimeType), "video/") {
		return nil, fmt.Errorf("client: simulcast: %q is not a video codec", codec.MimeType)
	}
	st := &SimulcastTrack{}
	seen := map[string]bool{}
	for _, l := range layers {
		switch {
		case !ridPattern.MatchString(l.RID):
			return nil, fmt.Errorf("client: simulcast: rid %q: want 1-16 of A-Z a-z 0-9 - _", l.RID)
		case seen[l.RID]:
			return nil, fmt.Errorf("client: simulcast: rid %q given twice", l.RID)
		case l.MaxBitrate < 0:
			return nil, fmt.Errorf("client: simulcast: rid %q: negative max bit rate", l.RID)
		}
		seen[l.RID] = true
		t, err := webrtc.NewTrackLocalStaticRTP(codec, id, streamID, webrtc.WithRTPStreamID(l.RID))
		if err != nil {
			return nil, err
		}
		st.layers = append(st.layers, &LayerTrack{TrackLocalStaticRTP: t, parent: st, maxBitrate: l.MaxBitrate})
	}
	return st, nil
}

// Tracks returns the layers as TrackLocals, lowest first, for Publish.
func (s *SimulcastTrack) Tracks() []webrtc.TrackLocal {
	out := make([]webrtc.TrackLocal, len(s.layers))
	for i, l := range s.layers {
		out[i] = l
	}
	return out
}

// Layers returns the layers, lowest first.
func (s *SimulcastTrack) Layers() []*LayerTrack { return slices.Clone(s.layers) }

// Layer returns the layer of that rid, or nil.
func (s *SimulcastTrack) Layer(rid string) *LayerTrack {
	for _, l := range s.layers {
		if l.RID() == rid {
			return l
		}
	}
	return nil
}

// ID is the local track id (the msid's second part).
func (s *SimulcastTrack) ID() string { return s.layers[0].ID() }

// StreamID is the msid stream id.
func (s *SimulcastTrack) StreamID() string { return s.layers[0].StreamID() }

// ServerID is the id the server gave the track (TR_…), known once a 1.1
// session got its own track.published for it; "" before.
func (s *SimulcastTrack) ServerID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serverID
}

// Active returns the rids the server last said are needed
// (publisher.layers); every rid before it said anything.
func (s *SimulcastTrack) Active() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		var all []string
		for _, l := range s.layers {
			all = append(all, l.RID())
		}
		return all
	}
	return slices.Clone(s.active)
}

// setActive applies a publisher.layers list.
func (s *SimulcastTrack) setActive(active []string) {
	s.mu.Lock()
	s.active = append([]string{}, active...)
	s.mu.Unlock()
	for _, l := range s.layers {
		l.inactive.Store(!slices.Contains(active, l.RID()))
	}
}

// Active reports whether the server needs this layer (publisher.layers);
// true until it said otherwise. While false, WriteRTP drops the packets: a
// producer should stop encoding the layer, and start again with a keyframe.
func (l *LayerTrack) Active() bool { return !l.inactive.Load() }

// KeyframeWanted reports whether a PLI or FIR came for this layer since the
// last call, and clears it.
func (l *LayerTrack) KeyframeWanted() bool { return l.keyframeWanted.Swap(false) }

// Dropped counts the packets dropped while the layer was inactive or not
// yet negotiated.
func (l *LayerTrack) Dropped() int64 { return l.dropped.Load() }

// Parent is the SimulcastTrack the layer belongs to.
func (l *LayerTrack) Parent() *SimulcastTrack { return l.parent }

// SetRTCPHandler passes the layer's RTCP on to h too (nil: no one).
func (l *LayerTrack) SetRTCPHandler(h RTCPHandler) {
	if h == nil {
		l.handler.Store(nil)
		return
	}
	l.handler.Store(&rtcpHandlerBox{h})
}

// HandleRTCP takes the layer's RTCP: a PLI or FIR sets KeyframeWanted.
func (l *LayerTrack) HandleRTCP(pkts []rtcp.Packet) {
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			l.keyframeWanted.Store(true)
		}
	}
	if b := l.handler.Load(); b != nil {
		b.h.HandleRTCP(pkts)
	}
}

// Bind records the negotiated ids of the mid and rid header extensions.
func (l *LayerTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, e := range ctx.HeaderExtensions() {
		switch e.URI {
		case sdp.SDESMidURI:
			l.midExt.Store(uint32(e.ID))
		case sdp.SDESRTPStreamIDURI:
			l.ridExt.Store(uint32(e.ID))
		}
	}
	return l.TrackLocalStaticRTP.Bind(ctx)
}

// WriteRTP sends p on this layer with the mid and rid header extensions
// (p's header is changed). While the layer is inactive, or before it is
// negotiated (no mid, no extension ids), p is dropped and nil returned.
func (l *LayerTrack) WriteRTP(p *rtp.Packet) error {
	tr := l.tr.Load()
	midExt, ridExt := uint8(l.midExt.Load()), uint8(l.ridExt.Load())
	if l.inactive.Load() || tr == nil || midExt == 0 || ridExt == 0 {
		l.dropped.Add(1)
		return nil
	}
	mid := tr.Mid()
	if mid == "" {
		l.dropped.Add(1)
		return nil
	}
	if err := p.Header.SetExtension(midExt, []byte(mid)); err != nil {
		return err
	}
	if err := p.Header.SetExtension(ridExt, []byte(l.RID())); err != nil {
		return err
	}
	return l.TrackLocalStaticRTP.WriteRTP(p)
}

// Write sends a marshaled RTP packet as WriteRTP does.
func (l *LayerTrack) Write(b []byte) (int, error) {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		return 0, err
	}
	return len(b), l.WriteRTP(&p)
}

// baseTrack is the track a sender is known by: a layer's first layer.
func baseTrack(t webrtc.TrackLocal) webrtc.TrackLocal {
	if l, ok := t.(*LayerTrack); ok {
		return l.parent.layers[0]
	}
	return t
}

// addLocalTrack adds t to the publisher PC (sendonly) unless it is there:
// a LayerTrack brings its SimulcastTrack's every layer, as encodings of one
// sender, whose RTCP is read per layer.
func (c *Client) addLocalTrack(p *peer, t webrtc.TrackLocal) error {
	base := baseTrack(t)
	if senderOf(p.pc, base) != nil {
		return nil
	}
	tr, err := p.pc.AddTransceiverFromTrack(base, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fmt.Errorf("client: adding track %s: %w", t.ID(), err)
	}
	lt, simulcast := base.(*LayerTrack)
	if !simulcast {
		h, _ := t.(RTCPHandler)
		c.readSenderRTCP(tr.Sender(), h)
		c.sim.published(t.Kind(), nil)
		return nil
	}
	st := lt.parent
	for _, l := range st.layers[1:] {
		if err := tr.Sender().AddEncoding(l); err != nil {
			_ = p.pc.RemoveTrack(tr.Sender())
			return fmt.Errorf("client: adding layer %s of track %s: %w", l.RID(), t.ID(), err)
		}
	}
	for _, l := range st.layers {
		l.tr.Store(tr)
	}
	c.readLayerRTCP(tr.Sender(), st)
	c.sim.published(webrtc.RTPCodecTypeVideo, st)
	return nil
}

// readLayerRTCP drains each layer's RTCP (RTPSender.ReadSimulcast) and
// hands it to the layer, until the sender stops.
func (c *Client) readLayerRTCP(s *webrtc.RTPSender, st *SimulcastTrack) {
	for _, l := range st.layers {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return
		}
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			buf := make([]byte, 1500)
			for {
				n, _, err := s.ReadSimulcast(buf, l.RID())
				if err != nil {
					return // the sender stopped
				}
				if pkts, err := rtcp.Unmarshal(buf[:n]); err == nil {
					l.HandleRTCP(pkts)
				}
			}
		}()
	}
}

// withRIDRestrictions adds max-br=<bit/s> (RFC 8851) to the a=rid lines of
// the publisher's simulcast layers that have a MaxBitrate, in the offer as
// sent (the local description keeps pion's).
func (c *Client) withRIDRestrictions(offer string) string {
	rates := c.sim.maxBitrates()
	if len(rates) == 0 {
		return offer
	}
	lines := strings.SplitAfter(offer, "\n")
	for i, line := range lines {
		rest, ok := strings.CutPrefix(line, "a=rid:")
		if !ok {
			continue
		}
		body := strings.TrimRight(rest, "\r\n")
		f := strings.Fields(body)
		if len(f) != 2 || f[1] != "send" {
			continue // already has restrictions, or not ours
		}
		if br := rates[f[0]]; br > 0 {
			lines[i] = "a=rid:" + f[0] + " send max-br=" + strconv.Itoa(br) + line[len("a=rid:")+len(body):]
		}
	}
	return strings.Join(lines, "")
}

// simulcastState maps the server's ids of the client's own video tracks to
// its local SimulcastTracks, to apply publisher.layers.
type simulcastState struct {
	identity atomic.Pointer[string] // from the join result

	mu       sync.Mutex
	local    []*SimulcastTrack   // every local video track in publication order; nil: not simulcast
	serverID []string            // own video track.published ids, in arrival order
	pending  map[string][]string // publisher.layers for ids not matched yet
	tracks   []*SimulcastTrack   // the simulcast ones (for max-br)
}

// published records a local track added to the publisher PC.
func (s *simulcastState) published(kind webrtc.RTPCodecType, st *SimulcastTrack) {
	if kind != webrtc.RTPCodecTypeVideo {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.local = append(s.local, st)
	if st != nil {
		s.tracks = append(s.tracks, st)
	}
	s.matchLocked()
}

func (s *simulcastState) maxBitrates() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, st := range s.tracks {
		for _, l := range st.layers {
			if l.maxBitrate > 0 {
				out[l.RID()] = l.maxBitrate
			}
		}
	}
	return out
}

// matchLocked gives each own video track id its local track, in order,
// and applies publisher.layers that came before the match.
func (s *simulcastState) matchLocked() {
	for i, id := range s.serverID {
		if i >= len(s.local) || s.local[i] == nil {
			continue
		}
		st := s.local[i]
		st.mu.Lock()
		fresh := st.serverID == ""
		st.serverID = id
		st.mu.Unlock()
		if a, ok := s.pending[id]; ok && fresh {
			delete(s.pending, id)
			st.setActive(a)
		}
	}
}

// byServerID is the local simulcast track of a server id, or nil.
func (s *simulcastState) byServerIDLocked(id string) *SimulcastTrack {
	for i, sid := range s.serverID {
		if sid == id && i < len(s.local) {
			return s.local[i]
		}
	}
	return nil
}

// observe follows the notifications simulcast needs: the session's own
// video track.published, and publisher.layers. It runs on the read loop
// and never blocks.
func (s *simulcastState) observe(n Notification) {
	switch n.Method {
	case NotifyTrackPublished:
		me := s.identity.Load()
		var ev TrackEvent
		if me == nil || n.Decode(&ev) != nil || ev.Track.Participant != *me || ev.Track.Kind != "video" {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !slices.Contains(s.serverID, ev.Track.ID) {
			s.serverID = append(s.serverID, ev.Track.ID)
			s.matchLocked()
		}
	case NotifyPublisherLayers:
		var ev PublisherLayersEvent
		if n.Decode(&ev) != nil || ev.TrackID == "" {
			return
		}
		s.mu.Lock()
		st := s.byServerIDLocked(ev.TrackID)
		if st == nil {
			if s.pending == nil {
				s.pending = map[string][]string{}
			}
			s.pending[ev.TrackID] = ev.Active
		}
		s.mu.Unlock()
		if st != nil {
			st.setActive(ev.Active)
		}
	}
}

// errNotSimulcast is returned for a track id that names no simulcast track
// of this client.
var errNotSimulcast = errors.New("client: not a simulcast track of this client")

// SimulcastTrackByID returns the client's published SimulcastTrack the
// server knows by id (TR_…), once its own track.published came (1.1).
func (c *Client) SimulcastTrackByID(id string) (*SimulcastTrack, error) {
	c.sim.mu.Lock()
	defer c.sim.mu.Unlock()
	if st := c.sim.byServerIDLocked(id); st != nil {
		return st, nil
	}
	return nil, errNotSimulcast
}
