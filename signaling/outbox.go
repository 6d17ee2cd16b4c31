package signaling

import (
	"encoding/json"
	"strconv"
	"sync"
)

// outQueue bounds the frames waiting for a slow client. A join into a busy
// room sends one notification per participant; 1024 is far beyond what a
// live client lags by. A client that falls this far behind is closed
// rather than buffered without end: nothing is ever dropped from the
// outbox short of that.
const outQueue = 1024

// replayKeep is how many sequenced notifications a 1.1 session keeps for
// a resume to replay (PROTOCOL.md 1.1 §5: at least 1000). They are the
// frames already sent, kept a while longer: at most 1024 frames of at most
// a few KB each (a chat message is the largest, 2000 characters) per 1.1
// session.
const replayKeep = 1024

// out is one frame to send: a frame ready (data), a notification still to
// be framed (method and params: it gets its seq when it is queued), or the
// close that ends the connection.
type out struct {
	data   []byte
	method string
	params []byte // a JSON object
	close  bool
	code   int
	reason string
}

// outbox is a session's outgoing frames, in the order they were queued,
// waiting for its connection's writer. It is a slice that grows only
// while a burst waits (a buffered channel of outQueue slots would cost
// 8 KB per idle session), and a wake-up for the writer. Safe for
// concurrent use: rooms' events, the reader's answers and the server's
// broadcasts all queue here.
//
// It is also where a 1.1 session's notifications get their seq
// (PROTOCOL.md 1.1 §0): every notification but trickle, numbered from 1
// in the order queued, which is the order sent; and it keeps the last
// replayKeep of them (replay) for resume.
//
// While a join is being served (hold), events (notifications, the
// server's requests and the close an event asks for) wait apart, and are
// queued after the join's result (release): a client learns of its room
// from the join result first, and seq 1 is the first notification after
// it.
type outbox struct {
	wake chan struct{} // capacity 1: there is something to take

	mu        sync.Mutex
	q         []*out // guarded by mu
	spare     []*out // guarded by mu: the writer's last batch, for reuse
	closed    bool   // guarded by mu: the session has ended
	holding   bool   // guarded by mu: a join is being served
	held      []*out // guarded by mu: events waiting for the join's result
	sequenced bool   // guarded by mu: a 1.1 session (notifications get a seq)
	seq       uint64 // guarded by mu: the last seq given
	replay    replay // guarded by mu
	// Resume (resume.go, hold.go). detached: no connection writes the
	// outbox (a held session): notifications are sequenced and kept for
	// the replay only, other frames dropped. forward: a resume took the
	// session over; what is pushed here goes there (a close aside).
	// prefix: frames queued at release before the held events (a resumed
	// session's replay and subscriber offer).
	detached bool    // guarded by mu
	forward  *outbox // guarded by mu
	prefix   []*out  // guarded by mu
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

// push queues m for the writer; false when outQueue frames are already
// waiting. An event (event true) waits while a join is served. Once closed
// it takes nothing (the session has ended, nothing will be sent, and that
// is no fault).
func (o *outbox) push(m *out, event bool) bool {
	o.mu.Lock()
	if fw := o.forward; fw != nil && !m.close {
		o.mu.Unlock()
		if m.method == "" {
			// A response or request of the old connection: it is gone,
			// and a resume's offer replaces any offer of it.
			return true
		}
		return fw.push(m, event)
	}
	if o.closed {
		o.mu.Unlock()
		return true
	}
	if len(o.q)+len(o.held) >= outQueue {
		o.mu.Unlock()
		return false
	}
	if event && o.holding {
		o.held = append(o.held, m)
		o.mu.Unlock()
		return true
	}
	o.queueLocked(m)
	o.mu.Unlock()
	o.wakeWriter()
	return true
}

// queueLocked frames a notification (with its seq in a 1.1 session) and
// queues m.
func (o *outbox) queueLocked(m *out) {
	if m.method != "" {
		var seq uint64
		if o.sequenced && m.method != "trickle" {
			o.seq++
			seq = o.seq
		}
		m.data = frameNotification(m.method, m.params, seq)
		m.method, m.params = "", nil
		if seq != 0 {
			o.replay.put(seq, m.data)
		}
	}
	if o.detached {
		return // kept for the replay (a notification), or dropped
	}
	o.q = append(o.q, m)
}

func (o *outbox) wakeWriter() {
	select {
	case o.wake <- struct{}{}:
	default: // the writer is already woken
	}
}

// hold makes events wait until release: a join is being served.
func (o *outbox) hold() {
	o.mu.Lock()
	o.holding = true
	o.mu.Unlock()
}

// release queues the events held since hold, after what is queued already
// (the join's answer), and lets events through from now on. sequenced
// says whether the session is 1.1 (its notifications get a seq from now
// on; a session's version never changes once it has joined).
func (o *outbox) release(sequenced bool) {
	o.mu.Lock()
	o.holding = false
	o.sequenced = sequenced
	held := o.held
	o.held = nil
	if !o.closed {
		o.q = append(o.q, o.prefix...)
		o.prefix = nil
		for _, m := range held {
			o.queueLocked(m)
		}
	}
	o.mu.Unlock()
	o.wakeWriter()
}

// lastSeq returns the last seq given (0 before the first).
func (o *outbox) lastSeq() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seq
}

