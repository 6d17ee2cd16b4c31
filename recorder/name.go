package recorder

import (
	"fmt"
	"path/filepath"
	"strings"
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
