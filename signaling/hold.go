package signaling

// Holding a session (PROTOCOL.md 1.1 §5): a 1.1 session whose socket is
// lost without leave, a kick or its room's end is kept for the reconnect
// grace, so that the client can resume it (resume.go) and no one in its
// room sees it go. nextHold decides (a pure function, table-tested); the
// session runs what it returns.
//
// While held the session has no connection: its outbox is detached
// (outbox.go): notifications still get their seq and are kept for the
// replay, server requests (offers) are dropped (a resume sends a fresh
// offer), nothing is written.

import (
	"time"
)

// holdState is where a session stands in its life across connections.
type holdState int

const (
	// stOpen: served by a connection (or not yet joined).
	stOpen holdState = iota
	// stClosing: a close is queued (leave, kick, room end, a newer
	// session, shutdown): the socket's loss will end the session.
	stClosing
	// stHeld: the socket was lost; the session waits for a resume.
	stHeld
	// stMoved: a resume took it over; the new connection's session
	// carries it on, and nothing of this one touches the member again.
	stMoved
	// stEnded: over; the member has left.
	stEnded
)

// holdInput is what happened to a session.
type holdInput int

const (
	inSocketLost   holdInput = iota // its connection ended (close, keepalive timeout, abort)
	inClosing                       // a close was queued for it
	inResume                        // a resume= join asks to take it over
	inGraceExpired                  // its hold's grace timer fired
)

// holdAction is what the session does for a transition.
type holdAction int

const (
	actNone     holdAction = iota
	actHold                // detach the outbox, start the grace, hold the member
	actEnd                 // end: the member leaves (v1), the session is forgotten
	actExpire              // the grace ran out: v1's leave, a host's room ends host_timeout
	actTakeOver            // hand the session to the resuming connection
	actRefuse              // the resume is refused: the new connection joins fresh
)

// nextHold returns the state after in, and the action it calls for.
// holdable is whether the session may be held: a joined 1.1 session.
func nextHold(st holdState, in holdInput, holdable bool) (holdState, holdAction) {
	switch st {
	case stOpen:
		switch in {
		case inSocketLost:
			if holdable {
				return stHeld, actHold
			}
			return stEnded, actEnd
		case inClosing:
			return stClosing, actNone
		case inResume:
			if holdable {
				return stMoved, actTakeOver // still open: its socket closes 1000 "resumed"
			}
			return st, actRefuse
		}
	case stClosing:
		switch in {
		case inSocketLost:
			return stEnded, actEnd
		case inResume:
			return st, actRefuse // it is ending: a fresh join
		}
	case stHeld:
		switch in {
		case inResume:
			return stMoved, actTakeOver
		case inGraceExpired:
			return stEnded, actExpire
		case inClosing:
			return stEnded, actEnd // kicked, its room ended, replaced by a fresh join
		}
	case stMoved, stEnded:
		if in == inResume {
			return st, actRefuse
		}
	}
	return st, actNone
}

// step runs one input through nextHold under hmu and returns the action.
func (s *session) step(in holdInput) (holdState, holdAction) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	prev := s.state
	st, act := nextHold(s.state, in, s.holdable())
	s.state = st
	if act == actHold {
		s.holdDone = make(chan struct{})
	}
	return prev, act
}

// heldWait waits until the hold's effects have run (hold), so that what
// ends a hold (a resume, the grace, a kick) never overtakes them.
func (s *session) heldWait() {
	s.hmu.Lock()
	done := s.holdDone
	s.hmu.Unlock()
	if done != nil {
		<-done
	}
}

// holdable reports whether the session may be held: joined as 1.1
// (resumable, or a resume, set it). hmu is held.
func (s *session) holdable() bool { return s.canHold }

// socketLost is called once the session's connection has ended.
func (s *session) socketLost() {
	prev, act := s.step(inSocketLost)
	switch act {
	case actHold:
		s.hold()
	case actEnd:
		s.finish(prev, "ended")
	}
}

// closing notes that a close was queued (kick, room end, leave, a newer
// session, shutdown). A held session ends at once.
func (s *session) closing() {
	if prev, act := s.step(inClosing); act == actEnd {
		s.finish(prev, "ended")
	}
}

// hold keeps the session for the grace: the outbox detached, the grace
// timer started, the member held (its room is told).
func (s *session) hold() {
	s.out.detach()
	grace := s.srv.rooms.ReconnectGrace()
	s.hmu.Lock()
	s.heldAt = time.Now()
	done := s.holdDone
	s.hmu.Unlock()
	s.srv.metrics.Resume.Holds.Inc()
	s.log.Info("session held", "grace", grace)
	s.member.Hold()
	s.hmu.Lock()
	if s.state == stHeld {
		s.grace = time.AfterFunc(grace-time.Since(s.heldAt), s.graceExpired)
	}
	s.hmu.Unlock()
	close(done)
}

// graceExpired ends a held session that was not resumed in time.
func (s *session) graceExpired() {
	prev, act := s.step(inGraceExpired)
	if act != actExpire {
		return
	}
	s.log.Info("held session expired")
	s.forget()
	s.observeHold(prev, "expired")
	s.member.Expire()
	s.out.close()
}

// finish ends the session (the member leaves, as v1's leave does) after
// the transition from prev; outcome labels a hold it ends.
func (s *session) finish(prev holdState, outcome string) {
	s.forget()
	s.observeHold(prev, outcome)
	s.end()
}

// observeHold counts how a hold ended, if prev was a hold.
func (s *session) observeHold(prev holdState, outcome string) {
	if prev != stHeld {
		return
	}
	s.heldWait()
	s.hmu.Lock()
	at := s.heldAt
	s.hmu.Unlock()
	m := s.srv.metrics.Resume
	m.Outcomes.WithLabelValues(outcome).Inc()
	m.HoldSeconds.WithLabelValues(outcome).Observe(time.Since(at).Seconds())
}

// forget stops the session's timers and voids its resume token.
func (s *session) forget() {
	s.hmu.Lock()
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	if s.refresh != nil {
		s.refresh.Stop()
		s.refresh = nil
	}
	tok := s.resumeToken
	s.hmu.Unlock()
	s.srv.resumables.drop(tok, s)
}

// moved reports whether a resume took the session over.
func (s *session) moved() bool {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.state == stMoved
}