// since returns the frames of the sequenced notifications after seq
// after, in order, and whether some of them are no longer kept (gap). A
// resume (issue 19) replays them.
func (o *outbox) since(after uint64) (frames [][]byte, gap bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.replay.since(after, o.seq)
}

// take hands the writer everything queued so far, in order.
func (o *outbox) take() []*out {
	o.mu.Lock()
	defer o.mu.Unlock()
	batch := o.q
	o.q, o.spare = o.spare[:0], nil
	return batch
}

// recycle keeps a written batch's array for the next one, unless a burst
// made it big: an idle session holds no more than a few slots.
func (o *outbox) recycle(batch []*out) {
	if cap(batch) > 16 {
		return
	}
	clear(batch)
	o.mu.Lock()
	if o.spare == nil {
		o.spare = batch[:0]
	}
	o.mu.Unlock()
}

// close refuses what comes next and drops what waits.
func (o *outbox) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.q, o.spare, o.held = nil, nil, nil
}

// replay keeps the frames of the last replayKeep sequenced notifications,
// in a ring that grows to replayKeep entries as they come: seq's frame is
// at (seq-1) % replayKeep (seqs start at 1 and come one after the other).
type replay struct {
	frames [][]byte
	first  uint64 // the seq of the oldest kept (0: none)
}

// put keeps frame, the notification seq.
func (r *replay) put(seq uint64, frame []byte) {
	if r.first == 0 {
		r.first = seq
	}
	if len(r.frames) < replayKeep {
		r.frames = append(r.frames, frame)
		return
	}
	r.frames[(seq-1)%replayKeep] = frame
	r.first = seq - replayKeep + 1
}

// since returns the kept frames with a seq in (after, last], last being
// the newest, and whether some of that range is no longer kept.
func (r *replay) since(after, last uint64) ([][]byte, bool) {
	if after >= last || r.first == 0 {
		return nil, false
	}
	from, gap := after+1, false
	if from < r.first {
		from, gap = r.first, true
	}
	out := make([][]byte, 0, last-from+1)
	for s := from; s <= last; s++ {
		out = append(out, r.frames[(s-1)%replayKeep])
	}
	return out, gap
}

// frameNotification frames a notification: params (a JSON object) with
// "seq" added when seq is not 0. The frame is what encodeNotification
// makes of the same params, seq aside.
func frameNotification(method string, params []byte, seq uint64) []byte {
	m, _ := json.Marshal(method)
	if len(params) < 2 || params[0] != '{' {
		params = []byte("{}")
	}
	b := make([]byte, 0, len(params)+len(m)+48)
	b = append(b, `{"jsonrpc":"2.0","method":`...)
	b = append(b, m...)
	b = append(b, `,"params":`...)
	if seq == 0 {
		b = append(b, params...)
		return append(b, '}')
	}
	body := params[:len(params)-1] // without its closing brace
	b = append(b, body...)
	if len(body) > 1 { // not {}: a comma before seq
		b = append(b, ',')
	}
	b = append(b, `"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}', '}')
}
