package signaling

// Resume (PROTOCOL.md 1.1 §5): a client opens /v1/ws?token=T&resume=R
// and joins {version:"1.1", lastSeq:N}. When R is the resume token of
// that identity's held (or still open) session in that room, the new
// connection's session takes it over (nextHold: actTakeOver):
//   - the old socket, if still open, closes 1000 "resumed";
//   - its member, sessionId, seq and replay move to the new session;
//   - the result says resumed:true, seq (the last sent), gap, a new
//     resumeToken (R is void), fresh iceServers and the current state;
//   - then, in this order: the notifications with seq in (N, seq], a
//     subscriber offer restarting ICE (if there is a subscriber PC), then
//     whatever comes next.
// N past seq gets -32602 and changes nothing (the session stays held).
// Any other R (unknown, used, expired, another's) gives a fresh join,
// resumed:false.

import (
	"sync"
	"time"
)

// resumables are the sessions a resume token can take over: every joined
// 1.1 session, until it ends or is taken over. Safe for concurrent use.
type resumables struct {
	mu sync.Mutex
	by map[string]*session // guarded by mu: resume token -> session
}

func newResumables() *resumables { return &resumables{by: map[string]*session{}} }

// put registers s under tok.
func (r *resumables) put(tok string, s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.by[tok] = s
}

// get returns the session of tok, or nil.
func (r *resumables) get(tok string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.by[tok]
}

// drop voids tok if it is still s's.
func (r *resumables) drop(tok string, s *session) {
	if tok == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by[tok] == s {
		delete(r.by, tok)
	}
}

// held returns the sessions registered now (for shutdown).
func (r *resumables) all() []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*session, 0, len(r.by))
	for _, s := range r.by {
		out = append(out, s)
	}
	return out
}

// resumable makes a freshly joined 1.1 session resumable: its sessionId
// and first resume token, registered; the join result's resume fields.
func (s *session) resumable() *resumeFields {
	s.hmu.Lock()
	s.canHold = true
	s.sessionID = newSessionID()
	s.resumeToken = newResumeToken()
	f := &resumeFields{SessionID: s.sessionID, ResumeToken: s.resumeToken}
	s.hmu.Unlock()
	s.srv.resumables.put(f.ResumeToken, s)
	return f
}

