package rooms

// The track.stream rule (PROTOCOL.md 1.1 §3 "track.stream", §8), for one
// track as one subscriber receives it: a pure function from the causes
// that hold to the transitions to tell. streams.go keeps a state per
// (subscriber, track) and feeds it.
//
//   - Transitions only: "paused" when the first cause begins, naming it;
//     "active" once no cause holds and a packet is delivered again,
//     naming the last cause to end. A cause beginning while paused, or
//     ending while another holds, tells nothing.
//   - Getting a track (a join result, a track.published) while a
//     per-track cause holds brings "paused" right after.
//
// The causes: relay_paused (the relay carrying the track is paused, §8;
// per track), and later publisher_reconnecting (its publisher is held,
// §5; per track) and bandwidth (this subscriber's downlink, §3; per
// subscriber). A new cause needs only its StreamCause here and a caller
// feeding StreamBegin / StreamEnd (and StreamPacket, when media flows
// again) for the subscribers it concerns: see streams.go.

// StreamCause is why a subscriber's track is paused: the reason of a
// track.stream notification.
type StreamCause string

// The causes.
const (
	CauseRelayPaused           StreamCause = "relay_paused"
	CausePublisherReconnecting StreamCause = "publisher_reconnecting"
	CauseBandwidth             StreamCause = "bandwidth"
)

// PerTrack reports whether the cause is the track's, whoever receives
// it (told at once to a subscriber that gets the track), rather than one
// subscriber's.
func (c StreamCause) PerTrack() bool { return c != CauseBandwidth }

// StreamState is one subscriber's view of one track.
type StreamState struct {
	Held   []StreamCause // the causes holding, in the order they began
	Paused bool          // "paused" was told, and no "active" since
	Ended  StreamCause   // while Paused with nothing held: the last cause to end
}

// StreamInput is what happened.
type StreamInput struct {
	Kind  StreamInputKind
	Cause StreamCause   // StreamBegin, StreamEnd
	Held  []StreamCause // StreamGot: the track's causes holding now
}

// StreamInputKind says what a StreamInput is.
type StreamInputKind int

// The inputs.
const (
	// StreamGot: the subscriber was given the track (join result,
	// track.published); Held are the causes holding for it.
	StreamGot StreamInputKind = iota
	// StreamBegin, StreamEnd: Cause began, or ended.
	StreamBegin
	StreamEnd
	// StreamPacket: a packet of the track was delivered.
	StreamPacket
)

// StreamNote is a track.stream notification to send: State "paused" or
// "active", with its Reason.
type StreamNote struct {
	State  string
	Reason StreamCause
}

// The track.stream states.
const (
	StreamPaused = "paused"
	StreamActive = "active"
)

// NextStream returns the state after in, and the notification it calls
// for (nil: none).
func NextStream(s StreamState, in StreamInput) (StreamState, *StreamNote) {
	switch in.Kind {
	case StreamGot:
		s = StreamState{}
		for _, c := range in.Held {
			if c.PerTrack() && !holds(s.Held, c) {
				s.Held = append(s.Held, c)
			}
		}
		if len(s.Held) == 0 {
			return s, nil
		}
		s.Paused = true
		return s, &StreamNote{State: StreamPaused, Reason: s.Held[0]}
	case StreamBegin:
		if in.Cause == "" || holds(s.Held, in.Cause) {
			return s, nil
		}
		s.Held = append(append([]StreamCause(nil), s.Held...), in.Cause)
		if s.Paused {
			return s, nil // paused already (or waiting for media after an end)
		}
		s.Paused, s.Ended = true, ""
		return s, &StreamNote{State: StreamPaused, Reason: in.Cause}
	case StreamEnd:
		if !holds(s.Held, in.Cause) {
			return s, nil
		}
		held := make([]StreamCause, 0, len(s.Held)-1)
		for _, c := range s.Held {
			if c != in.Cause {
				held = append(held, c)
			}
		}
		s.Held = held
		if len(held) == 0 && s.Paused {
			s.Ended = in.Cause // "active" comes with the next packet
		}
		return s, nil
	case StreamPacket:
		if !s.Paused || len(s.Held) > 0 {
			return s, nil
		}
		note := &StreamNote{State: StreamActive, Reason: s.Ended}
		s.Paused, s.Ended = false, ""
		return s, note
	}
	return s, nil
}

// Waiting reports whether the subscriber waits for a packet to be told
// "active": paused, and no cause holds any more.
func (s StreamState) Waiting() bool { return s.Paused && len(s.Held) == 0 }

func holds(held []StreamCause, c StreamCause) bool {
	for _, h := range held {
		if h == c {
			return true
		}
	}
	return false
}
