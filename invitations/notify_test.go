package invitations

import (
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestNotifierOrder: while one goroutine announces an invitation's
// transition, a later transition of it waits for that goroutine (in
// order), and other invitations are not held up.
func TestNotifierOrder(t *testing.T) {
	var mu sync.Mutex
	var got []Status
	entered := make(chan string, 10)
	release := make(chan struct{})
	n := newNotifier(func(inv Invitation) {
		entered <- inv.ID
		if inv.ID == "IN_a" && inv.Status == StatusPending {
			<-release // hold the deliverer of IN_a inside OnChange
		}
		mu.Lock()
		got = append(got, inv.Status)
		mu.Unlock()
	})

	n.push(Invitation{ID: "IN_a", Status: StatusPending})
	first := make(chan struct{})
	go func() {
		defer close(first)
		n.deliver("IN_a")
	}()
	<-entered // the first deliverer is inside OnChange

	n.push(Invitation{ID: "IN_a", Status: StatusAccepted})
	n.deliver("IN_a") // returns at once: the first one is busy with IN_a
	n.push(Invitation{ID: "IN_b", Status: StatusPending})
	n.deliver("IN_b") // not held up by IN_a
	if id := <-entered; id != "IN_b" {
		t.Fatalf("delivered %s, want IN_b", id)
	}

	close(release)
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("the first deliverer did not finish")
	}
	if id := <-entered; id != "IN_a" {
		t.Fatalf("delivered %s, want IN_a's second transition", id)
	}
	if want := []Status{StatusPending, StatusPending, StatusAccepted}; !reflect.DeepEqual(got, want) {
		t.Errorf("delivered %v, want %v (IN_b, then IN_a in order)", got, want)
	}
	if len(n.queues) != 0 {
		t.Errorf("%d queues left behind", len(n.queues))
	}
}

// TestNotifierPanic: a panicking OnChange does not wedge the invitation's
// queue.
func TestNotifierPanic(t *testing.T) {
	var got []Status
	n := newNotifier(func(inv Invitation) {
		if inv.Status == StatusPending {
			panic("boom")
		}
		got = append(got, inv.Status)
	})
	n.push(Invitation{ID: "IN_a", Status: StatusPending})
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("the panic was swallowed")
			}
		}()
		n.deliver("IN_a")
	}()
	n.push(Invitation{ID: "IN_a", Status: StatusAccepted})
	n.deliver("IN_a")
	if !reflect.DeepEqual(got, []Status{StatusAccepted}) {
		t.Errorf("after the panic: %v", got)
	}
}
