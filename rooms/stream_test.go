package rooms

import (
	"fmt"
	"testing"
)

// The track.stream rule, step by step (PROTOCOL.md 1.1 §3, §8): each case
// runs its inputs from a fresh state and lists the notification each one
// calls for ("" none).
func TestNextStream(t *testing.T) {
	var (
		relay = CauseRelayPaused
		recon = CausePublisherReconnecting
		bw    = CauseBandwidth
	)
	got := func(held ...StreamCause) StreamInput { return StreamInput{Kind: StreamGot, Held: held} }
	begin := func(c StreamCause) StreamInput { return StreamInput{Kind: StreamBegin, Cause: c} }
	end := func(c StreamCause) StreamInput { return StreamInput{Kind: StreamEnd, Cause: c} }
	packet := StreamInput{Kind: StreamPacket}
	tests := []struct {
		name string
		in   []StreamInput
		want []string // per input: "paused relay_paused", "active relay_paused", ""
	}{
		{"got with nothing held", []StreamInput{got(), packet}, []string{"", ""}},
		{"got while a relay is paused", []StreamInput{got(relay)}, []string{"paused relay_paused"}},
		{"got while two causes hold: the first named", []StreamInput{got(recon, relay)}, []string{"paused publisher_reconnecting"}},
		{"got: a subscriber's own cause is not the track's", []StreamInput{got(bw)}, []string{""}},
		{"pause, then resume: active with the first packet", []StreamInput{got(), begin(relay), end(relay), packet, packet},
			[]string{"", "paused relay_paused", "", "active relay_paused", ""}},
		{"no packet, no active", []StreamInput{got(), begin(relay), end(relay)}, []string{"", "paused relay_paused", ""}},
		{"packets while paused tell nothing", []StreamInput{begin(relay), packet, packet}, []string{"paused relay_paused", "", ""}},
		{"a begin twice tells once", []StreamInput{begin(relay), begin(relay)}, []string{"paused relay_paused", ""}},
		{"an end of what does not hold tells nothing", []StreamInput{end(relay), packet}, []string{"", ""}},
		{"paused names the starting cause, active the last to end",
			[]StreamInput{begin(bw), begin(relay), end(bw), packet, end(relay), packet},
			[]string{"paused bandwidth", "", "", "", "", "active relay_paused"}},
		{"ends in another order",
			[]StreamInput{begin(relay), begin(recon), end(recon), end(relay), packet},
			[]string{"paused relay_paused", "", "", "", "active relay_paused"}},
		{"a cause begins again before media came back: still paused, one active",
			[]StreamInput{begin(relay), end(relay), begin(relay), packet, end(relay), packet},
			[]string{"paused relay_paused", "", "", "", "", "active relay_paused"}},
		{"another cause begins before media came back: active names it",
			[]StreamInput{begin(relay), end(relay), begin(recon), end(recon), packet},
			[]string{"paused relay_paused", "", "", "", "active publisher_reconnecting"}},
		{"paused again after active", []StreamInput{begin(relay), end(relay), packet, begin(relay)},
			[]string{"paused relay_paused", "", "active relay_paused", "paused relay_paused"}},
		{"got again starts over", []StreamInput{begin(relay), got(), packet}, []string{"paused relay_paused", "", ""}},
		{"an empty cause is no cause", []StreamInput{begin("")}, []string{""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s StreamState
			for i, in := range tc.in {
				var note *StreamNote
				s, note = NextStream(s, in)
				got := ""
				if note != nil {
					got = fmt.Sprintf("%s %s", note.State, note.Reason)
				}
				if got != tc.want[i] {
					t.Fatalf("input %d (%+v): note %q, want %q (state %+v)", i, in, got, tc.want[i], s)
				}
			}
		})
	}
}

// A state is never changed behind its holder's back: NextStream copies
// what it changes.
func TestNextStreamDoesNotAlias(t *testing.T) {
	s, _ := NextStream(StreamState{}, StreamInput{Kind: StreamBegin, Cause: CauseRelayPaused})
	before := append([]StreamCause(nil), s.Held...)
	_, _ = NextStream(s, StreamInput{Kind: StreamBegin, Cause: CauseBandwidth})
	_, _ = NextStream(s, StreamInput{Kind: StreamEnd, Cause: CauseRelayPaused})
	if len(s.Held) != len(before) || s.Held[0] != before[0] {
		t.Fatalf("held changed to %v, was %v", s.Held, before)
	}
}

func TestStreamWaiting(t *testing.T) {
	s, _ := NextStream(StreamState{}, StreamInput{Kind: StreamBegin, Cause: CauseRelayPaused})
	if s.Waiting() {
		t.Error("waiting while a cause holds")
	}
	s, _ = NextStream(s, StreamInput{Kind: StreamEnd, Cause: CauseRelayPaused})
	if !s.Waiting() {
		t.Error("not waiting for media once the cause ended")
	}
	s, _ = NextStream(s, StreamInput{Kind: StreamPacket})
	if s.Waiting() {
		t.Error("waiting after the packet")
	}
}
