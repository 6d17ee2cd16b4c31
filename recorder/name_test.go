package recorder

import (
	"path/filepath"
	"testing"
)

func TestEscapeName(t *testing.T) {
	for in, want := range map[string]string{
		"alice":        "alice",
		"Show_1-a.b@c": "Show_1-a.b@c",
		"a/b":          "a%2Fb",
		"a_b":          "a_b",
		"..":           "%2E.",
		".hidden":      "%2Ehidden",
		"100%":         "100%25",
		"x:y":          "x%3Ay",
		"":             "%",
		"é":            "%C3%A9",
	} {
		if got := escapeName(in); got != want {
			t.Errorf("escapeName(%q) = %q, want %q", in, got, want)
		}
	}
	if got, want := RoomDir("/data/rec", "../etc"), filepath.Join("/data/rec", "%2E.%2Fetc"); got != want {
		t.Errorf("RoomDir = %q, want %q", got, want)
	}
}
