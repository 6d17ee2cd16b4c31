package web_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/relaysfu/relayd/app"
	"github.com/relaysfu/relayd/sfu"
	"github.com/relaysfu/relayd/signaling"
)

// stack is the real relayd on loopback: sfu on an ephemeral UDP port with
// loopback-only ICE, signaling for /v1/ and the probes, web for the rest.
type stack struct {
	URL    string
	SFU    *sfu.SFU
	Tokens *signaling.Tokens
}

func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackWrapped(t, nil)
}

// testLogger is the server's logger: debug lines on stderr with
// RELAYD_TEST_LOG set, nothing otherwise.
func testLogger() *slog.Logger {
	if os.Getenv("RELAYD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newStackWrapped is newStack with wrap around the stack's HTTP handler
// (nil: none), for a test to stand in for an API the server lacks.
func newStackWrapped(t *testing.T, wrap func(h http.Handler, tokens *signaling.Tokens) http.Handler) *stack {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{
		Secret: []byte("browser-test-secret-0123456789"), UDPConn: udp, LoopbackOnly: true,
		DataDir: t.TempDir(), MaxCohosts: 8, MaxRelayDestinations: 4,
		ReconnectGrace: 30 * time.Second, InvitationTTL: 10 * time.Minute, Dev: true,
		Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = a.Handler
	if wrap != nil {
		h = wrap(h, a.Tokens)
	}
	hs := httptest.NewUnstartedServer(h)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() {
		a.Close(5 * time.Second)
		hs.Close()
		_ = udp.Close()
	})
	return &stack{URL: hs.URL, SFU: a.SFU, Tokens: a.Tokens}
}

// browserFlags are exactly those of BROWSER_TESTING.md (plus what chromedp
// itself adds to drive the browser: --remote-debugging-pipe, about:blank).
func browserFlags() []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.Flag("headless", "new"),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
	}
}

// browser is one headless Chromium with its own profile, and the pages
// (tabs) a test opened in it.
type browser struct {
	t       *testing.T
	ctx     context.Context
	shots   string
	profile string // --user-data-dir

	mu    sync.Mutex
	pages []*page
}

// page is one tab.
type page struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc // closes the tab
	b      *browser

	mu      sync.Mutex
	console []string
}

var chromiumTmp = regexp.MustCompile(`^/tmp/org\.chromium\.Chromium\.[A-Za-z0-9]+$`)

// chromiumTmpDir is the /tmp/org.chromium.Chromium.* folder Chromium made
// for the browser of profile (one per launch, whatever TMPDIR says): the
// profile's SingletonSocket links into it. Only that folder is ours; other
// test processes may run browsers at the same time.
func chromiumTmpDir(profile string) string {
	link, err := os.Readlink(filepath.Join(profile, "SingletonSocket"))
	if err != nil {
		return ""
	}
	if dir := filepath.Dir(link); chromiumTmp.MatchString(dir) {
		return dir
	}
	return ""
}

// killByUserDataDir kills the processes started with our unique profile
// directory (Chromium's children can outlive its main process).
func killByUserDataDir(dir string) {
	want := []byte("--user-data-dir=" + dir)
	for pass := 0; pass < 3; pass++ {
		entries, _ := os.ReadDir("/proc")
		found := 0
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil {
				continue
			}
			for _, arg := range bytes.Split(cmdline, []byte{0}) {
				if bytes.Equal(arg, want) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					found++
					break
				}
			}
		}
		if found == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newBrowser starts Chromium, or skips the test when it is not installed.
// Everything is cleaned up at the end: the browser and its children, its
// profile, its /tmp folder; screenshots of every page are taken first, and
// kept (with their path printed) when the test failed.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	return newBrowserAt(t, "")
}

// chromiumPath is Chromium's path, or the test skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not found in PATH: install it with `apt-get install -y chromium` to run the browser tests (.ci/run does)")
	}
	return path
}

