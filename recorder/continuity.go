package recorder

// padWindow is how many recent sequence numbers continuity remembers as
// padding. Browsers send padding-only packets in bursts of a few dozen when
// they probe bandwidth; 256 covers a burst between two frames, and a gap
// longer than that is treated as a loss anyway.
const padWindow = 256

// continuity tells whether consecutive video frames left no packet out:
// a frame whose reference was lost decodes to garbage, so after a gap the
// recorder waits for a keyframe. The samplebuilder drops frames it could
// not complete and says nothing about frames lost whole, so the check is on
// sequence numbers: the next frame must start right after the last one,
// give or take padding-only packets (which carry no media).
type continuity struct {
	have bool
	last uint16            // last sequence number of the previous frame
	pad  [padWindow]uint32 // at seq%padWindow: seq+1 if seq was padding, so 0 means none
}

// padding records that seq carried only padding.
func (c *continuity) padding(seq uint16) { c.pad[seq%padWindow] = uint32(seq) + 1 }

func (c *continuity) isPadding(seq uint16) bool { return c.pad[seq%padWindow] == uint32(seq)+1 }

// next records a frame spanning first..last and reports whether it follows
// the previous frame without a lost packet in between.
func (c *continuity) next(first, last uint16) bool {
	ok := true
	if c.have {
		// uint16 arithmetic: correct across the wrap; a frame from
		// before the last one (released late) comes out huge.
		if gap := first - c.last - 1; gap >= padWindow {
			ok = false
		} else {
			for seq := c.last + 1; seq != first; seq++ {
				if !c.isPadding(seq) {
					ok = false
					break
				}
			}
		}
	}
	c.have, c.last = true, last
	return ok
}
