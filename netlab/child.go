package netlab

// Running things inside a namespace. A namespace is a property of an OS
// thread, and a Go program's goroutines move between threads (and pion
// starts dozens of goroutines of its own), so a goroutine cannot just
// setns(2) into a namespace: what runs inside must be a whole process that
// starts there. `ip netns exec` gives that for any command; for a Go
// function, the binary re-executes itself under `ip netns exec` with an
// environment variable naming a function it registered, and MaybeRunChild,
// called first thing in main or TestMain, runs that function instead of the
// program. docs/netlab.md has the details.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// ChildEnv is the environment variable naming the registered function a
// re-executed child runs.
const ChildEnv = "RELAYD_NETLAB_FUNC"

// Func is a function a child process runs inside a namespace. ctx ends when
// the child is asked to stop (SIGTERM or SIGINT, which is what cancelling
// the parent's GoCommand context sends). args are the child's command-line
// arguments. Returning nil exits 0; an error is printed to stderr and exits 1.
type Func func(ctx context.Context, args []string) error

// registry is process-wide because the binary re-executed as a child must
// find the function by name before its main does anything else; it is
// filled by Register at start-up, like flag's or http's defaults.
var registry = struct {
	sync.Mutex
	funcs map[string]Func
}{funcs: map[string]Func{}}

// Register makes fn runnable in a namespace under name (see GoCommand).
// Call it from init, or in main/TestMain before MaybeRunChild. Registering
// an empty name or one name twice is a programming error and panics.
func Register(name string, fn Func) {
	registry.Lock()
	defer registry.Unlock()
	if name == "" || fn == nil {
		panic("netlab: Register needs a name and a function")
	}
	if _, dup := registry.funcs[name]; dup {
		panic("netlab: Register called twice for " + name)
	}
	registry.funcs[name] = fn
}

func lookup(name string) Func {
	registry.Lock()
	defer registry.Unlock()
	return registry.funcs[name]
}

// MaybeRunChild returns at once in a normal process. In a child started by
// GoCommand it runs the registered function and exits the process with its
// result, never returning. Call it first thing in main or TestMain, after
// registering.
func MaybeRunChild() {
	name, ok := os.LookupEnv(ChildEnv)
	if !ok {
		return
	}
	// A child's own children are ordinary processes again.
	_ = os.Unsetenv(ChildEnv)
	fn := lookup(name)
	if fn == nil {
		fmt.Fprintf(os.Stderr, "netlab: no function %q registered in %s\n", name, os.Args[0])
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := fn(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "netlab: %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// stopGrace is how long a process inside a namespace has, after SIGTERM on
// its context's end, before it is killed: enough to print its results and
// close its sockets.
const stopGrace = 5 * time.Second

// Command runs name with args inside the namespace (via `ip netns exec`,
// which enters the namespace and then execs name in the same process). When
// ctx ends the process gets SIGTERM, and SIGKILL stopGrace later; it also
// gets SIGKILL if this process dies first, so nothing outlives a crashed
// test inside a namespace (which would keep the namespace alive). The
// kernel ties that signal to the OS thread that started the process, and Go
// only ends a thread whose goroutine locked it (runtime.LockOSThread) and
// returned: do not start these from such a goroutine.
func (n *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.ns, name}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// GoCommand runs the function registered as fn inside the namespace, in a
// child process: this binary, re-executed under `ip netns exec` with
// ChildEnv=fn and args as its arguments. The function's ctx ends when this
// ctx does (see Command). The child's stdin, stdout and stderr are the
// returned Cmd's to set.
func (n *Node) GoCommand(ctx context.Context, fn string, args ...string) (*exec.Cmd, error) {
	if lookup(fn) == nil {
		return nil, fmt.Errorf("netlab: no function %q registered", fn)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("netlab: finding this binary to re-execute: %w", err)
	}
	cmd := n.Command(ctx, exe, args...)
	cmd.Env = append(os.Environ(), ChildEnv+"="+fn)
	return cmd, nil
}
