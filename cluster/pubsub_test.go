package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relaysfu/relayd/internal/redistest"
)

type inbox struct {
	mu   sync.Mutex
	msgs []string
}

func (in *inbox) add(m []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs = append(in.msgs, string(m))
}

func (in *inbox) get() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.msgs)
}

func TestPublishSubscribeAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	a, b, c := open(t, srv, "a"), open(t, srv, "b"), open(t, srv, "c")
	ctx := context.Background()

	var inB, inC1, inC2, inOther inbox
	b.Subscribe("events", inB.add)
	cancelC1 := c.Subscribe("events", inC1.add)
	c.Subscribe("events", inC2.add) // two subscriptions share c's connection
	c.Subscribe("other", inOther.add)
	if n, _ := rc.PubSubNumSub(ctx, "relayd:ch:events").Result(); n["relayd:ch:events"] != 2 {
		t.Fatalf("redis subscribers of the prefixed channel: %v", n)
	}

	var want []string
	for i := range 200 {
		want = append(want, fmt.Sprint(i))
		if err := a.Publish(ctx, "events", []byte(want[i])); err != nil {
			t.Fatal(err)
		}
	}
	for name, in := range map[string]*inbox{"b": &inB, "c1": &inC1, "c2": &inC2} {
		waitFor(t, 3*time.Second, name+" to get 200 messages", func() bool { return len(in.get()) >= 200 })
		if got := in.get(); !slices.Equal(got, want) {
			t.Fatalf("%s got out of order or extra: %v", name, got)
		}
	}

	// Cancel stops one subscription, the other on the same channel goes on.
	cancelC1()
	cancelC1()
	if err := b.Publish(ctx, "events", []byte("late")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "c2 to get the late message", func() bool { return len(inC2.get()) == 201 })
	time.Sleep(50 * time.Millisecond)
	if len(inC1.get()) != 200 || len(inOther.get()) != 0 {
		t.Fatalf("cancelled sub got %d, other channel got %v", len(inC1.get()), inOther.get())
	}
}

func TestSubscribeCancelFromCallbackAndAfterClose(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv, "a")
	ctx := context.Background()
	var cancel func()
	var mu sync.Mutex
	got := 0
	ready := make(chan struct{})
	cancel = a.Subscribe("x", func([]byte) {
		<-ready
		mu.Lock()
		got++
		mu.Unlock()
		cancel() // must not deadlock
	})
	close(ready)
	for range 3 {
		if err := a.Publish(ctx, "x", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	if got != 1 {
		t.Fatalf("fn ran %d times after cancelling itself", got)
	}
	mu.Unlock()

	// Resubscribing to a channel whose last subscription was cancelled works.
	var in inbox
	a.Subscribe("x", in.add)
	if err := a.Publish(ctx, "x", []byte("again")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "resubscribed message", func() bool { return len(in.get()) == 1 })

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a.Subscribe("x", in.add)() // no-op after Close
}
