package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ErrUnavailable wraps every reason Available gives.
var ErrUnavailable = errors.New("netlab: network lab unavailable")

// iptablesBackends are the iptables-restore binaries of Debian's iptables
// package, in order of preference. Both work in this kernel; the nf_tables
// one comes first because it is Debian's default and the one kernels keep
// (the legacy x_tables interface is deprecated and may be compiled out).
// A lab uses one backend for every namespace, so the two never mix.
var iptablesBackends = []string{"iptables-nft-restore", "iptables-legacy-restore"}

// available is Available's result, checked once per process: it makes and
// removes a probe namespace, which takes tens of milliseconds.
var available = sync.OnceValues(probe)

// Available returns nil when this process can make labs: it runs as root,
// `ip`, `tc` and an iptables-restore are installed, and a namespace with a
// veth pair, a tbf qdisc and the iptables rules a profile needs
// can be made. Otherwise it says why, wrapping ErrUnavailable; tests skip
// with it.
func Available() error {
	_, err := available()
	return err
}

func probe() (string, error) {
	if uid := os.Geteuid(); uid != 0 {
		return "", fmt.Errorf("%w: needs root to make network namespaces (running as uid %d)", ErrUnavailable, uid)
	}
	for _, bin := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return "", fmt.Errorf("%w: %s not found (Debian package iproute2)", ErrUnavailable, bin)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := labName(os.Getpid(), 0) + "-probe"
	if err := run(ctx, "", "ip", "netns", "add", ns); err != nil {
		return "", fmt.Errorf("%w: cannot make a network namespace: %v", ErrUnavailable, err)
	}
	defer func() { _ = run(context.Background(), "", "ip", "netns", "del", ns) }()
	steps := [][]string{
		{"ip", "-n", ns, "link", "add", "pa", "type", "veth", "peer", "name", "pb"},
		{"tc", "-n", ns, "qdisc", "add", "dev", "pa", "root", "tbf", "rate", "1mbit", "burst", "3028", "latency", "100ms"},
	}
	for _, s := range steps {
		if err := run(ctx, "", s[0], s[1:]...); err != nil {
			return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	// The rules every profile can produce, in one ruleset.
	rules := clientRuleset(Profile{UDPBlocked: true, OnlyTCPPort: 443, OnlyTCPAlso: 8800, LossDown: 2}, false)
	var reasons []string
	for _, bin := range iptablesBackends {
		if _, err := exec.LookPath(bin); err != nil {
			reasons = append(reasons, bin+" not found")
			continue
		}
		if err := run(ctx, rules, "ip", "netns", "exec", ns, bin, "-w", "10"); err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		return bin, nil
	}
	return "", fmt.Errorf("%w: no working iptables (install Debian's iptables package): %s",
		ErrUnavailable, strings.Join(reasons, "; "))
}

// run runs a command to completion, feeding it stdin; its error carries the
// command line and what the command printed.
func run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// namespaces lists the network namespaces `ip netns` knows.
func namespaces(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		// "name" or "name (id: 3)"
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// Cleanup removes the namespaces of labs whose process is gone (a test or
// bench killed before its Close ran): every namespace named rlab<pid>x...
// whose /proc/<pid> does not exist. It returns the names it removed. New
// calls it; labs of live processes, this one's included, are left alone.
//
// A lab whose pid has since been reused by an unrelated process survives
// until that process ends; its names do not collide with new labs', which
// carry the new process's pid.
func Cleanup(ctx context.Context) ([]string, error) {
	all, err := namespaces(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, ns := range all {
		pid, ok := labPID(ns)
		if !ok || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
			continue // alive, or we cannot tell: leave it
		}
		if err := run(ctx, "", "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, ns)
	}
	return removed, errors.Join(errs...)
}
