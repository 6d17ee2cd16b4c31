package bench

// RunLab: one relaybench run in the network lab (netlab). The server runs
// in the lab's server namespace; the publisher, each group of viewers and
// the browser viewer each run as a child process (labchild.go,
// labbrowser.go) in a client namespace of their own, behind their group's
// profile. Healthy viewers (--viewers) are a group like the others, in a
// namespace with no profile, so every group takes the same path.
//
//  1. make the lab: client 1 the publisher, then one client per viewer
//     group (healthy first), then the browser;
//  2. start relayd in the server namespace on 198.18.0.1; wait for /readyz
//     (the bench reaches it with netlab's DialContext);
//  3. start the publisher and wait until it publishes; then every viewer
//     group and the browser at once, and wait until each has its viewers
//     joined and their first frames (or the first-frame timeout);
//  4. warm up; open the window a moment in the future, the same for every
//     child; sample the server and the machine at its start and end;
//  5. collect each child's report (sent labGrace after the window), tell
//     the children to leave, stop relayd, remove the lab;
//  6. merge the reports into one, split per group.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relaysfu/relayd/netlab"
	"github.com/relaysfu/relayd/signaling"
)

// ViewerNet is one group of viewers behind a network profile
// (--viewer-net N:PROFILE).
type ViewerNet struct {
	Viewers int
	Profile netlab.Profile
	// Transport forces the group's viewers onto "udp", "tcp" (ICE-TCP)
	// or "turn-udp", "turn-tcp", "turn-tls" (labtransport.go); "": UDP.
	Transport string
	Timing    // at=, lift=, dest (labnet.go)
}

