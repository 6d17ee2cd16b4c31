package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestDevSecretFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "there", "yet")
	s1, created, err := devSecret(dir)
	if err != nil || !created {
		t.Fatalf("first start: %q created=%v err=%v, want a new secret", s1, created, err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{48}$`).MatchString(s1) {
		t.Errorf("secret %q: want 48 hex digits", s1)
	}
	path := devSecretPath(dir)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v err %v, want 0600", path, fi.Mode().Perm(), err)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("data dir made with mode %v (err %v), want 0700", di.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d files, want only %s (no temporary file left)", len(entries), devSecretFile)
	}

	s2, created, err := devSecret(dir)
	if err != nil || created || s2 != s1 {
		t.Fatalf("second start: %q created=%v err=%v, want the kept %q", s2, created, err, s1)
	}

	// A copy that widened the mode: narrowed, same secret.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, _, err := devSecret(dir); err != nil || s != s1 {
		t.Fatalf("after chmod 0644: %q err %v", s, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after a read, want 0600 again", fi.Mode().Perm())
	}

	// An empty file: a new secret.
	if err := os.WriteFile(path, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3, created, err := devSecret(dir)
	if err != nil || !created || s3 == "" || s3 == s1 {
		t.Fatalf("empty file: %q created=%v err=%v, want a new secret", s3, created, err)
	}

	// A secret written by hand is kept as it is (spaces around it trimmed).
	if err := os.WriteFile(path, []byte("my own secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, created, err := devSecret(dir); err != nil || created || s != "my own secret" {
		t.Fatalf("hand-written file: %q created=%v err=%v", s, created, err)
	}
	if keptDevSecret(dir, "my own secret") != path || keptDevSecret(dir, "another") != "" {
		t.Errorf("keptDevSecret does not tell the kept secret from a given one")
	}
}

// A data dir that cannot hold the file: run fails with a clear error
// rather than run with a secret nobody can find again.
func TestDevSecretUnwritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := devSecret(file); err == nil {
		t.Fatal("a data dir that is a file: no error")
	}
}

// devRun runs relayd --dev on dataDir (secret: the --secret given, "" for
// none) and returns what it printed and a function that stops it.
func devRun(t *testing.T, dataDir, secret string) (out string, addr string, stop func()) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dev = true
	cfg.Secret = secret
	cfg.Listen = "127.0.0.1:0"
	cfg.UDPPort = 0
	cfg.DataDir = dataDir
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var buf syncBuffer
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &buf, runHooks{ready: func(a string) { addrc <- a }}) }()
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("run did not start")
	}
	return buf.String(), addr, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("run did not return")
		}
	}
}

// syncBuffer is a bytes.Buffer run may write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	printedAdmin  = regexp.MustCompile(`admin token: +(\S+)`)
	printedSecret = regexp.MustCompile(`secret: +(\S+)`)
	printedLobby  = regexp.MustCompile(`Open the lobby in your browser: +(http://\S+/)\n`)
)

// adminStatus is the HTTP status of GET /v1/rooms with token.
func adminStatus(t *testing.T, addr, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/rooms", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// --dev keeps its secret in the data dir: the admin token printed at the
// first start works after a restart, and the same secret is printed. A
// --secret given wins over the file, which stays as it was. The lobby URL
// is printed on its own line.
func TestDevSecretSurvivesRestart(t *testing.T) {
	defer goleak.VerifyNone(t)
	dataDir := t.TempDir()

	out1, addr1, stop1 := devRun(t, dataDir, "")
	m := printedAdmin.FindStringSubmatch(out1)
	s := printedSecret.FindStringSubmatch(out1)
	if m == nil || s == nil {
		stop1()
		t.Fatalf("no admin token or secret in the --dev output:\n%s", out1)
	}
	admin, secret := m[1], s[1]
	if l := printedLobby.FindStringSubmatch(out1); l == nil || l[1] != "http://"+addr1+"/" {
		t.Errorf("the lobby URL http://%s/ is not printed on its own line:\n%s", addr1, out1)
	}
	if !strings.Contains(out1, "kept in "+devSecretPath(dataDir)) {
		t.Errorf("the output does not say where the secret is kept:\n%s", out1)
	}
	if code := adminStatus(t, addr1, admin); code != http.StatusOK {
		t.Errorf("first start: the printed admin token gets %d", code)
	}
	stop1()

	out2, addr2, stop2 := devRun(t, dataDir, "")
	if s2 := printedSecret.FindStringSubmatch(out2); s2 == nil || s2[1] != secret {
		t.Errorf("second start printed another secret:\n%s", out2)
	}
	if code := adminStatus(t, addr2, admin); code != http.StatusOK {
		t.Errorf("after a restart the admin token of the first start gets %d, want 200", code)
	}
	stop2()

	out3, addr3, stop3 := devRun(t, dataDir, "a-secret-given-on-the-command-line")
	if s3 := printedSecret.FindStringSubmatch(out3); s3 == nil || s3[1] != "a-secret-given-on-the-command-line" {
		t.Errorf("--secret given: another secret printed:\n%s", out3)
	}
	if code := adminStatus(t, addr3, admin); code != http.StatusUnauthorized {
		t.Errorf("--secret given: the kept secret's token gets %d, want 401 (the given secret wins)", code)
	}
	stop3()
	if kept, err := readDevSecret(devSecretPath(dataDir)); err != nil || kept != secret {
		t.Errorf("the kept secret changed to %q (err %v) while a --secret was given", kept, err)
	}
}
