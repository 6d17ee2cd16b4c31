package recorder

import "testing"

func TestContinuity(t *testing.T) {
	var c continuity
	steps := []struct {
		first, last uint16
		want        bool
	}{
		{100, 102, true},  // the first frame: nothing to compare
		{103, 103, true},  // right after
		{105, 106, false}, // 104 lost
		{107, 107, true},  // continues after the gap
		{65534, 65535, false},
	}
	for _, s := range steps {
		if got := c.next(s.first, s.last); got != s.want {
			t.Fatalf("next(%d, %d) = %v, want %v", s.first, s.last, got, s.want)
		}
	}
	// Across the 16-bit wrap.
	if !c.next(0, 1) {
		t.Fatal("65535 -> 0 reported as a gap")
	}
	// Padding-only packets in between are not a loss...
	c.padding(2)
	c.padding(3)
	if !c.next(4, 5) {
		t.Fatal("padding 2..3 reported as a gap")
	}
	// ...but a lost one among them is.
	c.padding(6)
	if c.next(8, 8) {
		t.Fatal("7 lost among padding not reported")
	}
	// A frame from before the last one (released late) is a gap.
	if c.next(3, 3) {
		t.Fatal("a frame going back not reported")
	}
}