// ParseViewerNet reads "N:PROFILE", e.g. "20:cap=600kbit,loss=2%" or
// "10:udp=blocked,transport=tcp" (PROFILE as netlab.ParseProfile reads
// it, plus the bench's own keys: transport=, labtransport.go, and at=D,
// lift=D, dest and quality=Q, see Timing).
func ParseViewerNet(s string) (ViewerNet, error) {
	ns, prof, ok := strings.Cut(s, ":")
	if !ok {
		return ViewerNet{}, fmt.Errorf("--viewer-net %q: want N:PROFILE, e.g. 20:cap=600kbit,loss=2%%", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil || n < 1 {
		return ViewerNet{}, fmt.Errorf("--viewer-net %q: %q is not a number of viewers (1 or more)", s, ns)
	}
	prof, tm, err := parseTiming(prof)
	if err != nil {
		return ViewerNet{}, fmt.Errorf("--viewer-net %q: %w", s, err)
	}
	p, transport, err := splitLabNet(prof)
	if err != nil {
		return ViewerNet{}, fmt.Errorf("--viewer-net %q: %w", s, err)
	}
	return ViewerNet{Viewers: n, Profile: p, Transport: transport, Timing: tm}, nil
}

// LabMode reports whether the run happens in the network lab.
func (c *Config) LabMode() bool {
	return c.Lab || len(c.ViewerNets) > 0 || c.PublisherNet != "" || c.BrowserViewer != "" || c.Simulcast
}

// checkLab checks what a lab run supports: one room, one publisher, a
// server the bench starts itself (it must run in the lab's server
// namespace), and at most netlab.MaxClients groups.
func (c *Config) checkLab() error {
	switch {
	case c.URL != "":
		return errors.New("the network lab needs --spawn: the server runs inside the lab (--url reaches a server outside it)")
	case c.Nodes > 2 || (c.Nodes == 2 && c.Relays != 1):
		return errors.New("--nodes 2 (the lab's only cluster) needs --relays 1: the relay destination room is on the second node")
	case c.Rooms != 1 || c.Publishers != 1 || c.Cohosts != 0 || c.Relays > 1:
		return errors.New("the network lab runs one room with one publisher (and with --relays 1 its relay destination room): --rooms, --publishers, --cohosts and --relays above 1 are not supported with it")
	case c.Churn != 0 || c.Ramp:
		return errors.New("the network lab does not support --churn or --ramp")
	case c.Viewers == 0 && len(c.ViewerNets) == 0 && c.BrowserViewer == "":
		return errors.New("the network lab needs viewers: --viewers, --viewer-net or --browser-viewer")
	case len(c.ViewerNets)+3 > netlab.MaxClients:
		return fmt.Errorf("at most %d --viewer-net groups", netlab.MaxClients-3)
	case c.FirstFrameTimeout < time.Second:
		return errors.New("--first-frame-timeout must be at least 1s")
	case c.Viewers > netlab.MaxLinks:
		return fmt.Errorf("the network lab gives each viewer a link of its own: at most %d viewers per group", netlab.MaxLinks)
	}
	for _, vn := range c.ViewerNets {
		if vn.Viewers > netlab.MaxLinks {
			return fmt.Errorf("the network lab gives each viewer a link of its own: at most %d viewers per group", netlab.MaxLinks)
		}
	}
	if _, _, err := splitLabNet(c.PublisherNet); err != nil {
		return fmt.Errorf("--publisher-net: %w", err)
	}
	if err := c.checkTiming(); err != nil {
		return err
	}
	if c.BrowserViewer != "" {
		if _, err := netlab.ParseProfile(c.BrowserViewer); err != nil {
			return fmt.Errorf("--browser-viewer (Chromium takes whatever path its network leaves: no transport=): %w", err)
		}
	}
	return nil
}

// labGrace is how long after the window a packet sent in it may still
// arrive and count (retransmissions through a capped queue included); the
// loopback bench's is 1 s, a 200 ms queue and ten NACK rounds need more.
const labGrace = 2 * time.Second

// labReadyMargin is how long, beyond the joins and the first-frame timeout,
// the parent waits for a group to be ready: start-up of the process, and of
// Chromium.
const labReadyMargin = 30 * time.Second

// labWindowLead is how far in the future the window opens when announced:
// every child must have it before it starts.
const labWindowLead = 500 * time.Millisecond

// labGroup is one child process of the run and what it reported.
type labGroup struct {
	name    string
	role    string // childPublisher, childViewers or childBrowser
	profile netlab.Profile
	// transport is forced on the group's Go participants (labtransport.go)
	transport string
	ids       []string
	client    *netlab.Client
	timing    Timing // viewer groups: at=, lift=, dest (labnet.go)

	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	msgs   chan childMsg // protocol lines; closed when its stdout ends
	exited chan struct{}
	log    *logTail

	report *childMsg
}

// logTail keeps the last lines a child printed (stdout logs and stderr).
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	const keep = 30
	l.lines = append(l.lines, s)
	if len(l.lines) > keep {
		l.lines = l.lines[len(l.lines)-keep:]
	}
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return "(no output)"
	}
	return strings.Join(l.lines, "\n")
}

// failure describes a child that went wrong, with its last output.
func (g *labGroup) failure(what string, err error) error {
	return fmt.Errorf("%s (%s in %s): %s: %w; its last output:\n%s", g.name, g.role, g.client.NS(), what, err, g.log)
}

// start runs the group's child and sends it cfg.
func (g *labGroup) start(cfg childConfig) error {
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := g.client.GoCommand(ctx, g.role)
	if err != nil {
		cancel()
		return err
	}
	// A race-enabled binary (the tests) sleeps a second at exit otherwise.
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	if cfg.CAFile != "" {
		// The lab TURN server's certificate: Go's TLS trusts it (TURN
		// over TLS, transport=turn-tls).
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+cfg.CAFile)
	}
	g.log = &logTail{}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		return err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return fmt.Errorf("%s: starting %s: %w", g.name, g.role, err)
	}
	g.cmd, g.cancel, g.stdin = cmd, cancel, stdin
	g.msgs, g.exited = make(chan childMsg, 4), make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		defer close(g.msgs)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			m, ok, err := parseChildLine(sc.Text())
			switch {
			case err != nil:
				g.log.add(err.Error())
			case ok:
				g.msgs <- m
			default:
				g.log.add(sc.Text())
			}
		}
	})
	readers.Go(func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			g.log.add(sc.Text())
		}
	})
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		_ = cmd.Wait()
		close(g.exited)
	}()
	return g.send(cfg)
}