// resumeJoin serves a 1.1 join on a resume= socket. done false: R
// resumes nothing, and the caller serves a fresh join. Otherwise the
// result (or -32602 for a lastSeq past the session's seq).
func (s *session) resumeJoin(c *Claims, version string, lastSeq *int64) (res any, perr *Error, done bool) {
	outcomes := s.srv.metrics.Resume.Outcomes
	old := s.srv.resumables.get(s.resumeWith)
	if old == nil || old == s || old.claims.Identity() != c.Identity() || old.claims.Room != c.Room {
		outcomes.WithLabelValues("refused").Inc()
		return nil, nil, false
	}
	var n uint64
	if lastSeq != nil {
		n = uint64(*lastSeq)
	}
	if last := old.out.lastSeq(); n > last {
		outcomes.WithLabelValues("bad_seq").Inc()
		return nil, Errorf(CodeInvalidParams, "invalid params: lastSeq %d is past the session's last seq %d", n, last), true
	}
	prev, act := old.step(inResume)
	if act != actTakeOver {
		outcomes.WithLabelValues("refused").Inc()
		return nil, nil, false
	}
	// The session is ours from here: nothing of old touches its member
	// again (its socket's loss does nothing in stMoved).
	old.forget()
	old.observeHold(prev, "resumed")
	if prev != stHeld {
		outcomes.WithLabelValues("resumed").Inc() // observeHold counted a hold's
	}
	frames, last, gap := old.out.handOver(s.out, n)
	m := old.member
	m.Rebind(s)
	s.member, s.joined, s.user, s.version = m, true, old.user, version
	if prev == stOpen {
		old.closeResumed()
	}
	j, err := m.State()
	if err != nil {
		// Its room ended as we took it: nothing to resume into.
		s.joined, s.member = false, nil
		m.Close()
		return nil, toError(err), true
	}
	for _, f := range frames {
		s.out.addPrefix(&out{data: f})
	}
	if p := m.Participant(); p != nil {
		// The subscriber offers the sfu delivers meanwhile are taken
		// apart; the last is the restart's (RestartSubscriberICE returns
		// once it is delivered) and goes right after the replay. Older
		// ones (made before the hold, never answered) are dropped.
		s.mu.Lock()
		s.capturing = true
		s.mu.Unlock()
		if err := p.RestartSubscriberICE(); err != nil {
			s.log.Warn("resume: restarting the subscriber's ICE", "err", err)
		}
		s.mu.Lock()
		sdp := s.captured
		s.capturing, s.captured = false, ""
		s.mu.Unlock()
		if sdp != "" {
			s.prefixRequest("offer", map[string]string{"sdp": sdp})
		}
	}
	m.Resumed()
	// A held host's room was waiting_reconnect; the resume has put its
	// earlier status back: the result shows the room as it is now (the
	// room.updated saying so follows, seq+1).
	if now, err := m.State(); err == nil {
		j.Room = now.Room
	}
	s.hmu.Lock()
	s.canHold = true
	s.sessionID = old.sessionID
	s.resumeToken = newResumeToken()
	f := &resumeFields{SessionID: s.sessionID, ResumeToken: s.resumeToken, Resumed: true, Seq: last, Gap: gap}
	s.hmu.Unlock()
	s.srv.resumables.put(f.ResumeToken, s)
	s.log.Info("session resumed", "lastSeq", n, "seq", last, "gap", gap, "was", map[holdState]string{stOpen: "open", stHeld: "held"}[prev])
	s.srv.metrics.JoinLatency.Observe(time.Since(s.conn.started).Seconds())
	return joinResult{
		Participant: j.Participant, Room: j.Room, Participants: j.Participants, Tracks: j.Tracks,
		Version: version, ICEServers: s.srv.iceServers(c), resumeFields: f,
	}, nil, true
}

// closeResumed closes the socket of a session a resume took over while it
// was still open: 1000 "resumed", after what it has queued.
func (s *session) closeResumed() {
	s.conn.slot.release()
	if !s.out.push(&out{close: true, code: 1000, reason: "resumed"}, true) {
		s.conn.abort()
	}
}

// prefixRequest queues a server request to go out right after the
// resumed session's replay (the subscriber offer), before the events held
// during the join.
func (s *session) prefixRequest(method string, params any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := "s" + itoa(s.nextID)
	s.pending[id] = method
	if method == "offer" {
		s.lastOffer = id
	}
	s.out.addPrefix(&out{data: encodeRequest(id, method, params)})
}

// detach: no connection writes the outbox any more (a held session):
// what waits is dropped, notifications are sequenced and kept for the
// replay only.
func (o *outbox) detach() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.detached = true
	o.q, o.spare = nil, nil
}

// addPrefix queues m to go out at release, before the events held during
// the join.
func (o *outbox) addPrefix(m *out) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.prefix = append(o.prefix, m)
}

// handOver gives the session's numbering to to (the resuming session's
// outbox, holding its events while the join is served): to continues the
// seq and keeps the replay, and what is pushed here from now on goes
// there. It returns the kept frames with seq in (after, last], last (the
// last seq given here) and whether some of that range is no longer kept.
func (o *outbox) handOver(to *outbox, after uint64) (frames [][]byte, last uint64, gap bool) {
	o.mu.Lock()
	frames, gap = o.replay.since(after, o.seq)
	last = o.seq
	rp := o.replay
	o.replay = replay{}
	o.forward = to
	o.mu.Unlock()
	to.mu.Lock()
	to.seq, to.replay = last, rp
	to.mu.Unlock()
	return frames, last, gap
}

// captureOffer takes a subscriber offer delivered while a resume is
// served (see resumeJoin); false: not capturing, send it as usual.
func (s *session) captureOffer(sdp string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.capturing {
		return false
	}
	s.captured = sdp
	return true
}
