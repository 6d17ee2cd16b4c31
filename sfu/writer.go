package sfu

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// A writer sends one up track's packets to a group of its DownTracks: the
// reader enqueues a 24-byte item once per group, and one goroutine wake-up
// reads the packet out of the cache and parses it once, then hands it to
// every subscriber of the group (Galene's rtpWriterPool). With one
// goroutine per subscriber, waking 200 writers for every packet cost 13% of
// the server's CPU at 200 viewers; grouped, it is 7 wake-ups, and 7 reads
// of the packet instead of 200.
//
// The price: a subscriber whose write blocks holds up its group. A write
// only blocks when the one UDP socket every subscriber shares is full, and
// then it holds up everyone anyway; nothing in a write sleeps (a transport
// whose SRTP is not ready yet is skipped, see DownTrack.write).
//
// writerTracks is the group size. At ~5-10 µs per write, a group of 32
// takes 160-320 µs per packet: a keyframe burst of 50 packets is through
// in 8-16 ms, and 2 cores are kept busy by a few groups. A var for tests.
//
// The pool of writers is the up track's own: UpTrack.AddDownTrack puts a
// down track on a writer with room (or a new one, which becomes a Sink of
// the track), RemoveDownTrack takes it off (an empty writer stops).
var writerTracks = 32

// nackQueueSize bounds the NACKed packets a writer has yet to resend; a
// NACK that does not fit is a miss (the subscriber asks again).
const nackQueueSize = 64

// groupMember is what a writer writes to: one subscriber's rewriting of
// the track (DownTrack is the one kind). Every method is called on the
// writer's goroutine, which owns the member's munger; the packets passed
// in are the writer's and valid only during the call.
type groupMember interface {
	// deliver sends the group's packet p, queued as it, read and parsed
	// once for the whole group. aux is the writer's buffer for what this
	// member reads on its own (the cached keyframe it starts from).
	deliver(it queueItem, p, aux *cachedPacket)
	// start runs when the member becomes ready (writer.kick): it may
	// send the cached keyframe at once, reading it into aux.
	start(aux *cachedPacket)
	// wants reports whether the member would send the queued packet it
	// (asked only of a simulcast track's members, before the packet is
	// read: a layer nobody in the group forwards is never read).
	wants(it queueItem) bool
	// retransmit answers a NACK for outgoing sequence number seq,
	// reading the packet into aux.
	retransmit(seq uint16, aux *cachedPacket)
	// pad sends n padding-only packets to probe the subscriber's
	// downlink (probe.go), reading nothing (buf is scratch space).
	pad(n int, buf *cachedPacket)
	// upEnded tells the member that its up track ended: nothing more is
	// written. It is called from the goroutine that ends the track.
	upEnded()
}

type nackReq struct {
	m     groupMember
	seq   uint16
	start bool // not a NACK: m has just become ready (kick)
	pad   int  // not a NACK: send this many padding packets (probe)
}

// writer is a Sink of its up track, so the reader treats it as any other.
// Its member list is copy-on-write, changed under the up track's mu.
//
// Goroutines: run (started by newWriter, stopped by stop; the up track's
// writerWG tracks it).
type writer struct {
	up    *UpTrack
	queue chan queueItem
	nacks chan nackReq
	done  chan struct{}

	members atomic.Pointer[[]groupMember]
	n       int  // len(*members), guarded by up.mu
	closed  bool // guarded by up.mu

	// Owned by run: the group's packet, read once per queued item, and
	// the buffer for a member's own reads (replay, NACK).
	cur, aux cachedPacket
	reads    int // packets read for the group; tests look after run ended

	// Owned by each layer's reader goroutine (WriteRTP), by slot.
	dropping [MaxLayers]bool

	dropQueue prometheus.Counter
}

// newWriter starts a writer for up; the caller holds up.mu.
func newWriter(up *UpTrack) *writer {
	w := newIdleWriter(up)
	up.writerWG.Add(1)
	go w.run()
	return w
}

// newIdleWriter makes a writer whose goroutine is not started (tests
// drive it with writeItem).
func newIdleWriter(up *UpTrack) *writer {
	qsize := audioQueueSize
	if up.video {
		qsize = videoQueueSize
	}
	w := &writer{
		up:        up,
		queue:     make(chan queueItem, qsize),
		nacks:     make(chan nackReq, nackQueueSize),
		done:      make(chan struct{}),
		cur:       newCachedPacket(),
		aux:       newCachedPacket(),
		dropQueue: up.m.Drops.WithLabelValues(up.kind.String(), "queue_full"),
	}
	w.members.Store(&[]groupMember{})
	return w
}