// send writes one JSON line to the child.
func (g *labGroup) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := g.stdin.Write(append(b, '\n')); err != nil {
		return g.failure("writing to it", err)
	}
	return nil
}

// await waits for the child's next message, of type want.
func (g *labGroup) await(ctx context.Context, want string, timeout time.Duration) (*childMsg, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m, ok := <-g.msgs:
		switch {
		case !ok:
			<-g.exited
			return nil, g.failure("waiting for "+want, fmt.Errorf("%w (%v)", errNoReport, g.cmd.ProcessState))
		case m.Type == "error":
			return nil, g.failure("waiting for "+want, childError(m.Error))
		case m.Type != want:
			return nil, g.failure("waiting for "+want, fmt.Errorf("got %q", m.Type))
		}
		return &m, nil
	case <-t.C:
		return nil, g.failure("waiting for "+want, fmt.Errorf("no answer in %v", timeout))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop tells the child to leave (stdin closed) and waits; past waitChild
// it is stopped (SIGTERM, then SIGKILL).
func (g *labGroup) stop() {
	if g.cmd == nil {
		return
	}
	_ = g.stdin.Close()
	select {
	case <-g.exited:
	case <-time.After(waitChild):
		g.cancel()
		<-g.exited
	}
	g.cancel()
	g.cmd = nil
}

// waitChild is how long a child may take to leave once told to.
const waitChild = 20 * time.Second

// errNoReport is a child that ended without its report.
var errNoReport = errors.New("ended without a report")

// labRun is one run's state in the parent.
type labRun struct {
	cfg   Config
	prog  *progress
	lab   *netlab.Lab
	srv   *spawned
	nodes labNodes // --nodes 2: the second node and Redis (labnodes.go)
	// destOnNode2: with --nodes 2, the destination room was found on node 2
	destOnNode2 bool
	tgt         *target
	room        string
	pub         *labGroup
	groups      []*labGroup // viewer groups, healthy first
	browse      *labGroup
	// turnDir holds the TURN server's certificate (caFile) and key;
	// turnArgs are node 1's TURN flags (labtransport.go)
	turnDir, caFile string
	turnArgs        []string
}

// RunLab runs cfg in the network lab and returns its report (also printed
// on stdout, and written to cfg.JSON when set). The program must have
// called RegisterLabChildren and netlab.MaybeRunChild (cmd/relaybench
// does); without root or iptables it fails with netlab's reason.
func RunLab(ctx context.Context, cfg Config, stdout, stderr io.Writer) (*LabReport, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	if !cfg.LabMode() {
		return nil, errors.New("not a lab scenario: use Run")
	}
	if err := netlab.Available(); err != nil {
		return nil, err
	}
	if cfg.BrowserViewer != "" && cfg.Chromium == "" {
		p, err := exec.LookPath("chromium")
		if err != nil {
			return nil, errors.New("--browser-viewer: chromium not found in PATH (apt-get install chromium, or --chromium PATH)")
		}
		cfg.Chromium = p
	}
	started := time.Now()
	prog := newProgress(stderr)
	var stopProg sync.Once
	defer stopProg.Do(prog.stop)

	lr := &labRun{cfg: cfg, prog: prog, room: "rb" + strconv.FormatInt(time.Now().UnixMilli()%1e9, 36)}
	defer lr.teardown()
	if err := lr.setup(ctx); err != nil {
		return nil, err
	}
	win, err := lr.measure(ctx)
	if err != nil {
		return nil, err
	}
	lr.teardown()
	rep, err := lr.buildReport(win, started)
	if err != nil {
		return nil, err
	}
	stopProg.Do(prog.stop)
	printLabTable(stdout, rep)
	if cfg.JSON != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(cfg.JSON, append(b, '\n'), 0o644)
		}
		if err != nil {
			return rep, fmt.Errorf("writing %s: %w", cfg.JSON, err)
		}
	}
	return rep, nil
}

