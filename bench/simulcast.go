package bench

// --simulcast: the lab's publisher sends its video as three simulcast
// layers (rids q, h, f; protocol 1.1 §8.10), each its own VP8 stream made
// as the single-stream clip publisher makes its one (clip.go): a real
// encoded frame of a clip of the layer's own size, padded to the layer's
// bit rate. The sizes are those a camera publishing 540p sends (the JS
// client simulcasts from 540p up): 320x180, 640x360, 960x540, so the
// server, which orders layers by keyframe size, and a viewer, which reads
// the size in the keyframes it gets, see three distinct layers. The layers
// honour publisher.layers (client.LayerTrack.Active): a layer no viewer
// needs is not sent, and starts again with a keyframe.
//
// The clips were made with (SIZE, W and H per layer; BR 150k for q and h,
// 100k for f, so that each frame, keyframes included, fits in one packet's
// room as clip.go needs):
//
//	ffmpeg -f lavfi -i "color=c=0x2a4d69:s=SIZE:r=30,drawbox=x='mod(t*W/2.6\,W-W/16)':y='H/2+mod(t*H/5\,H/6)':w=W/16:h=W/16:c=0xffcc00:t=fill" \
//	  -frames:v 90 -c:v libvpx -g 1000 -keyint_min 1000 -b:v BR -deadline good -cpu-used 0 \
//	  -auto-alt-ref 0 -lag-in-frames 0 -fflags +bitexact clip_RID.ivf
//
// (90 frames: 3 s at 30 fps, more than the 2 s between keyframes.)

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
)

var (
	//go:embed clip_q.ivf
	clipQ []byte
	//go:embed clip_h.ivf
	clipH []byte
	//go:embed clip_f.ivf
	clipF []byte
)

// simulcastRIDs are the layers' rids, lowest first, and their clips.
var simulcastRIDs = []string{"q", "h", "f"}

// DefaultLayerBitrates are the three layers: about 150, 500 and
// 1,500 kbit/s.
var DefaultLayerBitrates = []int{150_000, 500_000, 1_500_000}

// ParseLayerBitrates reads --layer-bitrates: one to three rates, lowest
// first, e.g. "150k,500k,1.5M".
func ParseLayerBitrates(s string) ([]int, error) {
	parts := strings.Split(s, ",")
	if len(parts) < 1 || len(parts) > len(simulcastRIDs) {
		return nil, fmt.Errorf("--layer-bitrates %q: want 1 to %d rates, lowest first (e.g. 150k,500k,1.5M)", s, len(simulcastRIDs))
	}
	var out []int
	for _, p := range parts {
		r, err := ParseBitrate(p)
		if err != nil {
			return nil, fmt.Errorf("--layer-bitrates: %w", err)
		}
		if len(out) > 0 && r <= out[len(out)-1] {
			return nil, fmt.Errorf("--layer-bitrates %q: rates must increase, lowest first", s)
		}
		out = append(out, r)
	}
	return out, nil
}

// layerClips are the clips and rids of n layers: with fewer than three,
// the lowest and the highest sizes (the contract names two layers "low"
// and "high", one "high").
func layerClips(n int) ([][]byte, []string, error) {
	switch n {
	case 1:
		return [][]byte{clipF}, []string{"f"}, nil
	case 2:
		return [][]byte{clipQ, clipF}, []string{"q", "f"}, nil
	case 3:
		return [][]byte{clipQ, clipH, clipF}, simulcastRIDs, nil
	}
	return nil, nil, errors.New("simulcast: 1 to 3 layers")
}

// newSimulcastClipPublisher is a clip publisher whose video is one layer
// per rate in bitrates (lowest first), each announced with its max-br.
func newSimulcastClipPublisher(streamID string, fps int, bitrates []int, audio bool, w *window) (*clipPublisher, error) {
	clips, rids, err := layerClips(len(bitrates))
	if err != nil {
		return nil, err
	}
	var specs []client.SimulcastLayer
	for i, rid := range rids {
		specs = append(specs, client.SimulcastLayer{RID: rid, MaxBitrate: bitrates[i]})
	}
	st, err := client.NewSimulcastTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", streamID, specs...)
	if err != nil {
		return nil, err
	}
	p := &clipPublisher{fps: fps, win: w, stopc: make(chan struct{}), sim: st}
	for i, lt := range st.Layers() {
		clip, err := parseIVF(clips[i])
		if err != nil {
			return nil, fmt.Errorf("clip of layer %s: %w", rids[i], err)
		}
		fb := &layerFeedback{fb: &p.fb}
		lt.SetRTCPHandler(fb)
		p.layers = append(p.layers, &clipLayer{
			rid: rids[i], clip: clip, bitrate: bitrates[i], write: lt.WriteRTP,
			active: lt.Active, keyWanted: lt.KeyframeWanted, fb: fb, dropped: lt.Dropped,
		})
	}
	if err := p.addAudio(streamID, audio); err != nil {
		return nil, err
	}
	return p, nil
}

