package sfu

import "testing"

func TestSeqUnwrapper(t *testing.T) {
	const base = 1 << 16 // extended number of sequence number 0 in the first cycle

	tests := []struct {
		name    string
		in      []uint16
		want    []uint64
		highest uint64
	}{
		{
			name:    "in order",
			in:      []uint16{100, 101, 102, 103},
			want:    []uint64{base + 100, base + 101, base + 102, base + 103},
			highest: base + 103,
		},
		{
			name:    "wrap 65535 to 0",
			in:      []uint16{65534, 65535, 0, 1},
			want:    []uint64{base + 65534, base + 65535, 2 * base, 2*base + 1},
			highest: 2*base + 1,
		},
		{
			name:    "first packet at 0 then older",
			in:      []uint16{0, 65535, 65534, 1},
			want:    []uint64{base, base - 1, base - 2, base + 1},
			highest: base + 1,
		},
		{
			name:    "reordered before the wrap",
			in:      []uint16{65533, 65535, 65534, 0},
			want:    []uint64{base + 65533, base + 65535, base + 65534, 2 * base},
			highest: 2 * base,
		},
		{
			name:    "reordered across the wrap",
			in:      []uint16{65534, 0, 65535, 1},
			want:    []uint64{base + 65534, 2 * base, base + 65535, 2*base + 1},
			highest: 2*base + 1,
		},
		{
			name:    "late packet after the wrap",
			in:      []uint16{65535, 0, 1, 2, 65535},
			want:    []uint64{base + 65535, 2 * base, 2*base + 1, 2*base + 2, base + 65535},
			highest: 2*base + 2,
		},
		{
			name:    "duplicates",
			in:      []uint16{10, 10, 11, 10, 11},
			want:    []uint64{base + 10, base + 10, base + 11, base + 10, base + 11},
			highest: base + 11,
		},
		{
			// 32767 forward is the largest jump still read as newer.
			name:    "huge jump forward",
			in:      []uint16{0, 32767, 32768},
			want:    []uint64{base, base + 32767, base + 32768},
			highest: base + 32768,
		},
		{
			// 32768 away is read as 2^15 behind: older, highest unchanged.
			name:    "jump of 2^15 is older",
			in:      []uint16{0, 32768, 1},
			want:    []uint64{base, base - 32768, base + 1},
			highest: base + 1,
		},
		{
			name:    "jump of more than 2^15 is older",
			in:      []uint16{100, 40000},
			want:    []uint64{base + 100, base + 100 - (65536 - 40000 + 100)},
			highest: base + 100,
		},
		{
			name: "many cycles",
			in:   []uint16{0, 30000, 60000, 24464, 54464, 18928},
			want: []uint64{
				base, base + 30000, base + 60000,
				2*base + 24464, 2*base + 54464, 3*base + 18928,
			},
			highest: 3*base + 18928,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u SeqUnwrapper
			if _, ok := u.Highest(); ok {
				t.Fatalf("Highest() ok on a fresh unwrapper")
			}
			for i, seq := range tt.in {
				if got := u.Unwrap(seq); got != tt.want[i] {
					t.Errorf("Unwrap(%d) [#%d] = %d, want %d", seq, i, got, tt.want[i])
				}
			}
			got, ok := u.Highest()
			if !ok || got != tt.highest {
				t.Errorf("Highest() = %d, %v, want %d, true", got, ok, tt.highest)
			}
		})
	}
}

// TestSeqUnwrapperNoUnderflow checks the worst case: the oldest possible
// packet right after the first one, whatever the first sequence number.
func TestSeqUnwrapperNoUnderflow(t *testing.T) {
	for _, first := range []uint16{0, 1, 32767, 32768, 65535} {
		var u SeqUnwrapper
		a := u.Unwrap(first)
		b := u.Unwrap(first - 32768)
		if b >= a || a-b != 32768 {
			t.Errorf("first %d: got %d then %d, want a gap of 32768", first, a, b)
		}
	}
}
