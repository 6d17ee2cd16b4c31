package rooms

// track.settings (PROTOCOL.md 1.1 §3): a subscriber asks for less of a
// track (a quality, a size limit) or pauses it. The sfu keeps the
// settings and decides the layers (sfu/layerchoice.go); here are the
// rules of who may set what.

import (
	"github.com/relaysfu/relayd/sfu"
)

// MaxSettingsSize bounds maxWidth and maxHeight (0 = no limit).
const MaxSettingsSize = 16384

// SettingsPatch is a track.settings call: nil fields keep their value.
type SettingsPatch struct {
	Quality   *string
	MaxWidth  *int
	MaxHeight *int
	Paused    *bool
}

// TrackSettings is the settings in force, track.settings' result.
type TrackSettings struct {
	TrackID   string `json:"trackId"`
	Quality   string `json:"quality"`
	MaxWidth  int    `json:"maxWidth"`
	MaxHeight int    `json:"maxHeight"`
	Paused    bool   `json:"paused"`
}

// ValidQuality reports whether q is a quality track.settings takes.
func ValidQuality(q string) bool {
	switch q {
	case "auto", sfu.QualityLow, sfu.QualityMedium, sfu.QualityHigh:
		return true
	}
	return false
}

// TrackSettings applies patch to the member's settings of track id, a
// track of its room it receives, and returns the settings in force. A
// user session gets ErrForbidden; an unknown track or one of its own,
// ErrNotFound; a bad quality or a size outside 0..MaxSettingsSize,
// ErrInvalid (nothing changes).
func (m *Member) TrackSettings(id string, patch SettingsPatch) (TrackSettings, error) {
	if patch.Quality != nil && !ValidQuality(*patch.Quality) {
		return TrackSettings{}, errorf(ErrInvalid, `invalid params: quality must be "low", "medium", "high" or "auto"`)
	}
	for _, v := range []*int{patch.MaxWidth, patch.MaxHeight} {
		if v != nil && (*v < 0 || *v > MaxSettingsSize) {
			return TrackSettings{}, errorf(ErrInvalid, "invalid params: maxWidth and maxHeight must be 0..%d (0: no limit)", MaxSettingsSize)
		}
	}
	if err := m.inRoom(); err != nil {
		return TrackSettings{}, err
	}
	owner, up := findTrack(m.p.Room(), id)
	if up == nil || owner == m.p {
		return TrackSettings{}, errorf(ErrNotFound, "track %s not found", id)
	}
	s := m.p.TrackSettings(id)
	if patch.Quality != nil {
		s.Quality = *patch.Quality
		if s.Quality == "auto" {
			s.Quality = ""
		}
	}
	if patch.MaxWidth != nil {
		s.MaxWidth = *patch.MaxWidth
	}
	if patch.MaxHeight != nil {
		s.MaxHeight = *patch.MaxHeight
	}
	if patch.Paused != nil {
		s.Paused = *patch.Paused
	}
	m.p.SetTrackSettings(id, s)
	out := TrackSettings{TrackID: id, Quality: s.Quality, MaxWidth: s.MaxWidth, MaxHeight: s.MaxHeight, Paused: s.Paused}
	if out.Quality == "" {
		out.Quality = "auto"
	}
	return out, nil
}
