package sfu

// Simulcast (PROTOCOL.md 1.1 §3): a publisher sends up to three encodings
// of one video track, each an RTP stream of its own named by a rid
// (a=rid:<id> send, a=simulcast:send q;h;f). The sfu makes them one
// UpTrack with one layer per rid: each layer has its own Source (pion
// fires OnTrack once per rid), its own reader goroutine and packet Cache,
// and its own keyframe throttle. A track that is not simulcast has one
// layer, with no rid.
//
// Layers are numbered in the order the offer lists them ("slots"); which
// is low, medium or high is their rank: by the size of their last
// keyframe once both sizes are known, else by slot (lowest first, as
// LiveKit's q,h,f).

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// MaxLayers is the most simulcast layers a track has (the contract's
// 1-3). Further rids of an offer are not received.
const MaxLayers = 3

// Layer qualities, the contract's names.
const (
	QualityLow    = "low"
	QualityMedium = "medium"
	QualityHigh   = "high"
)

// LayerInfo is one entry of a track object's layers (1.1 §1).
type LayerInfo struct {
	RID        string `json:"rid"`
	Quality    string `json:"quality"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	MaxBitrate int    `json:"maxBitrate,omitempty"`
}

// RIDInfo is one a=rid of an offer's m-line, in a=simulcast order.
type RIDInfo struct {
	RID        string
	MaxBitrate int // bit/s, from the rid's max-br (RFC 8851); 0: none
	Paused     bool
}

// SimulcastRIDs returns, per mid, the send rids of an offer's m-lines that
// have them, in a=simulcast order (a=rid order without one), at most
// MaxLayers. It is a pure function; an SDP that does not parse has none.
func SimulcastRIDs(offer string) map[string][]RIDInfo {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return nil
	}
	out := map[string][]RIDInfo{}
	for _, m := range d.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		rids := map[string]RIDInfo{}
		var order []string
		var sim string
		for _, a := range m.Attributes {
			switch a.Key {
			case "rid":
				f := strings.Fields(a.Value)
				if len(f) < 2 || f[1] != "send" || !validRID(f[0]) {
					continue
				}
				ri := RIDInfo{RID: f[0]}
				if len(f) > 2 {
					ri.MaxBitrate = ridMaxBitrate(f[2])
				}
				if _, dup := rids[f[0]]; !dup {
					order = append(order, f[0])
				}
				rids[f[0]] = ri
			case "simulcast":
				sim = a.Value
			}
		}
		if len(rids) == 0 {
			continue
		}
		if f := strings.Fields(sim); len(f) >= 2 && f[0] == "send" {
			var simOrder []string
			for _, alt := range strings.Split(f[1], ";") {
				// "a,b" lists alternatives of one stream: the first is taken.
				id, _, _ := strings.Cut(alt, ",")
				paused := strings.HasPrefix(id, "~")
				id = strings.TrimPrefix(id, "~")
				if ri, ok := rids[id]; ok {
					ri.Paused = paused
					rids[id] = ri
					simOrder = append(simOrder, id)
				}
			}
			if len(simOrder) > 0 {
				order = simOrder
			}
		}
		list := make([]RIDInfo, 0, len(order))
		for _, id := range order {
			if len(list) == MaxLayers {
				break
			}
			list = append(list, rids[id])
		}
		out[mid] = list
	}
	return out
}

// ridMaxBitrate reads max-br from a rid's restrictions ("max-br=500000;
// max-width=640"); 0 when absent or malformed.
func ridMaxBitrate(restrictions string) int {
	for _, kv := range strings.Split(restrictions, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) != "max-br" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return 0
		}
		return n
	}
	return 0
}

// upLayer is one encoding of an up track.
type upLayer struct {
	slot       int
	rid        string // "" for a track that is not simulcast
	maxBitrate int
	cache      *Cache
	src        atomic.Pointer[sourceBox] // nil until the rid's first packet (OnTrack)

	lastKeyframeReq  atomic.Int64 // Now() of the last request sent upstream
	deferredKeyframe atomic.Bool  // a request waits for the interval to end

	// Written by the layer's reader, read by the adaptation loops.
	bytes    atomic.Uint64 // payload bytes in, for the layer's rate
	lastAt   atomic.Int64  // Now() of the newest packet; 0: none yet
	size     atomic.Uint32 // width<<16 | height of the last keyframe; 0: unknown
	keyframe atomic.Int64  // Now() of the last keyframe start

	// Owned by the layer's reader: reused for every packet.
	hdr    rtp.Header
	pkt    Packet
	unwrap SeqUnwrapper
	// A replaced source (reload.go): its numbers are shifted to continue
	// the layer's; rebase asks for the shifts at its first packet.
	rebase   bool
	extShift uint64
	tsShift  uint32
	lastTS   uint32 // the newest packet's (shifted) timestamp
}

// sourceBox lets a Source interface live in an atomic.Pointer.
type sourceBox struct{ s Source }

func (l *upLayer) source() Source {
	if b := l.src.Load(); b != nil {
		return b.s
	}
	return nil
}

func (l *upLayer) dims() (w, h int) {
	s := l.size.Load()
	return int(s >> 16), int(s & 0xffff)
}

// layerQualities names n ranked layers, lowest first: 3 are low, medium,
// high; 2 are low, high; 1 is high.
func layerQualities(n int) []string {
	switch n {
	case 1:
		return []string{QualityHigh}
	case 2:
		return []string{QualityLow, QualityHigh}
	}
	return []string{QualityLow, QualityMedium, QualityHigh}
}

// qualityRank is the contract's quality as a rank among n layers: the
// highest layer at or below it (auto is high).
func qualityRank(q string, n int) int {
	switch q {
	case QualityLow:
		return 0
	case QualityMedium:
		if n == 3 {
			return 1
		}
		return 0
	}
	return n - 1
}

// rankSlots orders layer slots lowest first: by keyframe size (width x
// height) when every layer's is known, else by slot. A pure function of
// the sizes (0: unknown).
func rankSlots(sizes []int) []int {
	order := make([]int, len(sizes))
	for i := range order {
		order[i] = i
	}
	for _, s := range sizes {
		if s == 0 {
			return order
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return sizes[order[a]] < sizes[order[b]] })
	return order
}

// ranked returns the track's layer slots, lowest first.
func (t *UpTrack) ranked() []int {
	if len(t.layers) == 1 {
		return []int{0}
	}
	sizes := make([]int, len(t.layers))
	for i, l := range t.layers {
		w, h := l.dims()
		sizes[i] = w * h
	}
	return rankSlots(sizes)
}

// Simulcast reports whether the track has rids (a simulcast publisher's).
func (t *UpTrack) Simulcast() bool { return t.layers[0].rid != "" }

// Layers returns the track object's layers (1.1 §1): nil for a track that
// is not simulcast; else lowest first, with the last keyframe's size and
// the rid's max-br.
func (t *UpTrack) Layers() []LayerInfo {
	if !t.Simulcast() {
		return nil
	}
	order := t.ranked()
	q := layerQualities(len(order))
	out := make([]LayerInfo, len(order))
	for i, slot := range order {
		l := t.layers[slot]
		w, h := l.dims()
		out[i] = LayerInfo{RID: l.rid, Quality: q[i], Width: w, Height: h, MaxBitrate: l.maxBitrate}
	}
	return out
}

// TopLayer returns the slot of the track's highest layer (0 when it is
// not simulcast): what the recorder records.
func (t *UpTrack) TopLayer() int {
	r := t.ranked()
	return r[len(r)-1]
}

// LayerRIDs returns the rids of the track's layers by slot (nil: not
// simulcast).
func (t *UpTrack) LayerRIDs() []string {
	if !t.Simulcast() {
		return nil
	}
	out := make([]string, len(t.layers))
	for i, l := range t.layers {
		out[i] = l.rid
	}
	return out
}

// layerOfRID returns the slot of rid, or -1.
func (t *UpTrack) layerOfRID(rid string) int {
	for i, l := range t.layers {
		if l.rid == rid {
			return i
		}
	}
	return -1
}

// rateWindow is how often a track's layer rates are measured: long enough
// to average a few keyframes' bursts at 30 fps (15 frames), short enough
// that a layer turned off upstream is seen within a second.
const rateWindow = int64(500 * time.Millisecond)

// layerRates keeps a track's measured layer rates (UpTrack.rates).
type layerRates struct {
	mu    sync.Mutex
	at    int64             // Now() of the last measure
	bytes [MaxLayers]uint64 // the layers' byte counters then
	rate  [MaxLayers]int    // bit/s over the last window
}

// rates returns the layers' rates in bit/s by slot, measured every
// rateWindow and smoothed (shared by every subscriber; a relayed copy's are its
// origin's).
func (t *UpTrack) rates() [MaxLayers]int {
	o := t
	if t.origin != nil {
		o = t.origin
	}
	r := &o.layerRates
	now := Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := now - r.at; d >= rateWindow {
		for i, l := range o.layers {
			b := l.bytes.Load()
			if r.at != 0 {
				// Smoothed over ~2 s (a quarter of each window): a
				// keyframe doubles a 500 ms window's bytes, and the
				// decision must not take that for the layer's rate.
				x := int(float64(b-r.bytes[i]) * 8 * 1e9 / float64(d))
				if r.rate[i] == 0 || d > 4*rateWindow {
					r.rate[i] = x
				} else {
					r.rate[i] = (r.rate[i]*3 + x) / 4
				}
			}
			r.bytes[i] = b
		}
		r.at = now
	}
	return r.rate
}

// choiceLayers returns the track's layers as the layer decision sees
// them, lowest first, at now.
func (t *UpTrack) choiceLayers(now int64) []ChoiceLayer {
	rates := t.rates()
	order := t.ranked()
	out := make([]ChoiceLayer, len(order))
	for i, slot := range order {
		l := t.layers[slot]
		w, h := l.dims()
		at := l.lastAt.Load()
		// Silent for a second: not arriving. A layer that has not sent
		// yet gets that second from the track's start (pion starts each
		// rid's stream at its first packet, a few frames apart).
		arriving := (at != 0 && now-at < int64(time.Second)) || (at == 0 && now-t.created < int64(time.Second))
		out[i] = ChoiceLayer{Slot: slot, Width: w, Height: h, Rate: rates[slot], Arriving: arriving}
	}
	return out
}

// LayerCache returns the packet cache of layer slot (slot 0: Cache).
func (t *UpTrack) LayerCache(slot int) *Cache {
	if slot < 0 || slot >= len(t.layers) {
		return nil
	}
	return t.layers[slot].cache
}

// LayerRIDInfos returns the track's layers by slot as an offer named
// them (nil: not simulcast): what a relay announces on another node.
func (t *UpTrack) LayerRIDInfos() []RIDInfo {
	if !t.Simulcast() {
		return nil
	}
	out := make([]RIDInfo, len(t.layers))
	for i, l := range t.layers {
		out[i] = RIDInfo{RID: l.rid, MaxBitrate: l.maxBitrate}
	}
	return out
}
