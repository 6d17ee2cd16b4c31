package netlab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDialContext reaches a TCP server in the server namespace from this
// process, which runs in the root namespace: many times and from many
// goroutines. The connections are made inside (the server sees its own
// address as the peer), and afterwards every thread of the process is back
// in the root namespace.
func TestDialContext(t *testing.T) {
	l := newLab(t, "none")
	startServer(t, l)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			c, err := l.Server().DialContext(ctx, "tcp4", tcpAddr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			line := fmt.Sprintf("hello %d\n", i)
			if _, err := io.WriteString(c, "echo\n"+line); err != nil {
				errs <- err
				return
			}
			got, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || got != line {
				errs <- fmt.Errorf("echo of %q: %q, %v", line, got, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// The connections were made inside: the server saw them come from its
	// own address, not from this machine's.
	c, err := l.Server().DialContext(ctx, "tcp4", tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	_, _ = io.WriteString(c, "whoami\n")
	who, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if got := seenHost(t, strings.TrimSpace(who)); got != ServerAddr() {
		t.Errorf("server saw the connection from %s, want %s (inside the lab)", got, ServerAddr())
	}
	// And no thread of this process stayed in the lab.
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		if ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net"); err == nil && ns != own {
			t.Errorf("thread %s is in network namespace %s, the process in %s", task.Name(), ns, own)
		}
	}
	// A namespace that does not exist is an error, not a dial from here.
	n := &Node{ns: l.Name() + "-nosuch"}
	if c, err := n.DialContext(ctx, "tcp4", tcpAddr); err == nil {
		c.Close()
		t.Error("dial in a namespace that does not exist succeeded")
	}
}
