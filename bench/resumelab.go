package bench

// RunResumeLab: what a dropped network does to a live show (protocol 1.1
// §5, issue 19), measured in the network lab. A host publishes in room A
// and relays into room B; a viewer watches each room, each in a client
// namespace of its own (with Nodes 2, room B's viewer talks to the second
// node of a two-node cluster, so the relay crosses nodes when the rooms
// are placed apart). Then, for each cycle:
//
//  1. the viewers note their keyframe count (mark);
//  2. the host's link is cut completely for Cut (iptables DROP in its
//     namespace, both ways), while the parent polls the relay's state;
//  3. the link is restored, and the host resumes its session, as the JS
//     client does when its network comes back: a new WebSocket with its
//     resume token, the server's subscriber offer and its own publisher
//     offer restarting ICE;
//  4. each viewer reports when its first keyframe at or after the restore
//     arrived: restore to first frame, in the room and in the relay's
//     destination.
//
// A handover cycle moves the host to a new address (a second veth, the
// old one removed) instead of cutting it. The last step may end the host
// for good (its child stops): the room must end host_timeout after the
// grace, as without resume. The viewers count any participant.left or
// participant.joined of the host: there must be none before that.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/netlab"
	"github.com/relaysfu/relayd/signaling"
)

// The resume lab's defaults: the contract's cut, and relayd's grace.
const (
	DefaultResumeCut   = 5 * time.Second
	DefaultResumeGrace = 30 * time.Second
)

// ResumeLabConfig is one resume lab run.
type ResumeLabConfig struct {
	Spawn    string        // the relayd binary
	Cycles   int           // cut and restore cycles (default 1)
	Cut      time.Duration // how long the link is cut (default 5s)
	Grace    time.Duration // --reconnect-grace (default 30s)
	Nodes    int           // 1, or 2: a cluster on a redis-server of its own, room B's viewer on the second node
	Handover bool          // one more cycle: the host moves to a new address
	Expire   bool          // at the end the host goes away for good: its room must end host_timeout
	// TokenTTL, when set, is the life of the host's token: shorter than
	// the run, the broadcast goes on past its expiry on token.refresh,
	// and later resumes use the refreshed token.
	TokenTTL time.Duration
	Log      io.Writer // progress lines; nil: none
}

// ResumeLabReport is what a run saw.
type ResumeLabReport struct {
	Nodes int `json:"nodes"`
	// CrossNode is whether rooms A and B were placed on different nodes:
	// the relay crossed nodes.
	CrossNode bool `json:"cross_node"`
	// RoomMS and DestMS are restore-to-first-frame times (ms) of each
	// cut cycle, at the viewer in the room and in the destination.
	RoomMS []float64 `json:"room_ms"`
	DestMS []float64 `json:"dest_ms"`
	// HandoverRoomMS and HandoverDestMS are the same for the handover
	// cycle (-1 when not run).
	HandoverRoomMS float64 `json:"handover_room_ms"`
	HandoverDestMS float64 `json:"handover_dest_ms"`
	// Resumed counts the host's resumes that resumed (of Cycles, plus the
	// handover).
	Resumed int `json:"resumed"`
	// Refreshed counts the host's resumes made with a token it got from
	// token.refresh (not the one it was given).
	Refreshed int `json:"refreshed"`
	// RelayNotRunning counts polls of the relay during the cuts that found
	// it, or a destination, in another state than running.
	RelayNotRunning int `json:"relay_not_running"`
	RelayPolls      int `json:"relay_polls"`
	// LeftJoined counts participant.left and participant.joined of the
	// host at the viewers before the end.
	LeftJoined int `json:"left_joined"`
	// Paused and Active count track.stream publisher_reconnecting notes
	// at the viewers.
	Paused int `json:"paused"`
	Active int `json:"active"`
	// PublisherICERestarts is relayd_ice_restarts_total{pc="publisher",
	// outcome="connected"}, summed over the nodes, at the end.
	PublisherICERestarts float64 `json:"publisher_ice_restarts"`
	// EndReason is the room's endReason seen by its viewer after the
	// host went for good ("" when Expire is off), and EndAfterMS how long
	// after the host's child stopped.
	EndReason  string  `json:"end_reason,omitempty"`
	EndAfterMS float64 `json:"end_after_ms,omitempty"`
}

