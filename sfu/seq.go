package sfu

// SeqUnwrapper turns 16-bit RTP sequence numbers into monotonically comparable 64-bit extended
// sequence numbers, handling wrap-around and reordering (a packet up to 2^15 behind the highest
// seen is "older", otherwise "newer"). The first packet's extended number is 1<<16 + seq so that
// slightly older packets that arrive next never underflow. Not safe for concurrent use (one reader owns it).
//
// The zero value is ready to use.
type SeqUnwrapper struct {
	highest uint64 // highest extended sequence number returned so far
	started bool   // whether highest is meaningful
}

// Unwrap returns the extended sequence number of seq and, when seq is newer than every
// packet seen so far, makes it the new highest.
//
// The signed 16-bit difference seq - highest decides: -32768..-1 is a packet that is late
// (reordered or retransmitted), 0 is a duplicate of the highest, 1..32767 is newer (possibly
// across a wrap from 65535 to 0). A jump of 2^15 or more forward is thus indistinguishable
// from a late packet, and is treated as one: that is the usual RTP convention (RFC 3550 A.1
// uses a much smaller window and resynchronises instead).
func (u *SeqUnwrapper) Unwrap(seq uint16) uint64 {
	if !u.started {
		// Start one full cycle above zero: a late packet can be at most
		// 2^15 behind, so the result never goes below 2^15.
		u.highest = 1<<16 + uint64(seq)
		u.started = true
		return u.highest
	}

	// uint16 subtraction wraps, and reading the result as int16 gives the
	// shortest signed distance on the 16-bit circle.
	delta := int16(seq - uint16(u.highest))
	if delta > 0 {
		u.highest += uint64(delta)
		return u.highest
	}
	// delta is in -32768..0 and highest >= 1<<16 > 32768, so this never underflows.
	return u.highest - uint64(-int64(delta))
}

// Highest returns the highest extended sequence number returned so far;
// ok is false when Unwrap has never been called.
func (u *SeqUnwrapper) Highest() (ext uint64, ok bool) {
	return u.highest, u.started
}
