package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
)

const restartSecret = "restart-test-secret"

// startRelayd runs the built binary on dir and returns its HTTP address.
// extra flags follow the defaults (a later flag wins).
func startRelayd(t *testing.T, bin, dir string, extra ...string) (string, *exec.Cmd) {
	t.Helper()
	p := spawnRelayd(t, bin, append([]string{"--secret", restartSecret, "--listen", "127.0.0.1:0", "--udp-port", "0", "--data-dir", dir}, extra...)...)
	return p.addr, p.cmd
}

// relaydProc is a running relayd binary.
type relaydProc struct {
	addr string // HTTP address, 127.0.0.1:port
	cmd  *exec.Cmd
	log  *procLog
	// exited is closed when the process's stderr is closed (it exited)
	// and every line of it is in log.
	exited <-chan struct{}
}

// procLog keeps a process's stderr for the test's failure report.
type procLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *procLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *procLog) contains(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// report returns the warnings and errors, and the last n lines.
func (l *procLog) report(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	race := false // inside a race detector report: all of it
	for _, s := range l.lines {
		if strings.Contains(s, "WARNING: DATA RACE") {
			race = true
		}
		if race || strings.Contains(s, "level=WARN") || strings.Contains(s, "level=ERROR") || strings.Contains(s, "panic") {
			b.WriteString("  " + s + "\n")
		}
		if strings.HasPrefix(s, "==================") {
			race = false // a report ends with this line
		}
	}
	b.WriteString("  --- last lines ---\n")
	for _, s := range l.lines[max(0, len(l.lines)-n):] {
		b.WriteString("  " + s + "\n")
	}
	return b.String()
}

// spawnRelayd runs bin with args, which must include --listen; it returns
// once the server listens. The process is killed when t ends; its stderr is
// kept and shown if t failed.
func spawnRelayd(t *testing.T, bin string, args ...string) *relaydProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &relaydProc{cmd: cmd, log: &procLog{}}
	addrc := make(chan string, 1)
	scanned := make(chan struct{})
	p.exited = scanned
	go func() {
		defer close(scanned)
		re := regexp.MustCompile(`http=(127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			p.log.add(sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !found {
				found = true
				addrc <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-scanned
		if p.log.contains("WARNING: DATA RACE") {
			t.Errorf("relayd %v reported a data race", args)
		}
		if t.Failed() {
			t.Logf("relayd %v:\n%s", args, p.log.report(40))
		}
	})
	select {
	case p.addr = <-addrc:
		return p
	case <-scanned:
		t.Fatalf("relayd exited before listening")
	case <-time.After(20 * time.Second):
		t.Fatal("relayd did not start")
	}
	return nil
}

func api(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	tok, _ := signaling.NewTokens([]byte(restartSecret)).Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// Kill the server with SIGKILL right after it answered an accept; a new
// server on the same --data-dir has the invitation as answered, then closed
// by the end of its room: the room that was live is ended (as a graceful
// stop would have ended it), so the accepted invitation is removed. Had the
// accept been lost, it would be a pending one cancelled.
func TestInvitationSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "relayd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	addr, cmd := startRelayd(t, bin, dir)
	base := "http://" + addr

	// The host goes live, so the room is live when the server dies.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, _ := signaling.NewTokens([]byte(restartSecret)).Issue(signaling.TokenSpec{Identity: "alice", Room: "show", Role: "host", TTL: time.Hour})
	host, err := client.Dial(ctx, base, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.Join(ctx); err != nil {
		t.Fatal(err)
	}
	pub, _ := client.NewSyntheticPublisher(client.PublisherOptions{})
	if err := host.Publish(ctx, pub.Tracks()...); err != nil {
		t.Fatal(err)
	}
	pub.Start()
	defer pub.Stop()
	if _, err := host.WaitNotification(ctx, "room.updated", nil); err != nil {
		t.Fatal(err)
	}

	code, inv := api(t, "POST", base+"/v1/rooms/show/invitations", `{"user":"bob"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, inv)
	}
	code, accepted := api(t, "POST", base+"/v1/invitations/"+inv["id"].(string)+"/accept", "")
	if code != 200 || accepted["status"] != "accepted" {
		t.Fatalf("accept: %d %v", code, accepted)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL) // no clean stop
	_ = cmd.Wait()
	pub.Stop()
	_ = host.Close()

	addr2, _ := startRelayd(t, bin, dir)
	base2 := "http://" + addr2
	code, list := api(t, "GET", base2+"/v1/users/bob/invitations", "")
	if code != 200 {
		t.Fatalf("list after restart: %d %v", code, list)
	}
	got := list["invitations"].([]any)
	if len(got) != 1 {
		t.Fatalf("invitations after restart: %v", got)
	}
	after := got[0].(map[string]any)
	for _, k := range []string{"id", "room", "user", "host", "broadcastId", "createdAt", "expiresAt"} {
		if after[k] != accepted[k] {
			t.Errorf("invitation's %s changed across the crash: %v -> %v", k, accepted[k], after[k])
		}
	}
	if after["status"] != "removed" {
		t.Errorf("invitation after the crash: %v, want removed (accepted, then its room ended)", after)
	}
	code, room := api(t, "GET", base2+"/v1/rooms/show", "")
	if code != 200 || room["status"] != "ended" {
		t.Fatalf("room after restart: %d %v", code, room)
	}
}
