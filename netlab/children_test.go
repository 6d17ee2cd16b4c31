package netlab

// The programs the lab tests run inside namespaces, as registered functions
// of the test binary (the re-exec pattern under test), and a helper that
// drives one from a test.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func registerTestFuncs() {
	Register("serve", serve)
	Register("client", client)
	Register("ifaces", ifaces)
}

// forceBuffers gives a socket 4 MiB buffers (past rmem_max: we are root), so
// that a child descheduled for a while on a loaded machine does not lose
// datagrams in its own socket and spoil a loss measurement.
func forceBuffers(c syscall.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = errors.Join(
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 4<<20),
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, 4<<20))
	})
	return errors.Join(err, serr)
}

// serve (args: udpAddr tcpAddr...) answers every datagram on udpAddr with
// the address it came from, and serves TCP on each tcpAddr (see serveConn).
// It prints "ready" once listening and, when stopped, "udp-count N": the
// datagrams it received.
func serve(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return errors.New("usage: serve udpAddr tcpAddr...")
	}
	pc, err := net.ListenPacket("udp4", args[0])
	if err != nil {
		return err
	}
	if err := forceBuffers(pc.(*net.UDPConn)); err != nil {
		return err
	}
	var lns []net.Listener
	for _, a := range args[1:] {
		ln, err := net.Listen("tcp4", a)
		if err != nil {
			return err
		}
		lns = append(lns, ln)
	}
	var wg sync.WaitGroup
	var count atomic.Int64
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			count.Add(1)
			_, _ = pc.WriteTo([]byte(from.String()), from)
		}
	})
	for _, ln := range lns {
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Go(func() { serveConn(ctx, c) })
			}
		})
	}
	fmt.Println("ready")
	<-ctx.Done()
	pc.Close()
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
	fmt.Println("udp-count", count.Load())
	return nil
}

// serveConn reads one command line from a TCP connection:
//
//	whoami  → writes the peer's address
//	echo    → echoes each following line
//	send N  → writes N bytes and closes
//	recv N  → reads N bytes, writes "<bytes after the first read> <seconds
//	          from first to last read>"
func serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	n, _ := strconv.Atoi(arg)
	switch cmd {
	case "whoami":
		fmt.Fprintln(c, c.RemoteAddr())
	case "echo":
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, l); err != nil {
				return
			}
		}
	case "send":
		_, _ = c.Write(make([]byte, n))
	case "recv":
		after, secs, err := timedRead(r, n)
		if err == nil {
			fmt.Fprintln(c, after, secs)
		}
	}
}

// timedRead reads n bytes; it returns the bytes after the first read and the
// seconds from the first read to the last, so a burst at the start does not
// count as rate.
func timedRead(r io.Reader, n int) (after int, secs float64, err error) {
	buf := make([]byte, 32<<10)
	var first, last time.Time
	got := 0
	for got < n {
		k, err := r.Read(buf)
		if k > 0 {
			now := time.Now()
			if first.IsZero() {
				first = now
			} else {
				after += k
			}
			last, got = now, got+k
		}
		if err != nil {
			return 0, 0, fmt.Errorf("after %d of %d bytes: %w", got, n, err)
		}
	}
	return after, last.Sub(first).Seconds(), nil
}

// client reads commands on stdin and prints one result line for each,
// "ok ..." or "fail <error>":
//
//	udp ADDR          one datagram; ok <address the server saw>
//	tcp ADDR          connect, whoami; ok <address the server saw>
//	open ADDR         connect and keep the connection in echo mode
//	say TEXT          a line over the open connection; ok <echoed line>
//	blast ADDR N      N datagrams, paced; ok <replies received>
//	download ADDR N   ok <bytes after the first read> <seconds>
//	upload ADDR N     ok <bytes after the first read> <seconds> (measured by the server)
func client(ctx context.Context, _ []string) error {
	var held net.Conn
	var heldR *bufio.Reader
	defer func() {
		if held != nil {
			held.Close()
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) < 2 {
			fmt.Println("fail bad command", in.Text())
			continue
		}
		var out string
		var err error
		n := 0
		if len(f) > 2 {
			n, _ = strconv.Atoi(f[2])
		}
		switch f[0] {
		case "udp":
			out, err = udpProbe(f[1])
		case "tcp":
			out, err = tcpProbe(f[1])
		case "open":
			held, err = net.DialTimeout("tcp4", f[1], 5*time.Second)
			if err == nil {
				heldR = bufio.NewReader(held)
				_, err = io.WriteString(held, "echo\n")
			}
		case "say":
			_ = held.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err = io.WriteString(held, f[1]+"\n"); err == nil {
				out, err = heldR.ReadString('\n')
			}
		case "blast":
			out, err = blast(ctx, f[1], n)
		case "download", "upload":
			out, err = transfer(f[0], f[1], n)
		default:
			err = errors.New("unknown command")
		}
		if err != nil {
			fmt.Println("fail", err)
		} else {
			fmt.Println("ok", strings.TrimSpace(out))
		}
	}
	return in.Err()
}