// Percentile returns the p-th percentile (0..100) of xs by the nearest
// rank; -1 for none.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(math.Ceil(float64(len(s))*p/100)) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// resumeChild is the parent's side of one child.
type resumeChild struct {
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	msgs   chan resumeMsg
	log    *logTail
	exited chan struct{}
}

func startResumeChild(node *netlab.Client, fn, name string, cfg resumeChildConfig) (*resumeChild, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := node.GoCommand(ctx, fn)
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	rc := &resumeChild{name: name, cmd: cmd, cancel: cancel, msgs: make(chan resumeMsg, 16), log: &logTail{}, exited: make(chan struct{})}
	if rc.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Stderr = logWriter{rc.log}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		defer close(rc.exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), resumePrefix)
			var m resumeMsg
			if !ok || json.Unmarshal([]byte(line), &m) != nil {
				rc.log.add(sc.Text())
				continue
			}
			rc.msgs <- m
		}
		close(rc.msgs)
		_ = cmd.Wait()
	}()
	return rc, rc.send(cfg)
}

// logWriter adds what is written to a logTail, line by line.
type logWriter struct{ l *logTail }

func (w logWriter) Write(b []byte) (int, error) {
	for _, s := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.l.add(s)
	}
	return len(b), nil
}

func (rc *resumeChild) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = rc.stdin.Write(append(b, '\n'))
	return err
}

// await waits for the child's next message of type want.
func (rc *resumeChild) await(want string, timeout time.Duration) (resumeMsg, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m, ok := <-rc.msgs:
			switch {
			case !ok:
				return m, fmt.Errorf("%s ended waiting for %s; its last output:\n%s", rc.name, want, rc.log)
			case m.Type == "error" || m.Error != "" && m.Type == want:
				return m, fmt.Errorf("%s: %s", rc.name, m.Error)
			case m.Type == want:
				return m, nil
			}
		case <-t.C:
			return resumeMsg{}, fmt.Errorf("%s: no %s in %v; its last output:\n%s", rc.name, want, timeout, rc.log)
		}
	}
}

// stop closes the child's stdin (it leaves) and waits, then kills it.
func (rc *resumeChild) stop() {
	_ = rc.stdin.Close()
	select {
	case <-rc.exited:
	case <-time.After(waitChild):
	}
	rc.cancel()
	<-rc.exited
}

// resumeNode is one relayd of the run.
type resumeNode struct {
	srv   *spawned
	admin *client.Admin
}

