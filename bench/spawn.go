package bench

// --spawn: start a relayd binary on free loopback ports with a fresh secret
// and data directory, wait until it is ready, and stop it afterwards. The
// child gets SIGKILL if the bench dies (Pdeathsig), so no run leaves a
// server behind, even a crashed or killed one.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	readyTimeout = 15 * time.Second
	stopTimeout  = 15 * time.Second
	spawnTries   = 3
)

// spawned is a running relayd child process.
type spawned struct {
	pid     int
	baseURL string
	secret  string
	dir     string // temp dir: data dir and log
	logPath string
	proc    *os.Process
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// spawnServer starts the relayd binary at path (a relative path is relative
// to the working directory, a bare name is looked up in PATH).
func spawnServer(ctx context.Context, path string, extra []string) (*spawned, error) {
	abs, err := resolveBinary(path)
	if err != nil {
		return nil, err
	}
	var last error
	for try := 0; try < spawnTries; try++ {
		s, err := startOnce(ctx, abs, extra)
		if err == nil {
			return s, nil
		}
		last = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, last
}

// resolveBinary finds --spawn's binary and checks it can be run.
func resolveBinary(path string) (string, error) {
	bin := path
	if !strings.ContainsRune(path, filepath.Separator) {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("--spawn %s: %w", path, err)
		}
		bin = p
	}
	if st, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("--spawn %s: %w", path, err)
	} else if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("--spawn %s: not an executable file", path)
	}
	return filepath.Abs(bin)
}

var errPortTaken = errors.New("port taken")

// newSpawned prepares a server's secret and temporary directory.
func newSpawned(baseURL string) (*spawned, error) {
	dir, err := os.MkdirTemp("", "relaybench-*")
	if err != nil {
		return nil, err
	}
	sb := make([]byte, 24)
	_, _ = rand.Read(sb)
	return &spawned{
		secret:  hex.EncodeToString(sb),
		dir:     dir,
		logPath: filepath.Join(dir, "relayd.log"),
		baseURL: baseURL,
		done:    make(chan struct{}),
	}, nil
}

// dataDir is the server's --data-dir.
func (s *spawned) dataDir() string { return filepath.Join(s.dir, "data") }

func startOnce(ctx context.Context, bin string, extra []string) (*spawned, error) {
	httpPort, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	udpPort, err := freePort("udp")
	if err != nil {
		return nil, err
	}
	s, err := newSpawned("http://127.0.0.1:" + strconv.Itoa(httpPort))
	if err != nil {
		return nil, err
	}
	args := []string{
		"--secret", s.secret,
		"--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--udp-port", strconv.Itoa(udpPort),
		"--ice-loopback",
		"--data-dir", s.dataDir(),
	}
	cmd := exec.Command(bin, append(args, extra...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // the terminal's Ctrl-C reaches the bench, which stops the server in order
		Pdeathsig: syscall.SIGKILL, // the bench died: the server goes too
	}
	if err := s.launch(cmd); err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()
	if err := s.waitReady(ctx, hc); err != nil {
		s.stop()
		tail := s.logTail(20)
		s.removeDir()
		if strings.Contains(tail, "address already in use") {
			return nil, errPortTaken
		}
		return nil, fmt.Errorf("%w; server log:\n%s", err, tail)
	}
	return s, nil
}

// launch starts cmd (the server) with its output to the log; on error the
// directory is removed.
func (s *spawned) launch(cmd *exec.Cmd) error {
	logf, err := os.Create(s.logPath)
	if err != nil {
		s.removeDir()
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()

	// Pdeathsig fires when the thread that forked exits, not the process:
	// fork from a goroutine that keeps its thread locked until the child
	// has exited.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			close(s.done)
			return
		}
		s.proc, s.pid = cmd.Process, cmd.Process.Pid
		started <- nil
		s.waitErr = cmd.Wait()
		_ = logf.Close()
		close(s.done)
	}()
	if err := <-started; err != nil {
		_ = logf.Close()
		s.removeDir()
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	return nil
}

// waitReady polls /readyz through hc until it answers 200.
func (s *spawned) waitReady(ctx context.Context, hc *http.Client) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("relayd exited before it was ready (%v)", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := hc.Get(s.baseURL + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("relayd not ready after %v", readyTimeout)
}

// stop sends SIGINT (relayd ends every room and exits at once; SIGTERM
// would drain, waiting for rooms to finish), waits for the shutdown, then
// SIGKILL. Idempotent.
func (s *spawned) stop() {
	if s.proc != nil {
		select {
		case <-s.done:
		default:
			_ = s.proc.Signal(syscall.SIGINT)
			select {
			case <-s.done:
			case <-time.After(stopTimeout):
				_ = s.proc.Kill()
				<-s.done
			}
		}
	}
	<-s.done
}

// removeDir removes the data directory and the log.
func (s *spawned) removeDir() {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
		s.dir = ""
	}
}

// exited reports whether the server process has ended.
func (s *spawned) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// logTail returns the last n lines of the server's log.
func (s *spawned) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort asks the kernel for a free loopback port ("tcp" or "udp").
func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
