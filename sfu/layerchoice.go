package sfu

import "time"

// The layer decision (PROTOCOL.md 1.1 §3), as pure functions: from one
// subscriber's settings, the layers of its tracks as they arrive, and its
// downlink budget, which layer of each track it gets, and why. It touches
// no socket (LiveKit's Forwarder is the model); adapt.go calls it and
// applies its answer to the down tracks.
//
//   - Target: the highest layer at or below settings.quality (auto =
//     high) that fits maxWidth x maxHeight (an unknown size fits), else
//     the lowest.
//   - publisher: a target that is not arriving (not sent, disabled,
//     silent for 1 s) gives way to the highest arriving layer below it,
//     else the lowest arriving above it.
//   - bandwidth: with a budget, every track first gets its lowest layer,
//     then tracks are raised in turn while the budget lasts. Going above
//     the layer a track has needs upHeadroom more than the layer's rate;
//     keeping it needs its rate only: the gap between the two is the
//     hysteresis that keeps a budget near a layer's rate from flapping.
//     A 1.1 subscriber whose budget does not carry a track's lowest layer
//     has that track paused (told: track.stream), resumed when the lowest
//     layer fits with resumeHeadroom; a 1.0 subscriber keeps the lowest.

// upHeadroom and resumeHeadroom are the margins above a layer's measured
// rate the budget must have to switch up to it (or resume at it). A
// keyframe is 5-20x a delta frame, and a layer's rate swings ±15% around
// its average from one second to the next: a 25% margin keeps the switch
// from being undone by the next swing.
const (
	upHeadroom     = 1.25
	resumeHeadroom = 1.25
)

// LayerSettings are a subscriber's track.settings for one track.
type LayerSettings struct {
	Quality   string // QualityLow, QualityMedium, QualityHigh, or "" / "auto"
	MaxWidth  int    // 0: no limit
	MaxHeight int    // 0: no limit
	Paused    bool
}

// ChoiceLayer is one layer of a track as the decision sees it.
type ChoiceLayer struct {
	Slot          int
	Width, Height int  // of its last keyframe; 0: unknown
	Rate          int  // bit/s as it arrives; 0: unknown (it fits any budget)
	Arriving      bool // a packet within the last second
}

// TrackChoiceInput is one track of a subscriber.
type TrackChoiceInput struct {
	Settings LayerSettings
	Layers   []ChoiceLayer // lowest first; one for a track that is not simulcast
	Current  int           // the rank targeted now; -1: none (new, or paused)
	BWPaused bool          // paused now for bandwidth
	CanPause bool          // a 1.1 subscriber: may be paused for bandwidth
}

// TrackChoice is the decision for one track.
type TrackChoice struct {
	Rank            int // into the input's Layers; -1 while paused
	Reason          LayerReason
	Paused          bool // the subscriber asked
	PausedBandwidth bool
}

// RequestedRank is the target rank of settings s among layers (lowest
// first): the highest at or below its quality whose size fits, else 0.
func RequestedRank(s LayerSettings, layers []ChoiceLayer) int {
	if len(layers) == 0 {
		return -1
	}
	top := qualityRank(s.Quality, len(layers))
	for r := top; r > 0; r-- {
		l := layers[r]
		if (s.MaxWidth == 0 || l.Width == 0 || l.Width <= s.MaxWidth) &&
			(s.MaxHeight == 0 || l.Height == 0 || l.Height <= s.MaxHeight) {
			return r
		}
	}
	return 0
}

// arrivingRank is rank req, or when it is not arriving the highest
// arriving rank below it, else the lowest arriving above it; publisher
// says it moved. With nothing arriving it is req.
func arrivingRank(req int, layers []ChoiceLayer) (rank int, publisher bool) {
	if layers[req].Arriving {
		return req, false
	}
	for r := req - 1; r >= 0; r-- {
		if layers[r].Arriving {
			return r, true
		}
	}
	for r := req + 1; r < len(layers); r++ {
		if layers[r].Arriving {
			return r, true
		}
	}
	return req, false
}

