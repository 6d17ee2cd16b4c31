package bench

// A viewer: one client session that joins a room and receives everything in
// it, accounted for by recv.go. It records the three moments of a join: the
// WebSocket open, the join answered, the first complete video frame.

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
)

type viewer struct {
	id     string
	room   *room
	stable bool // joined before a window; counted in its loss figures
	step   int  // ramp step it joined in (0 without --ramp)
	win    *window
	mode   rxMode // set before join
	// v11: join as a 1.1 session and record the layers it is told of
	// (layers.go); set before join
	v11     bool
	quality string         // with v11: ask for at most this layer (track.settings)
	layers  *layerRecorder // set by join with v11
	// dial, when set, opens the WebSocket (the lab binds it to the
	// viewer's own link)
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ice, set before join, holds the ICE servers and policy of a viewer
	// forced onto TURN (labtransport.go); zero: host candidates only
	ice client.Options
	// light, set before join (--light): the viewer counts RTP headers
	// instead of reading tracks (lightviewer.go); nil: a full viewer
	light *lightCounter

	c           *client.Client
	dialStart   time.Time
	connected   time.Time     // WebSocket open
	joined      time.Time     // join answered
	firstPacket atomic.Int64  // UnixNano of the first RTP packet of any track
	firstFrame  atomic.Int64  // UnixNano of the first complete video frame
	frame       chan struct{} // closed at the first complete video frame
	left        atomic.Bool   // closed by the bench (churn, teardown)

	mu     sync.Mutex
	tracks []*trackStats
}

func newViewer(id string, r *room, stable bool, w *window) *viewer {
	return &viewer{id: id, room: r, stable: stable, win: w, frame: make(chan struct{})}
}

// join dials, joins and returns; media arrives afterwards.
func (v *viewer) join(ctx context.Context, base string, api *webrtc.API, tok string) error {
	v.dialStart = time.Now()
	c, err := client.Dial(ctx, base, tok, client.Options{
		API: api, TrackReader: v.readTrack, NetDialContext: v.dial,
		ICEServers: v.ice.ICEServers, ICETransportPolicy: v.ice.ICETransportPolicy,
	})
	if err != nil {
		return err
	}
	v.connected = time.Now()
	v.mu.Lock()
	v.c = c
	v.mu.Unlock()
	if v.light != nil {
		v.light.start(c.SubscriberPC)
	}
	res, err := v.joinVersion(ctx, c, v.v11)
	if err != nil {
		return err
	}
	v.joined = time.Now()
	if v.v11 {
		r := newLayerRecorder(res.Tracks)
		r.start(c)
		v.mu.Lock()
		v.layers = r
		v.mu.Unlock()
		if err := v.askQuality(ctx, c, res.Tracks); err != nil {
			return err
		}
	}
	return nil
}

// readTrack is the client's TrackReader: it runs on the track's goroutine.
func (v *viewer) readTrack(rt *client.RemoteTrack) {
	t := &trackStats{viewer: v, streamID: rt.StreamID, video: rt.Kind == "video", mode: v.mode}
	if t.video && v.mode.frames {
		t.ft = newFrameTracker()
		t.sendPLI = rt.SendPLI
	}
	v.mu.Lock()
	v.tracks = append(v.tracks, t)
	v.mu.Unlock()
	t.read(rt.Remote(), v.win)
}

// frameArrived is called by a track reader at its first complete frame.
func (v *viewer) frameArrived(now int64) {
	if v.firstFrame.CompareAndSwap(0, now) {
		close(v.frame)
	}
}

// waitFrame waits for the first complete video frame.
func (v *viewer) waitFrame(ctx context.Context) bool {
	select {
	case <-v.frame:
		return true
	case <-ctx.Done():
		return false
	}
}

// joinToFrame is the time from opening the socket to the first complete
// video frame (0, false before it).
func (v *viewer) joinToFrame() (time.Duration, bool) {
	f := v.firstFrame.Load()
	if f == 0 || v.dialStart.IsZero() {
		return 0, false
	}
	return time.Unix(0, f).Sub(v.dialStart), true
}

// joinToPacket is the time from opening the socket to the first RTP packet
// of any track.
func (v *viewer) joinToPacket() (time.Duration, bool) {
	f := v.firstPacket.Load()
	if f == 0 || v.dialStart.IsZero() {
		return 0, false
	}
	return time.Unix(0, f).Sub(v.dialStart), true
}

// trackList returns a snapshot of the received tracks.
func (v *viewer) trackList() []*trackStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]*trackStats(nil), v.tracks...)
}

// client returns the session (nil before the socket opened).
func (v *viewer) client() *client.Client {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.c
}

// close leaves (closing the socket and PeerConnections). Idempotent.
func (v *viewer) close() {
	if v.left.Swap(true) {
		return
	}
	if c := v.client(); c != nil {
		_ = c.Close()
	}
	if v.light != nil {
		v.light.close()
	}
	v.mu.Lock()
	r := v.layers
	v.mu.Unlock()
	if r != nil {
		r.stop()
	}
}

// drainTrack is the TrackReader of publishers (which also receive the
// room's other publishers): read and discard.
func drainTrack(rt *client.RemoteTrack) {
	buf := make([]byte, 1600)
	for {
		if _, _, err := rt.Remote().Read(buf); err != nil {
			return
		}
	}
}