// setup makes the lab, starts the server and the children, and waits until
// every group is ready.
func (lr *labRun) setup(ctx context.Context) error {
	cfg := lr.cfg
	pubNet, pubTransport, _ := splitLabNet(cfg.PublisherNet)
	lr.pub = &labGroup{name: "publisher", role: childPublisher, profile: pubNet, transport: pubTransport, ids: []string{lr.room + "-host"}}
	profiles := []netlab.Profile{pubNet}
	specs := cfg.ViewerNets
	if cfg.Viewers > 0 {
		specs = append([]ViewerNet{{Viewers: cfg.Viewers}}, specs...)
	}
	names := map[string]int{}
	for gi, vn := range specs {
		name := labNetString(vn.Profile, vn.Transport)
		if t := vn.Timing.String(); t != "" {
			name += "," + t
		}
		if gi == 0 && cfg.Viewers > 0 {
			name = "healthy"
		}
		names[name]++
		if k := names[name]; k > 1 {
			name += "#" + strconv.Itoa(k)
		}
		g := &labGroup{name: name, role: childViewers, profile: vn.Profile, transport: vn.Transport, timing: vn.Timing}
		for i := range vn.Viewers {
			g.ids = append(g.ids, fmt.Sprintf("%s-g%d-v%d", lr.room, gi+1, i+1))
		}
		lr.groups = append(lr.groups, g)
		if vn.At > 0 {
			profiles = append(profiles, netlab.Profile{}) // perfect until at= (scheduleNets)
		} else {
			profiles = append(profiles, vn.Profile)
		}
	}
	if cfg.BrowserViewer != "" {
		p, _ := netlab.ParseProfile(cfg.BrowserViewer)
		lr.browse = &labGroup{name: "browser", role: childBrowser, profile: p, ids: []string{lr.room + "-browser"}}
		profiles = append(profiles, p)
	}

	lr.prog.setPhase("making the lab")
	lab, err := netlab.New(ctx, netlab.Spec{Clients: profiles})
	if err != nil {
		return err
	}
	lr.lab = lab
	for i, g := range lr.all() {
		g.client = lab.Client(i + 1)
		// One link per participant: each has its own path and caps.
		for len(g.client.Addrs()) < len(g.ids) {
			if _, err := g.client.AddLink(ctx); err != nil {
				return err
			}
		}
	}

	lr.prog.setPhase("starting the server")
	if lr.turnDir, err = os.MkdirTemp("", "relaybench-turn-"); err != nil {
		return err
	}
	turnArgs, caFile, err := labTURN(lr.turnDir)
	if err != nil {
		return err
	}
	lr.caFile, lr.turnArgs = caFile, turnArgs
	if err := lr.startNodes(ctx); err != nil { // labnodes.go
		return err
	}
	srv := lr.srv
	lr.tgt = &target{baseURL: srv.baseURL, mint: secretMinter{signaling.NewTokens([]byte(srv.secret))}, proc: srv, hc: labHTTPClient(lab)}

	lr.prog.setPhase("publisher")
	if err := lr.startChild(ctx, lr.pub, "host"); err != nil {
		return err
	}
	if _, err := lr.pub.await(ctx, "ready", joinTimeout+labReadyMargin); err != nil {
		return err
	}
	if cfg.Relays > 0 {
		lr.prog.setPhase("relay into " + lr.destRoom())
		if err := lr.startLabRelay(ctx); err != nil {
			return err
		}
	}
	lr.prog.setPhase("joining the viewers")
	var waiting []*labGroup
	for _, g := range lr.all()[1:] {
		if err := lr.startChild(ctx, g, "viewer"); err != nil {
			return err
		}
		waiting = append(waiting, g)
	}
	for i, g := range waiting {
		var names []string
		for _, o := range waiting[i:] {
			names = append(names, o.name)
		}
		lr.prog.setPhase("joins and first frames (up to " + cfg.FirstFrameTimeout.String() + "): waiting for " + strings.Join(names, ", "))
		if _, err := g.await(ctx, "ready", joinTimeout+cfg.FirstFrameTimeout+labReadyMargin); err != nil {
			return err
		}
	}
	return lr.tgt.alive()
}

