package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/recorder"
	"github.com/relaysfu/relayd/signaling"
)

// 300 connections that hold a descriptor each, against a relayd limited to
// 256: requests whose body never comes and idle keep-alive connections.
// With the timeouts they are closed after 3s, the descriptors come back,
// and /healthz answers. (Before, with only a header timeout, they stayed
// open for good and /healthz never answered.)
func TestHTTPTimeoutsFreeDescriptors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildRelayd(t)
	const timeout = 3 * time.Second
	p := spawnRelayd(t, "sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, bin,
		"--secret", restartSecret, "--listen", "127.0.0.1:0", "--udp-port", "0", "--data-dir", t.TempDir(),
		"--http-read-timeout", timeout.String(), "--http-write-timeout", timeout.String(), "--http-idle-timeout", timeout.String())
	admin, _ := signaling.NewTokens([]byte(restartSecret)).Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})

	// Each connection's goroutine reports when the server closed it.
	const halfSent, idle = 150, 150
	start := time.Now()
	closedAfter := make(chan time.Duration, halfSent+idle)
	var wg sync.WaitGroup
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
		wg.Wait()
	}()
	open := func(request string, keepAlive bool) {
		t.Helper()
		c, err := net.DialTimeout("tcp", p.addr, 10*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, request); err != nil {
			t.Fatalf("write: %v", err)
		}
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			br := bufio.NewReader(c)
			if keepAlive {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					if !errors.Is(err, net.ErrClosed) { // closed by the test, failing already
						t.Errorf("keep-alive request: %v", err)
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			// Whatever the server answers, it must close the connection.
			if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				t.Errorf("connection not closed by the server: %v", err)
				return
			}
			closedAfter <- time.Since(start)
		})
	}
	for range halfSent {
		open("POST /v1/rooms HTTP/1.1\r\nHost: relayd\r\nAuthorization: Bearer "+admin+
			"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":", false)
	}
	for range idle {
		open("GET /healthz HTTP/1.1\r\nHost: relayd\r\n\r\n", true)
	}

	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get("http://" + p.addr + "/healthz")
	if err != nil {
		t.Fatalf("/healthz with %d connections held: %v", halfSent+idle, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	t.Logf("/healthz answered %v after the connections were opened", time.Since(start).Round(time.Millisecond))
	var last time.Duration
	for range halfSent + idle {
		select {
		case d := <-closedAfter:
			last = max(last, d)
		case <-time.After(45 * time.Second):
			t.Fatalf("connections still open %v after they were opened", time.Since(start).Round(time.Second))
		}
	}
	t.Logf("the server closed all %d connections within %v", halfSent+idle, last.Round(time.Millisecond))
	if !p.log.contains("too many open files") {
		t.Errorf("the test did not exhaust the descriptors (no accept error logged): it proves nothing")
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// The HTTP timeouts (1s here) cut neither a WebSocket kept open longer,
// nor a recording download longer than the write timeout, nor a CPU
// profile on the admin listener; they do cut a download nobody reads.
func TestHTTPTimeoutsSpareLongConnections(t *testing.T) {
	defer goleak.VerifyNone(t)
	const timeout = time.Second
	cfg := DefaultConfig()
	cfg.Secret = "timeouts-test-secret"
	cfg.Listen = "127.0.0.1:0"
	cfg.UDPPort = 0
	cfg.DataDir = t.TempDir()
	cfg.HTTPReadTimeout, cfg.HTTPWriteTimeout, cfg.HTTPIdleTimeout = timeout, timeout, timeout
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AdminListen = l.Addr().String()
	l.Close()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// A finished recording of 32 MiB: far more than loopback's socket
	// buffers, so the server waits on the reader.
	const size = 32 << 20
	dir := recorder.RoomDir(filepath.Join(cfg.DataDir, "recordings"), "show")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.webm"), make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.webm.json"), []byte(`{"name":"big.webm"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, io.Discard, runHooks{ready: func(a string) { addrc <- a }}) }()
	addr := <-addrc
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	tokens := signaling.NewTokens([]byte(cfg.Secret))
	admin, _ := tokens.Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})

	t.Run("websocket", func(t *testing.T) {
		tctx, tcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer tcancel()
		tok, _ := tokens.Issue(signaling.TokenSpec{Identity: "alice", Room: "r", Role: "host", TTL: time.Hour})
		c, err := client.Dial(tctx, "http://"+addr, tok, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Join(tctx); err != nil {
			t.Fatal(err)
		}
		// Idle, then busy, for 3.5 times every timeout.
		select {
		case <-c.Closed():
			t.Fatalf("the WebSocket was closed (%d) while idle", c.CloseCode())
		case <-time.After(2 * timeout):
		}
		for i := range 3 {
			if _, err := c.SendChat(tctx, fmt.Sprint("still here ", i)); err != nil {
				t.Fatalf("chat.send after %v: %v", (2*time.Duration(i)+4)*timeout/2, err)
			}
			time.Sleep(timeout / 2)
		}
	})

	download := func(t *testing.T, read func(io.Reader) (int64, error)) (int64, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/rooms/show/recordings/big.webm", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("download: %d", resp.StatusCode)
		}
		return read(resp.Body)
	}
	t.Run("slow download", func(t *testing.T) {
		start := time.Now()
		n, err := download(t, func(r io.Reader) (int64, error) {
			var n int64
			for {
				m, err := io.CopyN(io.Discard, r, 1<<20)
				n += m
				if err != nil {
					if errors.Is(err, io.EOF) {
						err = nil
					}
					return n, err
				}
				time.Sleep(100 * time.Millisecond) // 10 MiB/s at most
			}
		})
		if err != nil || n != size {
			t.Fatalf("read %d of %d bytes in %v: %v", n, size, time.Since(start), err)
		}
		if d := time.Since(start); d < 2*timeout {
			t.Errorf("the download took %v: not longer than the write timeout, it proves nothing", d)
		}
	})
	t.Run("stalled download", func(t *testing.T) {
		n, _ := download(t, func(r io.Reader) (int64, error) {
			time.Sleep(3 * timeout) // the server gives up meanwhile
			return io.Copy(io.Discard, r)
		})
		if n == size {
			t.Errorf("a download nobody read for 3s was not cut")
		}
	})
	t.Run("pprof profile", func(t *testing.T) {
		resp, err := http.Get("http://" + cfg.AdminListen + "/debug/pprof/profile?seconds=2")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || len(b) == 0 {
			t.Fatalf("profile: %d, %d bytes, %v: %s", resp.StatusCode, len(b), err, b[:min(len(b), 200)])
		}
	})
	t.Run("API", func(t *testing.T) {
		code, out := apiAt(t, "http://"+addr, admin, "POST", "/v1/rooms", `{"name":"x","host":"h"}`)
		if code != 201 {
			t.Fatalf("POST /v1/rooms: %d %v", code, out)
		}
	})
}

func apiAt(t *testing.T, base, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// The shutdown and HTTP timeout settings come from flags, the environment
// and the file like every other; 0 turns an HTTP timeout off, a negative
// one (or a drain timeout <= 0) is refused.
func TestConfigTimeouts(t *testing.T) {
	path := writeYAML(t, "secret: s\nhttp-idle-timeout: 2m\ndrain-timeout: 4s\n")
	got, err := load([]string{"--config", path, "--http-write-timeout", "0"}, "RELAYD_HTTP_READ_TIMEOUT=5s")
	if err != nil {
		t.Fatal(err)
	}
	if got.HTTPReadTimeout != 5*time.Second || got.HTTPWriteTimeout != 0 || got.HTTPIdleTimeout != 2*time.Minute || got.DrainTimeout != 4*time.Second {
		t.Errorf("got read %v, write %v, idle %v, drain %v", got.HTTPReadTimeout, got.HTTPWriteTimeout, got.HTTPIdleTimeout, got.DrainTimeout)
	}
	for _, args := range [][]string{
		{"--http-read-timeout", "-1s"}, {"--http-write-timeout", "-1s"}, {"--http-idle-timeout", "-1s"},
		{"--drain-timeout", "0"},
	} {
		if _, err := load(append([]string{"--secret", "s"}, args...)); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v, want an error naming the flag", args, err)
		}
	}
	hs := newHTTPServer(got, http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if hs.ReadHeaderTimeout != 5*time.Second || hs.ReadTimeout != 5*time.Second || hs.WriteTimeout != 0 || hs.IdleTimeout != 2*time.Minute {
		t.Errorf("server timeouts: header %v read %v write %v idle %v", hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout, hs.IdleTimeout)
	}
}
