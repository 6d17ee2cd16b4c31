package netlab

// Reaching into a namespace from the outside. A process in the root
// namespace cannot route to a lab (nothing of the lab is in the root
// namespace, by design), yet a bench or test driving a server inside wants
// to talk to it: read its /metrics, poll /readyz. A socket belongs to the
// namespace it was created in, whatever thread later uses it, so one
// goroutine locked to its OS thread can enter the namespace (setns(2)),
// create and connect the socket, and leave again; the connection then
// works from any goroutine. Only that one socket is inside: nothing else
// of the process moves. The lab uses the same to set a namespace's
// sysctls (/proc/sys/net is the calling thread's namespace's).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` puts its namespace handles.
const netnsDir = "/run/netns"

// DialContext connects to addr (network "tcp", "tcp4", "udp", ...) from
// inside the namespace, from a process that runs outside it, e.g.
// http.Transport{DialContext: lab.Server().DialContext} reaches a server
// listening on ServerAddr(). The returned connection is an ordinary one,
// usable from any goroutine.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.inside(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: dial %s %s in %s: %w", network, addr, n.ns, err)
	}
	return c, nil
}

// inside runs fn on an OS thread that is in the namespace for the time of
// the call. fn must not start goroutines that need to be inside (they run
// elsewhere) nor block on other goroutines for long (the thread is theirs
// alone).
func (n *Node) inside(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		// The thread is left locked, and so ends with this goroutine, if it
		// cannot go back to its own namespace: it must never run anything
		// else. Go creates new threads from a template thread when the
		// current one is locked, so none is born in the lab either.
		runtime.LockOSThread()
		back, err := n.insideLocked(fn)
		if back {
			runtime.UnlockOSThread()
		}
		ch <- err
	}()
	return <-ch
}

// insideLocked runs on a locked thread: enter the namespace, run fn, come
// back. back reports whether the thread is in its own namespace again.
func (n *Node) insideLocked(fn func() error) (back bool, err error) {
	own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		return true, err
	}
	defer own.Close()
	target, err := os.Open(filepath.Join(netnsDir, n.ns))
	if err != nil {
		return true, err
	}
	defer target.Close()
	if err := setns(target); err != nil {
		return true, fmt.Errorf("entering the namespace: %w", err)
	}
	err = fn()
	if rerr := setns(own); rerr != nil {
		return false, errors.Join(err, fmt.Errorf("leaving the namespace: %w", rerr))
	}
	return true, err
}

func setns(f *os.File) error { return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET) }

// setSysctls writes net sysctls (paths under /proc/sys/net) in the
// namespace.
func (n *Node) setSysctls(kv map[string]string) error {
	return n.inside(func() error {
		var errs []error
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys/net", k), []byte(v), 0o644); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}
