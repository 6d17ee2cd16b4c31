package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Dispatcher is the outbox and its delivery. Its methods are safe for
// concurrent use.
//
// Lifecycle: Open; Emit from anywhere; Run in one goroutine until its
// context ends; Close (which also stops a Run still going).
type Dispatcher struct {
	cfg   Config
	log   *slog.Logger
	store outbox

	mu    sync.Mutex
	dirty map[string]struct{} // rooms with events the running scheduler has not seen

	signal chan struct{} // capacity 1: dirty has rooms

	runMu   sync.Mutex
	running bool
	cancel  context.CancelFunc // of the running Run
	runDone chan struct{}      // closed when that Run has returned
	closed  bool
}

// Open opens the outbox in c.Dir, or in c.Redis when set. Undelivered
// events of a URL no longer in c.URLs are dropped (logged); a new URL
// receives events emitted from now on.
func Open(c Config) (*Dispatcher, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	var st outbox
	var dropped int
	if c.Redis != nil {
		st, dropped, err = openRedis(c.Redis, c.RedisPrefix, c.URLs, c.LeaseTTL)
	} else {
		st, dropped, err = openStore(c.Dir, c.URLs)
	}
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg:    c,
		log:    c.Logger,
		store:  st,
		dirty:  map[string]struct{}{},
		signal: make(chan struct{}, 1),
	}
	if dropped > 0 {
		d.log.Warn("webhooks: dropped undelivered events of URLs no longer configured", "deliveries", dropped)
	}
	return d, nil
}

// Emit persists the event in the outbox (fsync'd) before returning;
// delivery happens later, in Run. typ is one of the Type constants; room
// may be empty (such events form their own lane); data is marshalled to
// JSON (nil is {}). With no URL configured nothing is stored.
func (d *Dispatcher) Emit(typ, room string, data any) (Event, error) {
	if !knownTypes[typ] {
		return Event{}, fmt.Errorf("webhooks: unknown event type %q", typ)
	}
	raw := json.RawMessage("{}")
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return Event{}, fmt.Errorf("webhooks: %s data: %w", typ, err)
		}
		raw = b
	}
	ev := Event{ID: newEventID(), Type: typ, Room: room, At: d.cfg.Now().UTC(), Data: raw}
	if len(d.cfg.URLs) == 0 {
		return ev, nil
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return Event{}, fmt.Errorf("webhooks: %w", err)
	}
	if err := d.store.add(room, body, d.cfg.URLs); err != nil {
		return Event{}, fmt.Errorf("webhooks: store %s: %w", typ, err)
	}
	d.mu.Lock()
	d.dirty[room] = struct{}{}
	d.mu.Unlock()
	select {
	case d.signal <- struct{}{}:
	default: // a wake-up is pending already
	}
	return ev, nil
}

// takeDirty returns the rooms with new events since the last call.
func (d *Dispatcher) takeDirty() map[string]struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	rooms := d.dirty
	d.dirty = map[string]struct{}{}
	return rooms
}

// Pending returns the number of deliveries still to make: events times the
// URLs that have not acknowledged them.
func (d *Dispatcher) Pending() (int, error) { return d.store.pending() }

// Run delivers until ctx is done: per destination URL and per room,
// strictly in order (an event waits until the previous one of the same room
// was delivered to that URL), retrying with exponential backoff; events of
// different rooms don't block each other. 2xx = delivered (removed from the
// outbox for that URL); anything else or a network error = retry. It
// returns when ctx is done or Close is called, after its workers have
// stopped. Only one Run runs at a time: a second call returns at once.
func (d *Dispatcher) Run(ctx context.Context) {
	d.runMu.Lock()
	if d.closed || d.running {
		d.runMu.Unlock()
		if !d.closed {
			d.log.Error("webhooks: Run called while already running")
		}
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	d.running, d.cancel, d.runDone = true, cancel, done
	d.runMu.Unlock()

	defer func() {
		cancel()
		d.runMu.Lock()
		d.running = false
		d.runMu.Unlock()
		close(done)
	}()
	newScheduler(d).run(ctx)
}

// Close stops a running Run (in-flight requests are abandoned and retried
// after the next Open) and closes the outbox. Emit fails after Close.
func (d *Dispatcher) Close() error {
	d.runMu.Lock()
	if d.closed {
		d.runMu.Unlock()
		return errors.New("webhooks: already closed")
	}
	d.closed = true
	running, cancel, done := d.running, d.cancel, d.runDone
	d.runMu.Unlock()
	if running {
		cancel()
		<-done
	}
	return d.store.close()
}