// RunResumeLab runs cfg (see the top of this file). The program must have
// called RegisterLabChildren and netlab.MaybeRunChild.
func RunResumeLab(ctx context.Context, cfg ResumeLabConfig) (rep *ResumeLabReport, err error) {
	if cfg.Cycles <= 0 {
		cfg.Cycles = 1
	}
	if cfg.Cut <= 0 {
		cfg.Cut = DefaultResumeCut
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultResumeGrace
	}
	if cfg.Nodes <= 0 {
		cfg.Nodes = 1
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "resume lab: "+format+"\n", args...)
		}
	}
	if err := netlab.Available(); err != nil {
		return nil, err
	}
	lab, err := netlab.New(ctx, netlab.Spec{Clients: make([]netlab.Profile, 3)})
	if err != nil {
		return nil, err
	}
	defer lab.Close()

	nodes, stopNodes, err := startResumeNodes(ctx, lab, cfg)
	if err != nil {
		return nil, err
	}
	defer stopNodes()
	mint := secretMinter{signaling.NewTokens([]byte(nodes[0].srv.secret))}
	suffix := strconv.FormatInt(time.Now().UnixMilli()%1e9, 36)
	roomA, roomB, host := "ra"+suffix, "rb"+suffix, "alice"+suffix
	destNode := nodes[len(nodes)-1]
	if _, err := destNode.admin.CreateRoom(ctx, client.CreateRoomRequest{Name: roomB, Host: host}); err != nil {
		return nil, fmt.Errorf("creating the destination room: %w", err)
	}
	tok := func(id, room, role string) string {
		t, _ := mint.token(ctx, id, room, role)
		return t
	}
	hostTok := tok(host, roomA, "host")
	if cfg.TokenTTL > 0 {
		if hostTok, err = mint.t.Issue(signaling.TokenSpec{Identity: host, Room: roomA, Role: "host", TTL: cfg.TokenTTL}); err != nil {
			return nil, err
		}
	}
	logf("%d node(s); host %s in %s relaying into %s", len(nodes), host, roomA, roomB)
	hostC, err := startResumeChild(lab.Client(1), childResumeHost, "host", resumeChildConfig{
		BaseURL: nodes[0].srv.baseURL, Room: roomA, Token: hostTok,
		DestRoom: roomB, DestToken: tok(host, roomB, "host"),
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if hostC != nil {
			hostC.stop()
		}
	}()
	if _, err := hostC.await("ready", time.Minute); err != nil {
		return nil, err
	}
	viewers := make([]*resumeChild, 2)
	for i, room := range []string{roomA, roomB} {
		base := nodes[0].srv.baseURL
		if i == 1 {
			base = destNode.srv.baseURL
		}
		v, err := startResumeChild(lab.Client(2+i), childResumeViewer, "viewer of "+room, resumeChildConfig{
			BaseURL: base, Room: room, Token: tok(fmt.Sprintf("viewer%d", i+1), room, "viewer"), Watch: host,
		})
		if err != nil {
			return nil, err
		}
		defer v.stop()
		viewers[i] = v
	}
	for _, v := range viewers {
		if _, err := v.await("ready", time.Minute); err != nil {
			return nil, err
		}
	}
	rep = &ResumeLabReport{Nodes: len(nodes), HandoverRoomMS: -1, HandoverDestMS: -1}
	if len(nodes) == 2 {
		// Each node counts its own rooms: room A is live (its host
		// publishes), room B idle (a relay does not make it live).
		live1 := scrapeCounter(ctx, nodes[0], "relayd_rooms", `status="live"`)
		idle1 := scrapeCounter(ctx, nodes[0], "relayd_rooms", `status="idle"`)
		rep.CrossNode = live1+idle1 == 1
	}

	// cycle runs one loss of the host's network (lose) and its return.
	cycle := func(name string, lose func() error, back func() error) (room, dest float64, err error) {
		for _, v := range viewers {
			if err := v.send(resumeMsg{Type: "mark"}); err != nil {
				return 0, 0, err
			}
			if _, err := v.await("marked", 10*time.Second); err != nil {
				return 0, 0, err
			}
		}
		if err := lose(); err != nil {
			return 0, 0, err
		}
		stop := make(chan struct{})
		polled := make(chan struct{})
		go func() {
			defer close(polled)
			for {
				select {
				case <-stop:
					return
				case <-time.After(250 * time.Millisecond):
				}
				rels, err := nodes[0].admin.Relays(ctx)
				rep.RelayPolls++
				if err != nil || len(rels) != 1 || rels[0].State != "running" || len(rels[0].Destinations) != 1 || rels[0].Destinations[0].State != "running" {
					rep.RelayNotRunning++
				}
			}
		}()
		if err := back(); err != nil {
			close(stop)
			<-polled
			return 0, 0, err
		}
		restored := time.Now()
		for _, v := range viewers {
			if err := v.send(resumeMsg{Type: "restored", AtNS: restored.UnixNano()}); err != nil {
				close(stop)
				<-polled
				return 0, 0, err
			}
		}
		if err := hostC.send(resumeMsg{Type: "resume"}); err != nil {
			close(stop)
			<-polled
			return 0, 0, err
		}
		r, err := hostC.await("resumed", 30*time.Second)
		close(stop)
		<-polled
		if err != nil {
			return 0, 0, err
		}
		if r.Resumed {
			rep.Resumed++
		}
		if r.Refreshed {
			rep.Refreshed++
		}
		var ms [2]float64
		for i, v := range viewers {
			f, err := v.await("frame", 70*time.Second)
			if err != nil {
				return 0, 0, err
			}
			ms[i] = -1
			if f.AtNS != 0 {
				ms[i] = float64(f.AtNS-restored.UnixNano()) / 1e6
			}
		}
		logf("%s: resumed %v; restore to first frame: room %.0f ms, destination %.0f ms", name, r.Resumed, ms[0], ms[1])
		return ms[0], ms[1], nil
	}
	hostNet := lab.Client(1)
	for i := range cfg.Cycles {
		room, dest, err := cycle(fmt.Sprintf("cut %d/%d (%v)", i+1, cfg.Cycles, cfg.Cut),
			func() error { return hostNet.Cut(ctx) },
			func() error {
				select {
				case <-time.After(cfg.Cut):
				case <-ctx.Done():
					return ctx.Err()
				}
				return hostNet.Restore(ctx)
			})
		if err != nil {
			return rep, err
		}
		rep.RoomMS, rep.DestMS = append(rep.RoomMS, room), append(rep.DestMS, dest)
	}
	if cfg.Handover {
		room, dest, err := cycle("handover", func() error { return nil }, func() error {
			_, err := hostNet.Handover(ctx)
			return err
		})
		if err != nil {
			return rep, err
		}
		rep.HandoverRoomMS, rep.HandoverDestMS = room, dest
	}
	for _, v := range viewers {
		// The last cycle ended at the first video frame; its audio's
		// "active" comes with the first audio packet, a moment later:
		// wait up to 5 s (the contract's bound) for each "paused" to
		// have its "active" before counting.
		var s resumeMsg
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if err := v.send(resumeMsg{Type: "stats"}); err != nil {
				return rep, err
			}
			var err error
			if s, err = v.await("stats", 10*time.Second); err != nil {
				return rep, err
			}
			if s.Count[3] >= s.Count[2] || time.Now().After(deadline) {
				break
			}
		}
		rep.LeftJoined += s.Count[0] + s.Count[1]
		rep.Paused += s.Count[2]
		rep.Active += s.Count[3]
	}
	for _, n := range nodes {
		rep.PublisherICERestarts += scrapeCounter(ctx, n, "relayd_ice_restarts_total", `pc="publisher"`, `outcome="connected"`)
	}
	if cfg.Expire {
		gone := time.Now()
		hostC.cancel() // the host's process ends: its socket goes, it never comes back
		<-hostC.exited
		hostC = nil
		if err := viewers[0].send(resumeMsg{Type: "await_end"}); err != nil {
			return rep, err
		}
		e, err := viewers[0].await("ended", 3*time.Minute)
		if err != nil {
			return rep, err
		}
		rep.EndReason = e.Reason
		if e.AtNS != 0 {
			rep.EndAfterMS = float64(e.AtNS-gone.UnixNano()) / 1e6
		}
		logf("host gone: room ended %q after %.0f ms", rep.EndReason, rep.EndAfterMS)
	}
	return rep, nil
}

