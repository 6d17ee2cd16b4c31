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

func TestUnescapeName(t *testing.T) {
	for _, name := range []string{"alice", "Show_1-a.b@c", "a/b", "..", ".hidden", "100%", "x:y", "", "é", "a%2Fb"} {
		got, ok := unescapeName(escapeName(name))
		if !ok || got != name {
			t.Errorf("unescapeName(escapeName(%q)) = %q, %v", name, got, ok)
		}
	}
	// Only what escapeName returns: no other spelling of a name.
	for _, bad := range []string{"%2e.", "%2", "%", "%zz", "a%", ".x", "a/b", "%41"} {
		if got, ok := unescapeName(bad); ok && bad != "%" {
			t.Errorf("unescapeName(%q) = %q, accepted", bad, got)
		}
	}
}

func TestParseFileName(t *testing.T) {
	for _, c := range []struct {
		name, participant string
		ms                int64
		ok                bool
	}{
		{"alice-1767225600123.webm", "alice", 1767225600123, true},
		{"bob.relay-5.webm", "bob.relay", 5, true},
		{"a-b-c-42.webm", "a-b-c", 42, true},
		{"a%2Fb-1.webm", "a/b", 1, true},
		{"%-1.webm", "", 1, true},
		{"alice-1.webm.json", "", 0, false},
		{"alice.webm", "", 0, false},
		{"alice-x.webm", "", 0, false},
		{"alice--1.webm", "alice-", 1, true},
		{"alice-+1.webm", "", 0, false},
		{"alice-.webm", "", 0, false},
		{"a%2fb-1.webm", "", 0, false},
	} {
		p, at, ok := ParseFileName(c.name)
		if ok != c.ok || p != c.participant || (ok && at.UnixMilli() != c.ms) {
			t.Errorf("ParseFileName(%q) = %q, %v, %v; want %q, %d, %v", c.name, p, at.UnixMilli(), ok, c.participant, c.ms, c.ok)
		}
	}
}