// newBrowserAt is newBrowser with another program in Chromium's place
// (a wrapper that starts it in a lab namespace; "" is chromium itself)
// and extra flags.
func newBrowserAt(t *testing.T, path string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	if path == "" {
		path = chromiumPath(t)
	}
	profile := t.TempDir()
	var tmpDir string
	opts := append(append(browserFlags(), extra...), chromedp.ExecPath(path), chromedp.UserDataDir(profile))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		killByUserDataDir(profile)
		if tmpDir != "" {
			_ = os.RemoveAll(tmpDir)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	tmpDir = chromiumTmpDir(profile)
	shots, err := os.MkdirTemp("", "relayd-web-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, shots: shots, profile: profile}
	t.Cleanup(func() { b.finish() }) // runs before the browser closes
	return b
}

// finish screenshots every page, then keeps the screenshots (failure, or
// RELAYD_KEEP_SCREENSHOTS set) or removes them.
func (b *browser) finish() {
	b.mu.Lock()
	pages := append([]*page(nil), b.pages...)
	b.mu.Unlock()
	for _, p := range pages {
		p.snapshot(p.name)
	}
	for _, p := range pages {
		p.cancel()
	}
	if b.t.Failed() {
		for _, p := range pages {
			p.mu.Lock()
			for _, line := range p.console {
				b.t.Logf("[%s console] %s", p.name, line)
			}
			p.mu.Unlock()
		}
	}
	if b.t.Failed() || os.Getenv("RELAYD_KEEP_SCREENSHOTS") != "" {
		b.t.Logf("screenshots of the pages: %s", b.shots)
		return
	}
	_ = os.RemoveAll(b.shots)
}

// open loads url in a new tab named name (the screenshot's file name).
func (b *browser) open(name, url string) *page {
	b.t.Helper()
	ctx, cancelTab := chromedp.NewContext(b.ctx)
	p := &page{name: name, ctx: ctx, cancel: cancelTab, b: b}
	err := chromedp.Listen(ctx, func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			parts := make([]string, 0, len(e.Args))
			for _, a := range e.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			line = string(e.Type) + ": " + strings.Join(parts, " ")
		case *runtime.EventExceptionThrown:
			line = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				line += " " + e.ExceptionDetails.Exception.Description
			}
		default:
			return
		}
		p.mu.Lock()
		p.console = append(p.console, line)
		p.mu.Unlock()
	})
	if err != nil {
		b.t.Fatalf("open %s: %v", name, err)
	}
	b.mu.Lock()
	b.pages = append(b.pages, p)
	b.mu.Unlock()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1280, 860), chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("open %s (%s): %v", name, url, err)
	}
	return p
}

// snapshot writes a screenshot of the page now, as name.png.
func (p *page) snapshot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.b.t.Logf("screenshot of %s: %v", p.name, err)
		return
	}
	_ = os.WriteFile(filepath.Join(p.b.shots, name+".png"), buf, 0o644)
}

// eval runs a JS expression (awaiting a promise) and decodes its value.
func eval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// must runs a JS statement and fails the test on error.
func (p *page) must(js string) {
	p.b.t.Helper()
	if _, err := eval[bool](p, "(() => { "+js+" ; return true })()"); err != nil {
		p.b.t.Fatalf("%s: %s: %v", p.name, js, err)
	}
}

// click clicks the element matching a CSS selector.
func (p *page) click(selector string) {
	p.b.t.Helper()
	p.must(fmt.Sprintf(`const sel = %q, e = document.querySelector(sel); if (!e) throw new Error("no element " + sel); if (e.disabled) throw new Error(sel + " is disabled"); e.click()`, selector))
}

// fill sets an input's value.
func (p *page) fill(selector, value string) {
	p.b.t.Helper()
	p.must(fmt.Sprintf(`document.querySelector(%q).value = %q`, selector, value))
}

// waitFor polls a boolean JS expression until it is true; on timeout it
// fails with what, and the page's visible notice if any.
func (p *page) waitFor(what, expr string, timeout time.Duration) {
	p.b.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := eval[bool](p, "(async () => !!("+expr+"))()")
		if err == nil && ok {
			if d := time.Since(start); d > 2*time.Second {
				p.b.t.Logf("%s: waited %v for %s", p.name, d.Round(100*time.Millisecond), what)
			}
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	notice, _ := eval[string](p, `[...document.querySelectorAll(".notice:not([hidden])")].map(n => n.textContent).join(" | ")`)
	p.b.t.Fatalf("%s: timed out after %v waiting for %s (last error: %v; page notices: %q)", p.name, timeout, what, lastErr, notice)
}

// framesDecoded sums framesDecoded of the page's received video (getStats,
// inbound-rtp), for the tracks of identity ("" = all).
func (p *page) framesDecoded(identity string) int {
	p.b.t.Helper()
	js := fmt.Sprintf(`(async () => {
		if (!window.app || !app.client) return 0;
		const stats = await app.client.videoStats();
		return stats.filter(s => %q === "" || s.participant === %q).reduce((a, s) => a + s.framesDecoded, 0);
	})()`, identity, identity)
	n, err := eval[int](p, js)
	if err != nil {
		p.b.t.Fatalf("%s: framesDecoded: %v", p.name, err)
	}
	return n
}

// waitDecoding waits until the page decodes identity's video, then checks
// that frames keep coming (not only "connected").
func (p *page) waitDecoding(identity string, timeout time.Duration) {
	p.b.t.Helper()
	deadline := time.Now().Add(timeout)
	first := 0
	for time.Now().Before(deadline) {
		if first = p.framesDecoded(identity); first > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if first == 0 {
		p.b.t.Fatalf("%s: no video frame of %q decoded in %v", p.name, identity, timeout)
	}
	// The fake camera sends ~20 fps: 5 more frames take a quarter of a
	// second. A simulcast viewer's first seconds may hold a switch up a
	// layer (it waits for that layer's keyframe): up to 2 s is allowed.
	start := time.Now()
	second := first
	for time.Since(start) < 2*time.Second && second-first < 5 {
		time.Sleep(100 * time.Millisecond)
		second = p.framesDecoded(identity)
	}
	if second-first < 5 {
		p.b.t.Fatalf("%s: video of %q stalled: %d then %d frames decoded 2 s later", p.name, identity, first, second)
	}
	p.b.t.Logf("%s: %s's video decoding: %d frames, +%d in %v", p.name, identity, first, second-first, time.Since(start).Round(100*time.Millisecond))
}
