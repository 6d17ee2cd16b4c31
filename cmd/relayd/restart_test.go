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
	"syscall"
	"testing"
	"time"

	"github.com/relaysfu/relayd/bench/client"
	"github.com/relaysfu/relayd/signaling"
)

const restartSecret = "restart-test-secret"

// startRelayd runs the built binary on dir and returns its HTTP address.
func startRelayd(t *testing.T, bin, dir string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, "--secret", restartSecret, "--listen", "127.0.0.1:0", "--udp-port", "0", "--data-dir", dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addrc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`http=(127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addrc:
		return a, cmd
	case <-time.After(20 * time.Second):
		t.Fatal("relayd did not start")
	}
	return "", nil
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
// server on the same --data-dir has the invitation exactly as answered, and
// the room that was live is ended.
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
	a, _ := json.Marshal(accepted)
	b, _ := json.Marshal(got[0])
	if string(a) != string(b) {
		t.Fatalf("invitation changed across the crash:\nbefore %s\nafter  %s", a, b)
	}
	code, room := api(t, "GET", base2+"/v1/rooms/show", "")
	if code != 200 || room["status"] != "ended" {
		t.Fatalf("room after restart: %d %v", code, room)
	}
}
