package bench

// The lab's browser viewer: headless Chromium, started by a child process
// inside its client namespace (so the browser is inside too), watching the
// room on relayd's own viewer page (/watch); its getStats (inbound-rtp
// video) at the window's start and end go in the report. Chromium decodes
// the clip publisher's VP8, so its frames decoded, freezes and resolution
// are those of a real player.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaysfu/relayd/netlab"
)

// browserFlags are those of /work/shared/BROWSER_TESTING.md, with the
// lab's server as the one host Chromium may resolve.
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
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE "+netlab.ServerAddr().String()),
		// The lab TURN server's certificate is made for the run (TURN
		// over TLS on 443); nothing else is reached over TLS.
		chromedp.Flag("ignore-certificate-errors", true),
	}
}

// statsJS reads the page's subscriber getStats: the inbound video stream's
// fields of videoStats, or null before there is one.
const statsJS = `(async () => {
	if (!window.app || !app.client) return null;
	const r = await app.client.getStats("subscriber");
	if (!r) return null;
	let v = null;
	r.forEach(s => { if (s.type === "inbound-rtp" && s.kind === "video") v = s; });
	if (!v) return null;
	const out = {};
	for (const k of ["framesDecoded", "framesReceived", "framesDropped", "keyFramesDecoded", "freezeCount",
		"totalFreezesDuration", "pauseCount", "totalPausesDuration", "packetsReceived", "packetsLost",
		"bytesReceived", "nackCount", "pliCount", "firCount", "jitterBufferDelay", "jitterBufferEmittedCount",
		"frameWidth", "frameHeight", "framesPerSecond"]) out[k] = v[k] || 0;
	return JSON.stringify(out);
})()`

// transportJS reads how the page's media arrives, as its debug info shows
// it (web/static/app.js transportOf): the tile grid's data-transport.
const transportJS = `(() => { const n = document.querySelector("[data-transport]"); return n ? n.dataset.transport : ""; })()`

// transport reads the page's transport ("" before it shows one).
func (b *labBrowser) transport() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](transportJS))
	if err != nil {
		return ""
	}
	return s
}

// browserPoll is how often the first decoded frame is looked for.
const browserPoll = 100 * time.Millisecond

// labBrowser is one headless Chromium with its own profile.
type labBrowser struct {
	ctx     context.Context
	cancel  func()
	profile string
}

func startBrowser(ctx context.Context, path string) (*labBrowser, error) {
	profile, err := os.MkdirTemp("", "relaybench-chromium-")
	if err != nil {
		return nil, err
	}
	opts := append(browserFlags(), chromedp.ExecPath(path), chromedp.UserDataDir(profile))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	b := &labBrowser{ctx: bctx, profile: profile}
	b.cancel = func() {
		cancelBrowser()
		cancelAlloc()
	}
	if err := chromedp.Do(bctx); err != nil {
		b.close()
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return b, nil
}

var chromiumTmp = regexp.MustCompile(`^/tmp/org\.chromium\.Chromium\.[A-Za-z0-9]+$`)

// close stops the browser and everything it left: its processes (found by
// the profile on their command line: Chromium's children can outlive it),
// its profile and its /tmp/org.chromium.Chromium.* folder.
func (b *labBrowser) close() {
	tmp := ""
	if link, err := os.Readlink(filepath.Join(b.profile, "SingletonSocket")); err == nil && chromiumTmp.MatchString(filepath.Dir(link)) {
		tmp = filepath.Dir(link)
	}
	b.cancel()
	killByArg("--user-data-dir=" + b.profile)
	if tmp != "" {
		_ = os.RemoveAll(tmp)
	}
	_ = os.RemoveAll(b.profile)
}

// killByArg kills the processes with arg on their command line.
func killByArg(arg string) {
	want := []byte(arg)
	for range 3 {
		found := 0
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil {
				continue
			}
			for _, a := range bytes.Split(cmdline, []byte{0}) {
				if bytes.Equal(a, want) {
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

// stats reads the page's inbound video stats (nil before there are any).
func (b *labBrowser) stats() (*videoStats, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[*string](statsJS, chromedp.EvalAwaitPromise))
	if err != nil || raw == nil {
		return nil, err
	}
	var s videoStats
	if err := json.Unmarshal([]byte(*raw), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// runBrowserChild watches the room in Chromium and reports its getStats.
func runBrowserChild(ctx context.Context, _ []string) error {
	return childMain(ctx, func(ctx context.Context, cio *childIO) error {
		cfg, err := readConfig(cio, 1)
		if err != nil {
			return err
		}
		b, err := startBrowser(ctx, cfg.Chromium)
		if err != nil {
			return err
		}
		defer b.close()
		page := cfg.BaseURL + "/watch?room=" + url.QueryEscape(cfg.Room) + "&identity=" + url.QueryEscape(cfg.Identities[0]) +
			"&token=" + url.QueryEscape(cfg.Tokens[0])
		f := &browserFigures{}
		start := time.Now()
		nctx, cancel := context.WithTimeout(b.ctx, joinTimeout)
		err = chromedp.Do(nctx, chromedp.Navigate(page))
		cancel()
		if err != nil {
			f.JoinError = "loading the page: " + err.Error()
		} else {
			f.JoinError = b.awaitFirstFrame(ctx, start, time.Duration(cfg.FirstFrameTimeout), f)
		}
		if err := cio.send(childMsg{Type: "ready"}); err != nil {
			return err
		}

		var w window
		cmd, err := awaitWindow(cio, &w)
		if err != nil {
			return err
		}
		if err := sleepUntil(ctx, cmd.StartNS); err != nil {
			return err
		}
		s0, err0 := b.stats()
		if err := sleepUntil(ctx, cmd.EndNS); err != nil {
			return err
		}
		s1, err1 := b.stats()
		f.Transport = b.transport()
		switch {
		case s1 != nil && s0 != nil:
			d := s1.delta(*s0)
			f.Stats = &d
		case s1 != nil: // the stream began inside the window
			f.Stats = s1
		}
		if f.JoinError == "" && f.Stats == nil {
			f.JoinError = fmt.Sprintf("no video stats: %v", errors.Join(err0, err1))
		}
		if err := sleepUntil(ctx, cmd.EndNS+cmd.GraceNS); err != nil {
			return err
		}
		if err := cio.send(childMsg{Type: "report", Browser: f}); err != nil {
			return err
		}
		drainUntilEOF(ctx, cio)
		return nil
	})
}

// awaitFirstFrame polls until the page decoded a frame (setting f.Joined
// and f.FirstFrameMS) or the timeout after start passed; it returns why
// not, or "".
func (b *labBrowser) awaitFirstFrame(ctx context.Context, start time.Time, timeout time.Duration, f *browserFigures) string {
	deadline := start.Add(timeout)
	for time.Now().Before(deadline) {
		if s, err := b.stats(); err == nil && s != nil && s.FramesDecoded > 0 {
			f.Joined = true
			f.FirstFrameMS = num(float64(time.Since(start)) / float64(time.Millisecond))
			return ""
		}
		select {
		case <-time.After(browserPoll):
		case <-ctx.Done():
			return ctx.Err().Error()
		}
	}
	return fmt.Sprintf("no frame decoded within %v", timeout)
}