// itemOf is the queue item of p; resync marks the first packet after
// deliberate drops.
func itemOf(p *Packet, resync bool) queueItem {
	var flags uint8
	if p.Keyframe {
		flags |= flagKeyframe
	}
	if p.Discontinuity || resync {
		flags |= flagResync
	}
	return queueItem{ext: p.Ext, arrival: p.Arrival, flags: flags, layer: p.Layer}
}

// WriteRTP implements Sink: enqueue, never block. On a full queue, video is
// dropped up to the next keyframe (and one is requested), audio packet by
// packet; the packet that ends the drops is flagged so each subscriber's
// munger continues its outgoing sequence without a gap. Every subscriber
// of the group lost the packet, and each loss is counted.
func (w *writer) WriteRTP(p *Packet) {
	dropping := &w.dropping[p.Layer%MaxLayers]
	if *dropping && w.up.video && !p.Keyframe {
		w.dropQueue.Add(float64(len(*w.members.Load())))
		return
	}
	select {
	case w.queue <- itemOf(p, *dropping):
		*dropping = false
	default:
		w.dropQueue.Add(float64(len(*w.members.Load())))
		if !*dropping {
			*dropping = true
			w.up.RequestLayerKeyframe(int(p.Layer))
		}
	}
}

// Close implements Sink: the up track ended. Its down tracks stop too.
func (w *writer) Close() {
	for _, m := range *w.members.Load() {
		m.upEnded()
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

// addLocked adds m to the group; the caller holds up.mu.
func (w *writer) addLocked(m groupMember) {
	old := *w.members.Load()
	next := make([]groupMember, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, m)
	w.members.Store(&next)
	w.n = len(next)
}

// removeLocked takes m out of the group and reports whether it was in;
// the caller holds up.mu.
func (w *writer) removeLocked(m groupMember) bool {
	old := *w.members.Load()
	next := make([]groupMember, 0, len(old))
	for _, x := range old {
		if x != m {
			next = append(next, x)
		}
	}
	if len(next) == len(old) {
		return false
	}
	w.members.Store(&next)
	w.n = len(next)
	return true
}

// nack queues a retransmission for m, to be sent on this writer, which
// owns m's munger.
func (w *writer) nack(m groupMember, seq uint16) bool {
	select {
	case w.nacks <- nackReq{m: m, seq: seq}:
		return true
	default:
		return false
	}
}

// padFor queues n padding packets for m; a full queue drops them (the
// next probe tick asks again).
func (w *writer) padFor(m groupMember, n int) {
	select {
	case w.nacks <- nackReq{m: m, pad: n}:
	default:
	}
}

// kick has m started on this writer now rather than at the next packet.
// If the queue is full, the next packet starts it.
func (w *writer) kick(m groupMember) {
	select {
	case w.nacks <- nackReq{m: m, start: true}:
	default:
	}
}

func (w *writer) run() {
	defer w.up.writerWG.Done()
	for {
		select {
		case it := <-w.queue:
			w.writeItem(it)
			if f := w.up.flush; f != nil && len(w.queue) == 0 {
				f() // the group is written: send the batch now
			}
		case r := <-w.nacks:
			switch {
			case r.start:
				r.m.start(&w.aux)
			case r.pad > 0:
				r.m.pad(r.pad, &w.aux)
			default:
				r.m.retransmit(r.seq, &w.aux)
			}
		case <-w.done:
			return
		}
	}
}

// writeItem reads the queued packet out of the cache and parses it, once,
// and hands it to every member of the group.
func (w *writer) writeItem(it queueItem) {
	members := *w.members.Load()
	if len(w.up.layers) > 1 && !w.wanted(it, members) {
		return
	}
	w.reads++
	w.cur.read(w.up.layers[it.layer].cache, it.ext)
	for _, m := range members {
		m.deliver(it, &w.cur, &w.aux)
	}
}

// wanted reports whether a member of the group sends packet it.
func (w *writer) wanted(it queueItem, members []groupMember) bool {
	for _, m := range members {
		if m.wants(it) {
			return true
		}
	}
	return false
}

// AddDownTrack subscribes d to the track: it joins a writer with room, or a
// new one (a new Sink of the track). It returns false when the track has
// ended (d is not added; the caller closes it).
func (t *UpTrack) AddDownTrack(d *DownTrack) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
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
	d.setWriter(w) // before d is visible to the writer: a kick finds it
	w.addLocked(d)
	return true
}

// RemoveDownTrack takes d off its writer (DownTrack.Close does); a writer
// left empty stops and leaves the sink list.
func (t *UpTrack) RemoveDownTrack(d *DownTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := d.writer()
	if w == nil || !w.removeLocked(d) || w.n > 0 {
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

var (
	_ Sink        = (*writer)(nil)
	_ groupMember = (*DownTrack)(nil)
)
