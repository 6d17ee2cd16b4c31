package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis pub/sub is at-most-once: a message published while a node's
// subscription connection is down (go-redis reconnects and resubscribes
// by itself) is lost for that node. Use it for hints and live events, and
// keep state that must not be lost in keys.

// subscribeWait bounds how long Subscribe waits for Redis to confirm the
// subscription; a healthy Redis confirms in well under a millisecond.
const subscribeWait = 5 * time.Second

// maxQueued bounds the messages waiting for one subscription's fn. A
// subscriber that far behind is stuck; dropping (with a warning) bounds the
// memory at maxQueued times the message size instead of growing forever.
const maxQueued = 10000

// pubsub multiplexes all subscriptions of a Cluster over one Redis
// connection (a subscription per channel would cost a connection each).
type pubsub struct {
	mu     sync.Mutex
	ps     *redis.PubSub // nil until the first Subscribe
	topics map[string]*topic
	closed bool
	done   chan struct{}  // closed by close; made by Open
	reader sync.WaitGroup // the reader goroutine
	subs   sync.WaitGroup // the per-subscription goroutines
}

// topic is one subscribed Redis channel.
type topic struct {
	subs  map[*sub]struct{}
	ready chan struct{} // closed at the first confirmation
}

// sub is one Subscribe call: a queue drained by its own goroutine.
type sub struct {
	mu      sync.Mutex
	queue   [][]byte
	stopped bool
	dropped int
	wake    chan struct{} // cap 1
}

// Publish sends msg to every subscriber of channel on every node
// (including this one). The prefix is applied to the channel name.
func (c *Cluster) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := c.client.Publish(ctx, c.k.channel(channel), msg).Err(); err != nil {
		return fmt.Errorf("cluster: publish %s: %w", channel, err)
	}
	return nil
}

// Subscribe calls fn with every message published to channel from now on,
// on one goroutine for this subscription, in publish order. It returns once
// Redis confirmed the subscription (or after 5s with a logged warning), so
// a Publish that starts after Subscribe returns is delivered. After cancel
// returns fn is not called again, though a call in progress may finish;
// cancel may be called from fn and more than once. After Close, Subscribe
// does nothing.
func (c *Cluster) Subscribe(channel string, fn func(msg []byte)) (cancel func()) {
	full := c.k.channel(channel)
	s := &sub{wake: make(chan struct{}, 1)}
	p := &c.ps
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return func() {}
	}
	if p.ps == nil {
		p.topics = map[string]*topic{}
		p.ps = c.client.Subscribe(context.Background())
		ch := p.ps.ChannelWithSubscriptions()
		p.reader.Add(1)
		go c.read(ch)
	}
	t := p.topics[full]
	if t == nil {
		t = &topic{subs: map[*sub]struct{}{}, ready: make(chan struct{})}
		p.topics[full] = t
	}
	fresh := len(t.subs) == 0
	t.subs[s] = struct{}{}
	if fresh {
		ctx, stop := context.WithTimeout(context.Background(), subscribeWait)
		if err := p.ps.Subscribe(ctx, full); err != nil {
			// go-redis remembers the channel and subscribes on reconnect.
			c.log.Warn("cluster: subscribe", "channel", channel, "err", err)
		}
		stop()
	}
	p.subs.Add(1)
	go s.run(&p.subs, fn)
	p.mu.Unlock()

	select {
	case <-t.ready:
	case <-p.done:
	case <-time.After(subscribeWait):
		c.log.Warn("cluster: subscription not confirmed", "channel", channel, "after", subscribeWait)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.stop()
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.closed || p.topics[full] != t {
				return
			}
			delete(t.subs, s)
			if len(t.subs) == 0 {
				delete(p.topics, full)
				ctx, stop := context.WithTimeout(context.Background(), subscribeWait)
				if err := p.ps.Unsubscribe(ctx, full); err != nil {
					c.log.Warn("cluster: unsubscribe", "channel", channel, "err", err)
				}
				stop()
			}
		})
	}
}

// read is the reader goroutine: it routes messages to the queues of the
// channel's subscriptions and marks confirmed subscriptions ready. It ends
// when Close closes the PubSub, which closes ch.
func (c *Cluster) read(ch <-chan any) {
	p := &c.ps
	defer p.reader.Done()
	for m := range ch {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			p.mu.Lock()
			// Subscribe returns only after this confirmation, so no
			// UNSUBSCRIBE of the channel can be in flight before it (bar
			// the 5s timeout). Reconnects confirm again: close only once.
			if t := p.topics[m.Channel]; t != nil {
				select {
				case <-t.ready:
				default:
					close(t.ready)
				}
			}
			p.mu.Unlock()
		case *redis.Message:
			p.mu.Lock()
			if t := p.topics[m.Channel]; t != nil {
				for s := range t.subs {
					if s.push([]byte(m.Payload)) {
						c.log.Warn("cluster: subscriber too slow, dropping messages",
							"channel", strings.TrimPrefix(m.Channel, c.k.p+"ch:"), "queued", maxQueued)
					}
				}
			}
			p.mu.Unlock()
		}
	}
}

// push queues msg; it reports true at the first drop of a run of drops.
func (s *sub) push(msg []byte) (firstDrop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	if len(s.queue) >= maxQueued {
		s.dropped++
		return s.dropped == 1
	}
	s.dropped = 0
	s.queue = append(s.queue, msg)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return false
}

func (s *sub) stop() {
	s.mu.Lock()
	s.stopped, s.queue = true, nil
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the subscription's goroutine: it calls fn for each queued message
// until stop.
func (s *sub) run(wg *sync.WaitGroup, fn func([]byte)) {
	defer wg.Done()
	for range s.wake {
		for {
			s.mu.Lock()
			if s.stopped {
				s.mu.Unlock()
				return
			}
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			msg := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.mu.Unlock()
			fn(msg)
		}
	}
}

// close ends all subscriptions and waits for their goroutines. A running
// fn is waited for too.
func (p *pubsub) close() {
	p.mu.Lock()
	p.closed = true
	close(p.done)
	ps := p.ps
	for _, t := range p.topics {
		for s := range t.subs {
			s.stop()
		}
	}
	p.topics = nil
	p.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
	}
	p.reader.Wait()
	p.subs.Wait()
}
