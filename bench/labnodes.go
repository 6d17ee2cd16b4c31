package bench

// --nodes 2 in the lab: two relayd nodes in the server namespace, one
// cluster on a Redis there (docs/cluster.md), so that a relay crosses from
// one node to the other. Node 1 (198.18.0.1:8800, media 8801) has the
// publisher's room; node 2 (198.18.0.1:8810, media 8811) is asked to
// create the relay destination room, which placement puts on the least
// loaded node: node 2, which has none (checked and said). The destination
// groups dial node 2; the server figures of the report are node 1's.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/relaysfu/relayd/netlab"
)

const (
	labNode2Port = labServerPort + 10
	labRedisPort = 6399 // on the server namespace's loopback: nothing else there
)

// labNodes is the second node and its Redis (zero without --nodes 2).
type labNodes struct {
	node2    *spawned
	redis    *exec.Cmd
	redisDir string
	done     chan struct{} // closed when Redis exited
}

// startNodes starts relayd: one node, or with --nodes 2 Redis and two
// nodes sharing one secret.
func (lr *labRun) startNodes(ctx context.Context) error {
	cfg := lr.cfg
	if cfg.Nodes < 2 {
		srv, err := spawnInLab(ctx, lr.lab, cfg.Spawn, append(lr.turnArgs, cfg.SpawnArgs...), labServerPort, "")
		lr.srv = srv
		return err
	}
	if err := lr.startRedis(ctx); err != nil {
		return err
	}
	redisURL := "redis://127.0.0.1:" + strconv.Itoa(labRedisPort) + "/0"
	node := func(port int, id, secret string, turn []string) (*spawned, error) {
		args := append(append([]string{"--redis", redisURL, "--node-id", id,
			"--advertise", "http://" + net.JoinHostPort(serverHost(), strconv.Itoa(port))}, turn...), cfg.SpawnArgs...)
		return spawnInLab(ctx, lr.lab, cfg.Spawn, args, port, secret)
	}
	srv, err := node(labServerPort, "rb-node1", "", lr.turnArgs) // TURN on node 1 only: one set of ports in the namespace
	if err != nil {
		return err
	}
	lr.srv = srv
	if lr.nodes.node2, err = node(labNode2Port, "rb-node2", srv.secret, nil); err != nil {
		return fmt.Errorf("node 2: %w", err)
	}
	return nil
}

func serverHost() string { return netlab.ServerAddr().String() }

// startRedis runs redis-server in the server namespace, without
// persistence, and waits until it accepts connections.
func (lr *labRun) startRedis(ctx context.Context) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("--nodes 2 needs redis-server in PATH (apt-get install redis-server)")
	}
	dir, err := os.MkdirTemp("", "relaybench-redis-*")
	if err != nil {
		return err
	}
	lr.nodes.redisDir = dir
	cmd := lr.lab.Server().Command(context.Background(), bin, "--port", strconv.Itoa(labRedisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	lr.nodes.redis = cmd
	lr.nodes.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(lr.nodes.done)
	}()
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		c, err := lr.lab.Server().DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(labRedisPort))
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-lr.nodes.done:
			return errors.New("redis-server exited at its start")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("redis-server not accepting connections after %v", readyTimeout)
}

// stopNodes stops node 2 and Redis. Idempotent.
func (lr *labRun) stopNodes() {
	n := &lr.nodes
	if n.node2 != nil {
		n.node2.stop()
		n.node2.removeDir()
		n.node2 = nil
	}
	if n.redis != nil {
		_ = n.redis.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(stopTimeout):
			_ = n.redis.Process.Kill()
			<-n.done
		}
		n.redis = nil
	}
	if n.redisDir != "" {
		_ = os.RemoveAll(n.redisDir)
		n.redisDir = ""
	}
}

// destURL is where the destination room is made and its viewers dial:
// node 2 with --nodes 2.
func (lr *labRun) destURL() string {
	if lr.nodes.node2 != nil {
		return lr.nodes.node2.baseURL
	}
	return lr.srv.baseURL
}

// checkDestNode says whether the destination room is on node 2 (its
// relayd_rooms gauge counts a room), as --nodes 2 means it to be.
func (lr *labRun) checkDestNode(ctx context.Context) {
	n2 := lr.nodes.node2
	if n2 == nil {
		return
	}
	t := &target{baseURL: n2.baseURL, proc: n2, hc: lr.tgt.hc}
	rooms := 0.0
	for _, m := range t.sample(ctx).prom["relayd_rooms"].GetMetric() {
		rooms += m.GetGauge().GetValue()
	}
	if rooms >= 1 {
		lr.prog.logf("the destination room %s is on node 2: the relay crosses nodes", lr.destRoom())
		lr.destOnNode2 = true
		return
	}
	lr.prog.logf("WARNING: node 2 has no room: placement put %s on node 1, the relay does not cross nodes", lr.destRoom())
}
