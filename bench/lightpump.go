package bench

// The light viewers' pump: once a light viewer has its first frame, its
// socket is no longer read by its own goroutine (pion ice's read loop of
// the candidate, which slept lightReadDelay between reads) but by one
// goroutine for every light viewer of the run, which every lightReadDelay
// drains each socket with non-blocking recvmmsg(2) calls, counts the
// media and hands the rest (STUN, DTLS, SRTCP) to the viewer's read loop.
//
// Why: with a goroutine per socket the bench woke 50 goroutines a second
// per viewer (10,000 a second at 200 viewers), each a timer, a scheduler
// round and a netpoll; a CPU profile of the bench at 200 light viewers put
// 40% of its time in the scheduler and netpoll against 20% in the system
// calls that read the packets (BENCHMARKS.md, issue 20). The pump wakes
// once every lightReadDelay in all, and each recvmmsg returns more.
//
// A viewer's read loop (lightConn.ReadFromAddrPort) hands its socket over
// itself, between two reads, so no datagram is read twice or by two
// readers; from then on it waits on its inbox. A closed socket ends the
// viewer's part: the pump closes its inbox with the socket's error, which
// the read loop returns.

import (
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// inboxSize bounds the non-media datagrams waiting for a viewer's read
// loop: a few a second (ICE keepalives, sender reports) and, at most, a
// round's worth; a full inbox drops, as a full socket buffer would.
const inboxSize = 64

// datagram is a non-media datagram handed to a viewer's read loop.
type datagram struct {
	b    []byte
	from netip.AddrPort
}

// lightPump reads the sockets of the light viewers that have their first
// frame, and ticks their loops (resolving SSRCs, sending NACKs: what a
// goroutine per viewer did every nackInterval, 2,000 wake-ups a second at
// 200 viewers). Goroutines: run (started by newLightPump, ended by stop).
type lightPump struct {
	mu       sync.Mutex
	conns    map[*lightConn]bool    // guarded by mu
	counters map[*lightCounter]bool // guarded by mu: ticked every nackInterval
	rounds   int                    // guarded by mu

	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
}

func newLightPump() *lightPump {
	p := &lightPump{conns: map[*lightConn]bool{}, counters: map[*lightCounter]bool{}, quit: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// add takes over c's socket (its read loop calls it, between reads).
func (p *lightPump) add(c *lightConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.quit:
		c.end(errors.New("light pump stopped"))
	default:
		p.conns[c] = true
	}
}

// addCounter has c's loop ticked every nackInterval from now on;
// removeCounter stops it (a round in progress ends first).
func (p *lightPump) addCounter(c *lightCounter) {
	p.mu.Lock()
	p.counters[c] = true
	p.mu.Unlock()
}

func (p *lightPump) removeCounter(c *lightCounter) {
	p.mu.Lock()
	delete(p.counters, c)
	p.mu.Unlock()
}

// stop ends the pump, and the part of the viewers it still reads.
// Idempotent.
func (p *lightPump) stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	<-p.done
}

func (p *lightPump) run() {
	defer close(p.done)
	t := time.NewTicker(lightReadDelay)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			p.mu.Lock()
			for c := range p.conns {
				c.end(errors.New("light pump stopped"))
				delete(p.conns, c)
			}
			p.mu.Unlock()
			return
		case <-t.C:
		}
		p.mu.Lock()
		for c := range p.conns {
			if !c.drain() {
				delete(p.conns, c)
			}
		}
		p.rounds++
		if p.rounds%int(nackInterval/lightReadDelay) == 0 {
			for c := range p.counters {
				c.tick()
			}
		}
		p.mu.Unlock()
	}
}

// drain reads what c's socket holds, without waiting: media is counted,
// the rest goes to the inbox. false: the socket failed (closed) and c's
// part is over.
func (c *lightConn) drain() bool {
	for {
		n, err := c.readNow()
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
				return true
			}
			c.end(err)
			return false
		}
		c.countMedia(n)
		for i := 0; i < n; i++ {
			m := &c.r.msgs[i]
			if b := m.Buffers[0][:m.N]; !isMedia(b) {
				select {
				case c.inbox <- datagram{b: append([]byte(nil), b...), from: senderOf(m)}:
				default:
				}
			}
		}
		if n < len(c.r.msgs) {
			return true
		}
	}
}

// readNow reads a batch from c's socket without waiting (EAGAIN: none).
func (c *lightConn) readNow() (int, error) {
	if d := c.det.Load(); d != nil {
		return d.readBatch(c.r, c.raw)
	}
	return c.r.pc.ReadBatch(c.r.msgs, syscall.MSG_DONTWAIT)
}

// end closes c's inbox with err, which its read loop returns from then
// on. Called once, by the pump.
func (c *lightConn) end(err error) {
	c.perr = err
	close(c.inbox)
}