// startResumeNodes starts relayd (and for two nodes a redis-server) in the
// lab's server namespace.
func startResumeNodes(ctx context.Context, lab *netlab.Lab, cfg ResumeLabConfig) ([]*resumeNode, func(), error) {
	bin, err := resolveBinary(cfg.Spawn)
	if err != nil {
		return nil, nil, err
	}
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	extra := []string{"--reconnect-grace", cfg.Grace.String()}
	if cfg.Nodes == 2 {
		redis, err := exec.LookPath("redis-server")
		if err != nil {
			return nil, nil, errors.New("two nodes need redis-server in PATH (apt-get install redis-server)")
		}
		const redisPort = "6390" // the server namespace is new: nothing else has it
		rctx, cancel := context.WithCancel(context.Background())
		cmd := lab.Server().Command(rctx, redis, "--port", redisPort, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			cancel()
			return nil, nil, fmt.Errorf("redis-server: %w", err)
		}
		stops = append(stops, func() { cancel(); _ = cmd.Wait() })
		extra = append(extra, "--redis", "redis://127.0.0.1:"+redisPort+"/0")
		time.Sleep(300 * time.Millisecond) // redis-server listens within a few ms
	}
	var nodes []*resumeNode
	var secret string
	for i := range cfg.Nodes {
		port := labServerPort + 10*i
		host := netlab.ServerAddr().String() + ":" + strconv.Itoa(port)
		s, err := newSpawned("http://" + host)
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		if secret == "" {
			secret = s.secret
		}
		s.secret = secret
		args := append([]string{
			"--secret", secret, "--listen", host, "--udp-port", strconv.Itoa(port + 1),
			"--data-dir", s.dataDir(), "--node-id", "node" + strconv.Itoa(i+1), "--advertise", "http://" + host,
		}, extra...)
		if cfg.Nodes == 1 {
			args = removeFlag(removeFlag(args, "--node-id"), "--advertise")
		}
		cmd := lab.Server().Command(context.Background(), bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := s.launch(cmd); err != nil {
			stopAll()
			return nil, nil, err
		}
		stops = append(stops, func() { s.stop(); s.removeDir() })
		hc := labHTTPClient(lab)
		if err := s.waitReady(ctx, hc); err != nil {
			tail := s.logTail(20)
			stopAll()
			return nil, nil, fmt.Errorf("%w; server log:\n%s", err, tail)
		}
		at, err := signaling.NewTokens([]byte(secret)).Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		nodes = append(nodes, &resumeNode{srv: s, admin: &client.Admin{BaseURL: s.baseURL, Token: at, HTTPClient: hc}})
	}
	return nodes, stopAll, nil
}

// removeFlag removes a flag and its value from args.
func removeFlag(args []string, flag string) []string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return append(args[:i:i], args[i+2:]...)
		}
	}
	return args
}