// ChooseLayers decides every track of one subscriber. budget is the bit/s
// its downlink carries for video; < 0: unknown (no limit).
func ChooseLayers(budget int, tracks []TrackChoiceInput) []TrackChoice {
	out := make([]TrackChoice, len(tracks))
	caps := make([]int, len(tracks))
	for i, t := range tracks {
		if t.Settings.Paused || len(t.Layers) == 0 {
			out[i] = TrackChoice{Rank: -1, Paused: true}
			continue
		}
		req := RequestedRank(t.Settings, t.Layers)
		rank, pub := arrivingRank(req, t.Layers)
		caps[i] = rank
		out[i] = TrackChoice{Rank: rank}
		if pub {
			out[i].Reason = ReasonPublisher
		}
	}
	if budget < 0 {
		return out
	}
	// First every track's lowest layer, in order.
	left := float64(budget)
	for i, t := range tracks {
		if out[i].Paused {
			continue
		}
		need := float64(t.Layers[0].Rate)
		if t.BWPaused {
			need *= resumeHeadroom
		}
		if need > left && t.CanPause {
			out[i] = TrackChoice{Rank: -1, Reason: ReasonBandwidth, PausedBandwidth: true}
			continue
		}
		left -= float64(t.Layers[0].Rate)
		if caps[i] > 0 {
			out[i].Rank = 0 // raised below
		}
	}
	// Then raise each track as far as the budget lasts.
	for i, t := range tracks {
		if out[i].Rank < 0 {
			continue
		}
		base := float64(t.Layers[0].Rate)
		best := 0
		for r := 1; r <= caps[i]; r++ {
			need := float64(t.Layers[r].Rate)
			if r > t.Current {
				need *= upHeadroom
			}
			if need-base <= left {
				best = r
			}
		}
		left -= float64(t.Layers[best].Rate) - base
		out[i].Rank = best
		if best < caps[i] {
			out[i].Reason = ReasonBandwidth
		}
	}
	return out
}

// downHold and pauseHold are how long a decision to lower a track for
// bandwidth, or to pause it, must stand before it is applied: a dip of
// the estimate shorter than that costs the subscriber no layer (and the
// publisher no keyframe). With the estimator's ~200 ms to see a queue,
// a cap brings a down switch within ~1.5 s and a pause within ~2.5 s
// (the contract allows 3 s and 5 s).
const (
	downHold  = time.Second
	pauseHold = 2 * time.Second
)

// holdLower decides whether next, replacing prev (the choice applied),
// waits: it lowers the track for bandwidth (a lower rank, or a pause) and
// has not stood for downHold (pauseHold) since it was first made
// (since; 0: not before). It returns the since to keep. A lower rank on
// an overrun downlink (see overrun) is applied at once: that is no dip.
func holdLower(prev, next TrackChoice, since, now int64, overrun bool) (wait bool, newSince int64) {
	lower := next.Reason == ReasonBandwidth && !prev.Paused && !prev.PausedBandwidth && prev.Rank >= 0 &&
		(next.PausedBandwidth || next.Rank < prev.Rank)
	if !lower {
		return false, 0
	}
	if overrun && !next.PausedBandwidth {
		return false, 0
	}
	if since == 0 {
		since = now
	}
	hold := int64(downHold)
	if next.PausedBandwidth {
		hold = int64(pauseHold)
	}
	return now-since < hold, since
}

// A downlink is overrun when the video being forwarded exceeds the video
// budget by more than overrunRatio and the subscriber lost packets within
// overrunLoss: the link's queue is full and dropping, not dipping. In the
// lab (docs/bench.md, "Simulcast"), a viewer capped at 800 kbit/s while
// getting the 1.5 Mbit/s layer lost 30-50% of its packets; holding the
// top layer for downHold and then until the middle layer's keyframe kept
// the 200 ms queue full, so that keyframe arrived into a full queue, was
// cut, and the viewer froze 2-3 s more (frozen after settling 12-17%).
// At 25% over, a queue grows by a fifth of the link's rate: a 200 ms
// queue fills within a second.
const (
	overrunRatio = 1.25
	overrunLoss  = time.Second
)

// overrun reports whether the downlink is overrun: curVideo bit/s of video
// forwarded now, against budget (-1: unknown), with the last lossy
// feedback at lossAt (0: none).
func overrun(curVideo, budget int, lossAt, now int64) bool {
	return budget >= 0 && float64(curVideo) > float64(budget)*overrunRatio &&
		lossAt != 0 && now-lossAt <= int64(overrunLoss)
}

// pauseNeedsLoss is how recent a report with loss (over lossLow) must be
// for a bandwidth pause to begin. A full link drops packets within a
// queue's length (a capped link's queue overflows, a Wi-Fi one retries
// and drops); queuing delay alone also comes from a host whose CPU is
// starved (a loaded server, a busy phone), which must not stop a
// viewer's video: without loss, a subscriber keeps the lowest layer, as a
// 1.0 one does.
const pauseNeedsLoss = 5 * time.Second

// mayPause reports whether a subscriber's video may be paused for
// bandwidth: a 1.1 subscriber, already paused (the pause lasts until the
// lowest layer fits again) or whose downlink lost packets within
// pauseNeedsLoss of now (lossAt: Now() of the last such report; 0: none).
func mayPause(v11, pausedNow bool, lossAt, now int64) bool {
	if !v11 {
		return false
	}
	return pausedNow || (lossAt != 0 && now-lossAt <= int64(pauseNeedsLoss))
}
