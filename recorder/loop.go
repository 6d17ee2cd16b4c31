package recorder

import (
	"errors"
	"os"
	"time"
)

// loopState belongs to the recorder's goroutine.
type loopState struct {
	started bool
	t0      int64     // arrival of the first packet: time 0 of the recording's clock
	live    []*source // sources that have had a packet
	pending pending   // frames waiting for the file to start
	mux     *muxer    // nil until the file starts
	failed  error     // the file could not start: frames are discarded
}

// run is the recorder's goroutine: it owns every source's jitter buffer and
// the muxer, and ends when Close closes stop.
func (r *Recorder) run() {
	defer close(r.done)
	for {
		select {
		case it := <-r.queue:
			r.handle(it)
		case <-r.wake:
			// A track ended. Its reader called Close after its last
			// WriteRTP, so those packets are queued: take them first.
			r.drain()
			for _, s := range r.loop.live {
				if s.ended.Load() && !s.finished {
					s.flush(r.emit)
				}
			}
		case <-r.stop:
			r.drain()
			r.result, r.err = r.finish()
			return
		}
	}
}

// drain handles every packet queued so far.
func (r *Recorder) drain() {
	for {
		select {
		case it := <-r.queue:
			r.handle(it)
		default:
			return
		}
	}
}

func (r *Recorder) handle(it item) {
	l := &r.loop
	if !l.started {
		l.started, l.t0 = true, it.arrival
	}
	s := it.src
	if s.finished {
		return
	}
	if !s.begun {
		s.begun = true
		l.live = append(l.live, s)
	}
	s.push(it.raw, it.arrival, l.t0, r.emit)
}

// emit takes a finished frame: into the file, or the pending buffer until
// the file can start.
func (r *Recorder) emit(f frame) {
	l := &r.loop
	switch {
	case l.mux != nil:
		l.mux.write(f)
	case l.failed != nil:
	default:
		f.slot.ready = true
		l.pending.add(f)
		if l.pending.full() || r.allReady() {
			r.start()
		}
	}
}

// allReady reports whether both kinds have a track with a frame pending.
func (r *Recorder) allReady() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sl := range r.slots {
		if sl == nil || !sl.ready {
			return false
		}
	}
	return true
}

// start writes the file's header with the tracks registered now, then the
// pending frames. From here on Sink refuses new kinds.
func (r *Recorder) start() {
	l := &r.loop
	r.mu.Lock()
	r.frozen = true
	slots := r.slots
	r.mu.Unlock()
	frames := l.pending.take()
	var date time.Time
	if len(frames) > 0 { // the earliest: take sorts them by time
		date = r.wallTime(l.t0).Add(time.Duration(frames[0].ms) * time.Millisecond)
	}
	mux, err := newMuxer(r.file, slots, date)
	if err != nil {
		r.log.Error("recording failed to start", "err", err)
		l.failed = err
		return
	}
	l.mux = mux
	for _, f := range frames {
		mux.write(f)
	}
}

// finish flushes every jitter buffer, finalizes the file and describes it.
func (r *Recorder) finish() (File, error) {
	l := &r.loop
	for _, s := range l.live {
		if !s.finished {
			s.flush(r.emit)
		}
	}
	if l.mux == nil && l.failed == nil && !l.pending.empty() {
		r.start()
	}
	if n := r.dropped.Load(); n > 0 {
		r.log.Warn("recording dropped packets: the recorder could not keep up", "dropped", n)
	}
	if l.failed != nil {
		_ = os.Remove(r.path)
		return File{}, l.failed
	}
	if l.mux == nil {
		err := r.file.Close()
		return File{}, errors.Join(ErrNoMedia, err, os.Remove(r.path))
	}
	err := l.mux.close()
	st, statErr := os.Stat(r.path)
	if statErr != nil {
		return File{}, errors.Join(err, statErr)
	}
	res := File{
		Path:        r.path,
		Size:        st.Size(),
		Duration:    time.Duration(l.mux.last-l.mux.first) * time.Millisecond,
		Tracks:      l.mux.tracks,
		Participant: r.participant,
		StartedAt:   r.wallTime(l.t0).Add(time.Duration(l.mux.first) * time.Millisecond),
	}
	if err != nil {
		r.log.Error("recording ended with an error", "err", err)
	}
	return res, err
}