// all is every group: the publisher, the viewer groups, the browser.
func (lr *labRun) all() []*labGroup {
	out := append([]*labGroup{lr.pub}, lr.groups...)
	if lr.browse != nil {
		out = append(out, lr.browse)
	}
	return out
}

// startChild mints the group's tokens (role "host" or "viewer") and starts
// its child.
func (lr *labRun) startChild(ctx context.Context, g *labGroup, role string) error {
	room, base := lr.room, lr.srv.baseURL
	if g.timing.Dest {
		room, base = lr.destRoom(), lr.destURL()
	}
	cfg := childConfig{
		Group: g.name, BaseURL: base, Room: room, Identities: g.ids,
		VideoBitrate: lr.cfg.VideoBitrate, FPS: lr.cfg.FPS, Audio: lr.cfg.Audio,
		JoinConcurrency: lr.cfg.JoinConcurrency, FirstFrameTimeout: int64(lr.cfg.FirstFrameTimeout),
		Chromium: lr.cfg.Chromium, Transport: g.transport, CAFile: lr.caFile,
		Simulcast: lr.cfg.Simulcast, LayerBitrates: lr.cfg.LayerBitrates,
		AtNS: int64(g.timing.At), LiftNS: int64(g.timing.Lift), Quality: g.timing.Quality,
	}
	for _, id := range g.ids {
		tok, err := lr.tgt.mint.token(ctx, id, room, role)
		if err != nil {
			return err
		}
		cfg.Tokens = append(cfg.Tokens, tok)
	}
	for _, a := range g.client.Addrs() {
		cfg.Addrs = append(cfg.Addrs, a.String())
	}
	return g.start(cfg)
}

// labWindow is what the parent measured around the window.
type labWindow struct {
	start, end     time.Time
	srv0, srv1     serverSample
	mach0, mach1   machineCPU
	bench0, bench1 time.Duration // CPU of the bench: this process and every child's process tree
}

// measure warms up, runs the window and collects every child's report.
func (lr *labRun) measure(ctx context.Context) (*labWindow, error) {
	lr.prog.setPhase("warm-up")
	if err := sleepCtx(ctx, lr.cfg.Warmup); err != nil {
		return nil, err
	}
	w := &labWindow{start: time.Now().Add(labWindowLead)}
	w.end = w.start.Add(lr.cfg.Duration)
	cmd := windowCmd{Cmd: "window", StartNS: w.start.UnixNano(), EndNS: w.end.UnixNano(), GraceNS: int64(labGrace)}
	for _, g := range lr.all() {
		if err := g.send(cmd); err != nil {
			return nil, err
		}
	}
	if err := sleepUntil(ctx, cmd.StartNS); err != nil {
		return nil, err
	}
	w.mach0, w.bench0 = readMachineCPU(), lr.benchCPU()
	w.srv0 = lr.tgt.sample(ctx)
	lr.prog.window(w.start, lr.cfg.Duration)
	if err := lr.scheduleNets(ctx, w.start); err != nil {
		return nil, err
	}
	if err := sleepUntil(ctx, cmd.EndNS); err != nil {
		return nil, err
	}
	w.mach1, w.bench1 = readMachineCPU(), lr.benchCPU()
	w.srv1 = lr.tgt.sample(ctx)
	lr.prog.window(time.Time{}, 0)
	lr.prog.setPhase("collecting the reports")
	for _, g := range lr.all() {
		m, err := g.await(ctx, "report", labGrace+labReadyMargin)
		if err != nil {
			return nil, err
		}
		g.report = m
	}
	return w, lr.tgt.alive()
}

