package ids

import (
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := New("TR_", 12)
		if len(id) != 15 || !strings.HasPrefix(id, "TR_") || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		for _, c := range id[3:] {
			if !strings.ContainsRune(base62, c) {
				t.Fatalf("id %q has %q", id, c)
			}
		}
		seen[id] = true
	}
}