// bindLayerSSRCs gives each layer's feedback counter the SSRC its sender
// sends it with, once published (receiver reports name it).
func (p *clipPublisher) bindLayerSSRCs(pc *webrtc.PeerConnection) {
	if p.sim == nil || pc == nil {
		return
	}
	for _, s := range pc.GetSenders() {
		for _, e := range s.GetParameters().Encodings {
			for _, l := range p.layers {
				if l.rid == e.RID && l.fb != nil {
					l.fb.ssrc.Store(uint32(e.SSRC))
				}
			}
		}
	}
}

// simulcastWait bounds the wait for the publisher's own track.published.
const simulcastWait = 10 * time.Second

// awaitSimulcast waits for the publisher's own video track.published (a
// 1.1 session gets it once the server has the track) and checks that the
// server lists its layers: a server without simulcast takes the offer
// (pion answers a=simulcast:recv by itself) but forwards nothing of the
// video, and its track objects have no layers.
func awaitSimulcast(ctx context.Context, c *client.Client, identity string) error {
	wctx, cancel := context.WithTimeout(ctx, simulcastWait)
	defer cancel()
	ev, err := client.WaitEvent(wctx, c, client.NotifyTrackPublished, func(ev client.TrackEvent) bool {
		return ev.Track.Participant == identity && ev.Track.Kind == "video"
	})
	switch {
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("%w (no track.published for the publisher's own video within %v)", errNoSimulcast, simulcastWait)
	case err != nil:
		return err
	case len(ev.Track.Layers) == 0:
		return fmt.Errorf("%w (its track object has no layers)", errNoSimulcast)
	}
	return nil
}

// errNoSimulcast is the publisher's report when the server does not take
// simulcast.
var errNoSimulcast = errors.New("the server does not support simulcast (protocol 1.1 §8.10)")

// childError is the error a child reported, as text: the one the parent
// acts on (a server without simulcast) is given back its identity.
func childError(msg string) error {
	if strings.Contains(msg, errNoSimulcast.Error()) {
		return fmt.Errorf("%w: %s", errNoSimulcast, msg)
	}
	return errors.New(msg)
}

// layerFigures is one simulcast layer's window, at the publisher.
type layerFigures struct {
	RID                string  `json:"rid"`
	BitrateBps         int     `json:"bitrate_bps"` // as asked
	Packets            int64   `json:"packets"`     // sent in the window
	Keyframes          int64   `json:"keyframes"`
	KeyframesOnRequest int64   `json:"keyframes_on_request"`
	ActiveShare        float64 `json:"active_share"` // share of the window it was sent (dynacast)
	// Dropped: packets the client's layer track dropped since it was made
	// (inactive, or written before its mid and rid extensions were
	// negotiated): a layer the server never receives shows here.
	Dropped int64 `json:"dropped"`
}

// layerFiguresOf reads the layers' window figures at now.
func (p *clipPublisher) layerFiguresOf(now int64, secs float64) []layerFigures {
	if p.sim == nil {
		return nil
	}
	var out []layerFigures
	for _, l := range p.layers {
		f := layerFigures{RID: l.rid, BitrateBps: l.bitrate, Packets: l.winPackets.Load(),
			Keyframes: l.winKeyframes.Load(), KeyframesOnRequest: l.winKeyR.Load()}
		if l.dropped != nil {
			f.Dropped = l.dropped()
		}
		if secs > 0 {
			f.ActiveShare = min(1, l.activeInWindow(now, p.win).Seconds()/secs)
		}
		out = append(out, f)
	}
	return out
}
