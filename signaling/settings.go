package signaling

// Simulcast and adaptation (PROTOCOL.md 1.1 §3): track.settings, and the
// params of track.layer, track.updated and publisher.layers. The rules
// are rooms' (rooms/settings.go) and the sfu's.

import (
	"encoding/json"

	"github.com/relaysfu/relayd/rooms"
	"github.com/relaysfu/relayd/sfu"
)

func init() {
	handlers["track.settings"] = (*session).trackSettings
	knownMethods["track.settings"] = true
}

// trackSettings: track.settings {trackId, quality?, maxWidth?,
// maxHeight?, paused?} -> the settings in force.
func (s *session) trackSettings(raw json.RawMessage) (any, *Error) {
	var p struct {
		TrackID   *string `json:"trackId"`
		Quality   *string `json:"quality"`
		MaxWidth  *int    `json:"maxWidth"`
		MaxHeight *int    `json:"maxHeight"`
		Paused    *bool   `json:"paused"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	if p.TrackID == nil || *p.TrackID == "" {
		return nil, Errorf(CodeInvalidParams, "invalid params: trackId is required")
	}
	return reply(s.member.TrackSettings(*p.TrackID, rooms.SettingsPatch{
		Quality: p.Quality, MaxWidth: p.MaxWidth, MaxHeight: p.MaxHeight, Paused: p.Paused,
	}))
}

// trackLayerParams are track.layer's params.
type trackLayerParams struct {
	TrackID string `json:"trackId"`
	Quality string `json:"quality"`
	RID     string `json:"rid,omitempty"`
	Reason  string `json:"reason"`
}

// publisherLayersParams are publisher.layers' params.
type publisherLayersParams struct {
	TrackID string   `json:"trackId"`
	Active  []string `json:"active"`
}

// notifyAdaptation turns the sfu's adaptation events into notifications;
// it reports whether ev was one.
func (s *session) notifyAdaptation(ev rooms.Event) bool {
	switch e := ev.(type) {
	case sfu.TrackLayer:
		s.notify("track.layer", trackLayerParams{TrackID: e.TrackID, Quality: e.Quality, RID: e.RID, Reason: e.Reason.String()})
	case sfu.TrackUpdated:
		s.notify("track.updated", map[string]any{"track": e.Track})
	case sfu.PublisherLayers:
		active := e.Active
		if active == nil {
			active = []string{}
		}
		s.notify("publisher.layers", publisherLayersParams{TrackID: e.TrackID, Active: active})
	default:
		return false
	}
	return true
}
