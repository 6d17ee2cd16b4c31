package sfu

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// A writer sends one up track's packets to a group of its DownTracks: the
// reader enqueues a 24-byte item once per group, and one goroutine wake-up
// writes the packet to every subscriber of the group (Galene's
// rtpWriterPool). With one goroutine per subscriber, waking 200 writers
// for every packet cost 13% of the server's CPU at 200 viewers; grouped,
// it is 7 wake-ups.
//
// The price: a subscriber whose write blocks holds up its group. A write
// only blocks when the one UDP socket every subscriber shares is full, and
// then it holds up everyone anyway; nothing in a write sleeps (a transport
// whose SRTP is not ready yet is skipped, see DownTrack.write).
//
// writerTracks is the group size. At ~5-10 µs per write, a group of 32
// takes 160-320 µs per packet: a keyframe burst of 50 packets is through
// in 8-16 ms, and 2 cores are kept busy by a few groups. A var for tests.
var writerTracks = 32

// nackQueueSize bounds the NACKed packets a writer has yet to resend; a
// NACK that does not fit is a miss (the subscriber asks again).
const nackQueueSize = 64

type nackReq struct {
	d     *DownTrack
	seq   uint16
	start bool // not a NACK: d has just become ready (DownTrack.start)
}

// writer is a Sink of its up track, so the reader treats it as any other.
// Its tracks list is copy-on-write, changed under the up track's mu.
//
// Goroutines: run (started by newWriter, stopped by stop; the up track's
// writers WaitGroup tracks it).
type writer struct {
	up    *UpTrack
	queue chan queueItem
	nacks chan nackReq
	done  chan struct{}
	buf   []byte // the packet being written, shared by the writer's tracks

	tracks atomic.Pointer[[]*DownTrack]
	n      int  // len(*tracks), guarded by up.mu
	closed bool // guarded by up.mu

	// Owned by the reader goroutine (WriteRTP).
	dropping bool

	dropQueue prometheus.Counter
}

// newWriter starts a writer for up; the caller holds up.mu.
func newWriter(up *UpTrack) *writer {
	qsize := audioQueueSize
	if up.video {
		qsize = videoQueueSize
	}
	w := &writer{
		up:        up,
		queue:     make(chan queueItem, qsize),
		nacks:     make(chan nackReq, nackQueueSize),
		done:      make(chan struct{}),
		buf:       make([]byte, MaxPacketSize),
		dropQueue: up.m.Drops.WithLabelValues(up.kind.String(), "queue_full"),
	}
	w.tracks.Store(&[]*DownTrack{})
	up.writerWG.Add(1)
	go w.run()
	return w
}

// WriteRTP implements Sink: enqueue, never block. On a full queue, video is
// dropped up to the next keyframe (and one is requested), audio packet by
// packet; the packet that ends the drops is flagged so each subscriber's
// munger continues its outgoing sequence without a gap. Every subscriber
// of the group lost the packet, and each loss is counted.
func (w *writer) WriteRTP(p *Packet) {
	var flags uint8
	if p.Keyframe {
		flags |= flagKeyframe
	}
	if p.Discontinuity {
		flags |= flagResync
	}
	if w.dropping {
		if w.up.video && !p.Keyframe {
			w.dropQueue.Add(float64(len(*w.tracks.Load())))
			return
		}
		flags |= flagResync
	}
	select {
	case w.queue <- queueItem{ext: p.Ext, arrival: p.Arrival, flags: flags}:
		w.dropping = false
	default:
		w.dropQueue.Add(float64(len(*w.tracks.Load())))
		if !w.dropping {
			w.dropping = true
			w.up.RequestKeyframe()
		}
	}
}

// Close implements Sink: the up track ended. Its down tracks stop too.
func (w *writer) Close() {
	for _, d := range *w.tracks.Load() {
		d.closed.Store(true)
	}
	w.up.mu.Lock()
	w.stopLocked()
	w.up.mu.Unlock()
}

// stopLocked ends run; the caller holds up.mu.
func (w *writer) stopLocked() {
	if !w.closed {
		w.closed = true
		close(w.done)
	}
}

// nack queues a retransmission for d, to be sent on this writer, which
// owns d's munger.
func (w *writer) nack(d *DownTrack, seq uint16) bool {
	select {
	case w.nacks <- nackReq{d: d, seq: seq}:
		return true
	default:
		return false
	}
}

// kick has d started on this writer now rather than at the next packet.
// If the queue is full, the next packet starts it.
func (w *writer) kick(d *DownTrack) {
	select {
	case w.nacks <- nackReq{d: d, start: true}:
	default:
	}
}

func (w *writer) run() {
	defer w.up.writerWG.Done()
	for {
		select {
		case it := <-w.queue:
			for _, d := range *w.tracks.Load() {
				d.deliver(it)
			}
			if f := w.up.flush; f != nil && len(w.queue) == 0 {
				f() // the group is written: send the batch now
			}
		case r := <-w.nacks:
			if r.start {
				r.d.start()
			} else {
				r.d.retransmit(r.seq)
			}
		case <-w.done:
			return
		}
	}
}

// addDown puts d on a writer with room, or a new one (a new Sink of the
// track). The caller holds t.mu and has checked that t is not closed.
func (t *UpTrack) addDownLocked(d *DownTrack) {
	var w *writer
	for _, x := range t.writers {
		if x.n < writerTracks {
			w = x
			break
		}
	}
	if w == nil {
		w = newWriter(t)
		t.writers = append(t.writers, w)
		t.addSinkLocked(w)
	}
	old := *w.tracks.Load()
	next := make([]*DownTrack, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, d)
	d.buf = w.buf // before d is visible to the writer (the Store below)
	w.tracks.Store(&next)
	w.n = len(next)
	d.w.Store(w)
}

// removeDown takes d off its writer; a writer left empty stops and leaves
// the sink list.
func (t *UpTrack) removeDown(d *DownTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := d.w.Load()
	if w == nil {
		return
	}
	old := *w.tracks.Load()
	next := make([]*DownTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	if len(next) == len(old) {
		return
	}
	w.tracks.Store(&next)
	w.n = len(next)
	if w.n > 0 {
		return
	}
	for i, x := range t.writers {
		if x == w {
			t.writers = append(t.writers[:i:i], t.writers[i+1:]...)
			break
		}
	}
	t.removeSinkLocked(w)
	w.stopLocked()
}

var _ Sink = (*writer)(nil)