// probeWait is how long a probe waits for its answer: a veth round trip
// takes microseconds, so this is only slack for a loaded machine; tests
// retry a probe that should succeed.
const probeWait = time.Second

func udpProbe(addr string) (string, error) {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Write([]byte("probe")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(probeWait))
	buf := make([]byte, 256)
	k, err := c.Read(buf)
	return string(buf[:k]), err
}

func tcpProbe(addr string) (string, error) {
	c, err := net.DialTimeout("tcp4", addr, probeWait)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(probeWait))
	if _, err := io.WriteString(c, "whoami\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// blast sends n datagrams to a serve child, 10 every 5 ms (2 kpackets/s,
// well within what either side reads), and counts the replies until they
// stop coming.
func blast(ctx context.Context, addr string, n int) (string, error) {
	raw, err := net.Dial("udp4", addr)
	if err != nil {
		return "", err
	}
	c := raw.(*net.UDPConn)
	defer c.Close()
	if err := forceBuffers(c); err != nil {
		return "", err
	}
	var replies atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			replies.Add(1)
		}
	}()
	payload := make([]byte, 200)
	for i := range n {
		if _, err := c.Write(payload); err != nil {
			return "", fmt.Errorf("packet %d: %w", i, err)
		}
		if i%10 == 9 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Replies come back within microseconds; wait at least a second, and
	// until none came for 300 ms, so that a descheduled reader catches up.
	deadline := time.Now().Add(10 * time.Second)
	time.Sleep(time.Second)
	for prev := int64(-1); replies.Load() != prev && time.Now().Before(deadline) && ctx.Err() == nil; {
		prev = replies.Load()
		time.Sleep(300 * time.Millisecond)
	}
	c.Close()
	<-done
	return strconv.FormatInt(replies.Load(), 10), nil
}

// transfer moves n bytes over TCP to (upload) or from (download) a serve
// child and reports the rate's parts as timedRead does.
func transfer(dir, addr string, n int) (string, error) {
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if dir == "download" {
		fmt.Fprintf(c, "send %d\n", n)
		after, secs, err := timedRead(c, n)
		return fmt.Sprint(after, " ", secs), err
	}
	fmt.Fprintf(c, "recv %d\n", n)
	if _, err := c.Write(make([]byte, n)); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// ifaces prints one line per interface it sees: its name and addresses.
func ifaces(context.Context, []string) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifs {
		addrs, err := i.Addrs()
		if err != nil {
			return err
		}
		line := []string{i.Name}
		for _, a := range addrs {
			line = append(line, a.String())
		}
		fmt.Println(strings.Join(line, " "))
	}
	return nil
}

// child is a registered function running in a namespace, driven by a test.
type child struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	lines  chan string // stdout, line by line; closed at EOF
}

// lineWait bounds how long a test waits for a child's answer; the slowest
// command (blast) takes about two seconds.
const lineWait = 60 * time.Second

func startChild(t *testing.T, n *Node, fn string, args ...string) *child {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := n.GoCommand(ctx, fn, args...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// A race-enabled binary sleeps a second at exit (to let racing
	// goroutines report) unless told not to; children exit often.
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &child{t: t, name: fn + "@" + n.NS(), cmd: cmd, cancel: cancel, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { c.stop() })
	return c
}

// line is the child's next line of output.
func (c *child) line() string {
	c.t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("%s ended without answering", c.name)
		}
		return l
	case <-time.After(lineWait):
		c.t.Fatalf("%s did not answer in %v", c.name, lineWait)
	}
	return ""
}

// do sends a command and returns its answer.
func (c *child) do(command string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, command+"\n"); err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	return c.line()
}

// wait waits for a child that ends by itself and returns the lines it
// printed that were not read yet.
func (c *child) wait() []string {
	c.t.Helper()
	var rest []string
	timeout := time.After(lineWait)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				if err := c.cmd.Wait(); err != nil {
					c.t.Errorf("%s: %v", c.name, err)
				}
				c.cancel()
				c.cancel = nil
				return rest
			}
			rest = append(rest, l)
		case <-timeout:
			c.t.Fatalf("%s did not end in %v", c.name, lineWait)
		}
	}
}

// stop ends the child (SIGTERM, through its context) and returns the lines
// it printed that were not read yet. Calling it again returns nil.
func (c *child) stop() []string {
	if c.cancel == nil {
		return nil
	}
	c.cancel()
	c.cancel = nil
	c.stdin.Close()
	var rest []string
	for l := range c.lines {
		rest = append(rest, l)
	}
	_ = c.cmd.Wait()
	return rest
}