// scrapeCounter sums a counter's samples on node whose labels contain
// every one of labels; 0 when none or unreachable.
func scrapeCounter(ctx context.Context, n *resumeNode, name string, labels ...string) float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.srv.baseURL+"/metrics", nil)
	if err != nil {
		return 0
	}
	resp, err := n.admin.HTTPClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if i := strings.LastIndexByte(line, ' '); ok && i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			sum += v
		}
	}
	return sum
}

// PrintResumeReport writes the run's figures as a table.
func PrintResumeReport(w io.Writer, r *ResumeLabReport) {
	where := "one node"
	if r.Nodes == 2 {
		where = "two nodes, rooms on one node"
		if r.CrossNode {
			where = "two nodes, the relay across them"
		}
	}
	fmt.Fprintf(w, "restore to first frame (%s, %d cycles)   p50 ms   p99 ms\n", where, len(r.RoomMS))
	fmt.Fprintf(w, "  viewer in the room                        %6.0f   %6.0f\n", Percentile(r.RoomMS, 50), Percentile(r.RoomMS, 99))
	fmt.Fprintf(w, "  viewer in the relay destination           %6.0f   %6.0f\n", Percentile(r.DestMS, 50), Percentile(r.DestMS, 99))
	if r.HandoverRoomMS >= 0 {
		fmt.Fprintf(w, "  handover: room %.0f ms, destination %.0f ms\n", r.HandoverRoomMS, r.HandoverDestMS)
	}
	fmt.Fprintf(w, "resumed %d; relay not running at %d of %d polls; host left/joined %d times; paused %d, active %d\n",
		r.Resumed, r.RelayNotRunning, r.RelayPolls, r.LeftJoined, r.Paused, r.Active)
}
