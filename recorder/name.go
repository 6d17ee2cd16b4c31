package recorder

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RoomDir returns the directory holding the recordings of room under dir:
// dir/<room>, with the room name escaped as escapeName does. Use it to list
// a room's recordings.
func RoomDir(dir, room string) string { return filepath.Join(dir, escapeName(room)) }

// escapeName makes a room or participant name safe as one path element,
// and reversibly so (two names never share a directory): bytes of
// [A-Za-z0-9_@-], and dots other than a leading one, stay; every other byte
// becomes %XX. So "a/b" cannot climb out, ".." is "%2E.", and "%" is "%25".
func escapeName(s string) string {
	if s == "" {
		return "%" // an empty name still needs a path element; "%" alone never comes out of escaping
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '@', c == '-', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// unescapeName reverses escapeName; ok is false for a string escapeName
// never returns.
func unescapeName(s string) (string, bool) {
	if s == "%" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	out := b.String()
	return out, escapeName(out) == s
}

// RoomOfDir returns the room whose RoomDir has the base name dir; ok is
// false if no room's has.
func RoomOfDir(dir string) (room string, ok bool) { return unescapeName(dir) }

// ParseFileName reads a recording's file name, <participant>-<unix
// ms>.webm: the participant, and when the recorder was created (just
// before its first frame).
func ParseFileName(name string) (participant string, created time.Time, ok bool) {
	base, found := strings.CutSuffix(name, ".webm")
	i := strings.LastIndexByte(base, '-')
	if !found || i < 0 {
		return "", time.Time{}, false
	}
	digits := base[i+1:]
	ms, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || strings.Trim(digits, "0123456789") != "" {
		return "", time.Time{}, false
	}
	participant, ok = unescapeName(base[:i])
	if !ok {
		return "", time.Time{}, false
	}
	return participant, time.UnixMilli(ms), true
}
