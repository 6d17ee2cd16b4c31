package client

// Per-track settings of a subscriber (protocol 1.1, §8.10): the quality
// it wants of a track it receives, a size limit, and pausing it.

import "context"

// TrackSettingsParams is the params of track.settings. Omitted (nil, "")
// fields keep their value; the defaults are quality "auto", no size limit
// (0) and not paused.
type TrackSettingsParams struct {
	TrackID string `json:"trackId"`
	// Quality is the highest layer wanted: "low", "medium", "high" or
	// "auto" (= high); "" keeps the current one.
	Quality string `json:"quality,omitempty"`
	// MaxWidth and MaxHeight limit the layer by its size (0..16384, 0 = no
	// limit): the highest layer within them is chosen.
	MaxWidth  *int `json:"maxWidth,omitempty"`
	MaxHeight *int `json:"maxHeight,omitempty"`
	// Paused stops the track's media (within 1 s) without renegotiation;
	// false restores it (within 2 s). Audio tracks take only this.
	Paused *bool `json:"paused,omitempty"`
}

// TrackSettings are the settings in force for one received track, the
// result of track.settings.
type TrackSettings struct {
	TrackID   string `json:"trackId"`
	Quality   string `json:"quality"`
	MaxWidth  int    `json:"maxWidth"`
	MaxHeight int    `json:"maxHeight"`
	Paused    bool   `json:"paused"`
}

// TrackSettings calls "track.settings" (1.1 sessions) for a track this
// client receives and returns the settings in force. Errors: 4004 for an
// unknown track or the caller's own, 4003 from a user session, -32602 for
// a bad quality or size.
func (c *Client) TrackSettings(ctx context.Context, p TrackSettingsParams) (*TrackSettings, error) {
	var s TrackSettings
	if err := c.Call(ctx, "track.settings", p, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Int returns a pointer to v, for the optional fields of
// TrackSettingsParams.
func Int(v int) *int { return &v }

// Bool returns a pointer to v, for TrackSettingsParams.Paused.
func Bool(v bool) *bool { return &v }
