package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// runDispatcher runs d until the returned stop is called.
func runDispatcher(d *Dispatcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}

// emitN emits n events alternating between rooms.
func emitN(t *testing.T, d *Dispatcher, n int, rooms ...string) []Event {
	t.Helper()
	var out []Event
	for i := range n {
		room := rooms[i%len(rooms)]
		ev, err := d.Emit(TypeParticipantJoined, room, map[string]any{"identity": fmt.Sprintf("user%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func waitPending(t *testing.T, d *Dispatcher, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := d.Pending()
		if err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pending = %d, want %d", n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRetriesUntilDelivered: a receiver failing its first 3 requests still
// gets every event, in order per room, signed.
func TestRetriesUntilDelivered(t *testing.T) {
	eachOutbox(t, func(t *testing.T, k outboxKind) {
		rcv := newReceiver(t, func(n int, _ Event) int {
			if n < 3 {
				return http.StatusInternalServerError
			}
			return http.StatusNoContent
		})
		d, err := Open(k.at(t)(rcv.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		stop := runDispatcher(d)
		defer stop()
		emitted := emitN(t, d, 12, "roomA", "roomB", "")
		rcv.waitDelivered(emitted)
		rcv.checkOrder(emitted)
		waitPending(t, d, 0)
		if n := len(rcv.attempts()); n < len(emitted)+3 {
			t.Errorf("%d attempts, want at least %d (3 failures)", n, len(emitted)+3)
		}
		// The payload as emitted.
		a := rcv.attempts()[len(rcv.attempts())-1]
		var data map[string]string
		if err := json.Unmarshal(a.ev.Data, &data); err != nil || data["identity"] == "" || a.ev.At.IsZero() {
			t.Errorf("event %+v", a.ev)
		}
	})
}

// TestRestartLosesNothing: events emitted while the receiver is down
// survive stopping the dispatcher and closing the store; after reopening
// the same directory every event arrives, in order per room.
func TestRestartLosesNothing(t *testing.T) {
	eachOutbox(t, func(t *testing.T, k outboxKind) {
		var mu sync.Mutex
		up := false
		rcv := newReceiver(t, func(n int, _ Event) int {
			mu.Lock()
			defer mu.Unlock()
			// Phase 1 acknowledges the first 2 requests, then is down.
			if up || n < 2 {
				return http.StatusOK
			}
			return http.StatusServiceUnavailable
		})
		cfg := k.at(t)
		d, err := Open(cfg(rcv.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		stop := runDispatcher(d)
		emitted := emitN(t, d, 20, "roomA", "roomB")
		// Let it fail a few times, then stop it all.
		deadline := time.Now().Add(5 * time.Second)
		for len(rcv.attempts()) < 8 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		stop()
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		before, _ := rcv.delivered()
		if len(before) >= len(emitted) {
			t.Fatalf("everything was delivered before the restart (%d)", len(before))
		}
		// Emitting after Close fails: the store is closed.
		if _, err := d.Emit(TypeRoomEnded, "roomA", nil); err == nil {
			t.Error("Emit after Close succeeded")
		}

		mu.Lock()
		up = true
		mu.Unlock()
		d2, err := Open(cfg(rcv.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		defer d2.Close()
		if n, _ := d2.Pending(); n != len(emitted)-len(before) {
			t.Errorf("after reopening, Pending = %d, want %d", n, len(emitted)-len(before))
		}
		stop2 := runDispatcher(d2)
		defer stop2()
		rcv.waitDelivered(emitted)
		rcv.checkOrder(emitted)
		waitPending(t, d2, 0)
		_, dups := rcv.delivered()
		t.Logf("%d delivered before the restart, %d attempts in all, %d duplicates", len(before), len(rcv.attempts()), dups)
	})
}

// TestRoomsDoNotWaitForEachOther: while every event of room B fails, room
// A's events are delivered; B's arrive in order once its receiver recovers.
func TestRoomsDoNotWaitForEachOther(t *testing.T) {
	eachOutbox(t, func(t *testing.T, k outboxKind) {
		var mu sync.Mutex
		bDown := true
		rcv := newReceiver(t, func(_ int, ev Event) int {
			mu.Lock()
			defer mu.Unlock()
			if ev.Room == "B" && bDown {
				return http.StatusBadGateway
			}
			return http.StatusOK
		})
		d, err := Open(k.at(t)(rcv.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		stop := runDispatcher(d)
		defer stop()
		var a, b []Event
		for i := range 6 {
			room, list := "A", &a
			if i%2 == 0 {
				room, list = "B", &b
			}
			ev, err := d.Emit(TypeRoomStarted, room, map[string]int{"i": i})
			if err != nil {
				t.Fatal(err)
			}
			*list = append(*list, ev)
		}
		rcv.waitDelivered(a)
		failsB := 0
		for _, at := range rcv.attempts() {
			if at.ev.Room == "B" {
				failsB++
				if at.ev.ID != b[0].ID {
					t.Errorf("B's event %s attempted while B's first one fails", at.ev.ID)
				}
			}
		}
		t.Logf("room A delivered while room B failed %d times", failsB)
		mu.Lock()
		bDown = false
		mu.Unlock()
		rcv.waitDelivered(b)
		rcv.checkOrder(append(a, b...))
	})
}

// TestTwoURLs: each URL gets every event; one URL being down does not
// hold the other up, and its outbox survives.
func TestTwoURLs(t *testing.T) {
	eachOutbox(t, func(t *testing.T, k outboxKind) {
		good := newReceiver(t, func(int, Event) int { return http.StatusOK })
		bad := newReceiver(t, func(int, Event) int { return http.StatusInternalServerError })
		cfg := k.at(t)
		d, err := Open(cfg(good.srv.URL, bad.srv.URL, good.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		stop := runDispatcher(d)
		emitted := emitN(t, d, 5, "r")
		good.waitDelivered(emitted)
		good.checkOrder(emitted)
		if ids, dups := good.delivered(); dups != 0 || len(ids) != 5 {
			t.Errorf("good URL got %d events, %d duplicates (URL listed twice must count once)", len(ids), dups)
		}
		waitPending(t, d, 5) // the bad URL's
		stop()
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		// The bad URL is removed from the configuration: its outbox goes.
		d, err = Open(cfg(good.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		waitPending(t, d, 0)
		if n := storedEvents(t, d); n != 0 {
			t.Errorf("%d events left in the store", n)
		}
	})
}

// TestCloseStopsRun: Close ends a running Run and waits for it.
func TestCloseStopsRun(t *testing.T) {
	eachOutbox(t, func(t *testing.T, k outboxKind) {
		// A receiver that never answers: Close must not wait for it.
		block := make(chan struct{})
		rcv := newReceiver(t, func(int, Event) int { <-block; return http.StatusOK })
		defer close(block)
		d, err := Open(k.at(t)(rcv.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		returned := make(chan struct{})
		go func() {
			d.Run(context.Background())
			close(returned)
		}()
		emitN(t, d, 3, "r")
		time.Sleep(20 * time.Millisecond)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("Run still running after Close")
		}
		if err := d.Close(); err == nil {
			t.Error("second Close succeeded")
		}
		d.Run(context.Background()) // after Close: returns at once
	})
}

func TestEmitChecks(t *testing.T) {
	eachOutbox(t, func(t *testing.T, k outboxKind) {
		d, err := Open(k.at(t)())
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if _, err := d.Emit("room.exploded", "r", nil); err == nil {
			t.Error("unknown type accepted")
		}
		if _, err := d.Emit(TypeRoomStarted, "r", func() {}); err == nil {
			t.Error("unmarshallable data accepted")
		}
		ev, err := d.Emit(TypeRoomStarted, "r", nil)
		if err != nil || string(ev.Data) != "{}" || len(ev.ID) != 19 || ev.ID[:3] != "EV_" {
			t.Errorf("Emit = %+v, %v", ev, err)
		}
		if n, _ := d.Pending(); n != 0 {
			t.Errorf("no URL, yet Pending = %d", n)
		}
	})
}

// storedEvents counts the event bodies in d's outbox.
func storedEvents(t *testing.T, d *Dispatcher) int {
	t.Helper()
	n := 0
	var err error
	switch st := d.store.(type) {
	case *store:
		err = st.db.View(func(tx *bolt.Tx) error {
			n = tx.Bucket(bucketEvents).Stats().KeyN
			return nil
		})
	case *redisOutbox:
		var hlen int64
		hlen, err = st.c.HLen(t.Context(), st.p+"wh:ev").Result()
		n = int(hlen)
	default:
		t.Fatalf("outbox %T", st)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConfigChecks(t *testing.T) {
	for _, c := range []Config{
		{Dir: t.TempDir(), URLs: []string{"ftp://x"}, Secret: testSecret},
		{Dir: t.TempDir(), URLs: []string{"http://x"}},
		{URLs: []string{"http://x"}, Secret: testSecret},
	} {
		if d, err := Open(c); err == nil {
			d.Close()
			t.Errorf("Open(%+v) succeeded", c)
		}
	}
}