// benchCPU is the CPU time of this process and of every child's process
// tree (Chromium's processes are the browser child's descendants).
func (lr *labRun) benchCPU() time.Duration {
	total := selfCPU()
	tree := processTree()
	for _, g := range lr.all() {
		if g.cmd != nil && g.cmd.Process != nil {
			for _, pid := range tree.descendants(g.cmd.Process.Pid) {
				if d, err := procCPU(pid); err == nil {
					total += d
				}
			}
		}
	}
	return total
}

// teardown stops the children, the server and the lab. Idempotent.
func (lr *labRun) teardown() {
	lr.prog.setPhase("teardown")
	var wg sync.WaitGroup
	for _, g := range lr.all() {
		if g != nil {
			wg.Go(g.stop)
		}
	}
	wg.Wait()
	if lr.srv != nil {
		lr.srv.stop()
		lr.srv.removeDir()
		lr.srv = nil
	}
	lr.stopNodes() // labnodes.go: the second node and Redis
	if lr.tgt != nil {
		lr.tgt.hc.CloseIdleConnections()
	}
	if lr.lab != nil {
		if err := lr.lab.Close(); err != nil {
			lr.prog.logf("removing the lab: %v", err)
		}
		lr.lab = nil
	}
	if lr.turnDir != "" {
		_ = os.RemoveAll(lr.turnDir)
		lr.turnDir = ""
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	return sleepUntil(ctx, time.Now().Add(d).UnixNano())
}

// labHTTPClient reaches the server inside the lab from this process.
func labHTTPClient(lab *netlab.Lab) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy: nil, DialContext: lab.Server().DialContext,
			MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second,
		},
	}
}

// labServerPort is the port relayd listens on (HTTP) in the server
// namespace, and the next one its media (UDP); the namespace is new, so
// nothing else has them.
const labServerPort = 8800

// spawnInLab starts relayd in the lab's server namespace on
// 198.18.0.1:port (UDP media on port+1) with a fresh data directory and
// secret (or the given one: a cluster's nodes share it), and waits until
// it is ready.
func spawnInLab(ctx context.Context, lab *netlab.Lab, path string, extra []string, port int, secret string) (*spawned, error) {
	bin, err := resolveBinary(path)
	if err != nil {
		return nil, err
	}
	host := netlab.ServerAddr().String()
	s, err := newSpawned("http://" + host + ":" + strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	if secret != "" {
		s.secret = secret
	}
	args := append([]string{
		"--secret", s.secret,
		"--listen", host + ":" + strconv.Itoa(port),
		"--udp-port", strconv.Itoa(port + 1),
		"--data-dir", s.dataDir(),
	}, extra...)
	cmd := lab.Server().Command(context.Background(), bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.launch(cmd); err != nil {
		return nil, err
	}
	hc := labHTTPClient(lab)
	defer hc.CloseIdleConnections()
	if err := s.waitReady(ctx, hc); err != nil {
		s.stop()
		tail := s.logTail(20)
		s.removeDir()
		return nil, fmt.Errorf("%w; server log:\n%s", err, tail)
	}
	return s, nil
}

// procTree maps a process to its children.
type procTree map[int][]int

// processTree reads every process's parent from /proc.
func processTree() procTree {
	t := procTree{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if i < 0 || len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			t[ppid] = append(t[ppid], pid)
		}
	}
	return t
}

// descendants is pid and every process below it.
func (t procTree) descendants(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out) && i < 10000; i++ {
		out = append(out, t[out[i]]...)
	}
	return out
}

// ratioOf is a/b as a JSON number (null when b is 0).
func ratioOf(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	return num(a / b)
}
