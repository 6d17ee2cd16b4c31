package main

// Firewall traversal flags (PROTOCOL.md 1.1 §4): ICE-TCP on --tcp-port,
// the embedded TURN server on --turn-port (UDP and TCP) and
// --turn-tls-port (TLS, with --turn-cert and --turn-key).

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/relaysfu/relayd/app"
)

// tcpPortSameAsUDP is --tcp-port's default: the number the media UDP
// socket has (with --udp-port 0, the one it was given).
const tcpPortSameAsUDP = -1

// addTraversalFlags defines the traversal flags on fs, bound to c.
func addTraversalFlags(fs *flag.FlagSet, c *Config) {
	fs.IntVar(&c.TCPPort, "tcp-port", c.TCPPort, "TCP `port` of passive ICE-TCP candidates, for clients whose network blocks UDP (-1: the number of --udp-port; 0: off)")
	fs.IntVar(&c.TURNPort, "turn-port", c.TURNPort, "`port` of the embedded TURN server, UDP and TCP (0: off; 3478 is usual)")
	fs.IntVar(&c.TURNTLSPort, "turn-tls-port", c.TURNTLSPort, "`port` of TURN over TLS (0: off; 443 where only HTTPS gets out), needs --turn-cert and --turn-key")
	fs.StringVar(&c.TURNCert, "turn-cert", c.TURNCert, "PEM certificate `file` (chain) of TURN over TLS, covering --turn-host")
	fs.StringVar(&c.TURNKey, "turn-key", c.TURNKey, "PEM private key `file` of TURN over TLS")
	fs.StringVar(&c.TURNHost, "turn-host", c.TURNHost, "`host` (DNS name or IP) clients reach the TURN server at, in the iceServers URLs (default: --public-ip, else the media IP)")
}

// validateTraversal checks the traversal flags.
func (c *Config) validateTraversal(bad func(format string, args ...any)) {
	if c.TCPPort < tcpPortSameAsUDP || c.TCPPort > 65535 {
		bad("--tcp-port %d: want 0..65535, or -1 for --udp-port's number", c.TCPPort)
	}
	if c.TURNPort < 0 || c.TURNPort > 65535 {
		bad("--turn-port %d: want 0..65535 (0: off)", c.TURNPort)
	}
	if c.TURNTLSPort < 0 || c.TURNTLSPort > 65535 {
		bad("--turn-tls-port %d: want 0..65535 (0: off)", c.TURNTLSPort)
	}
	if c.TURNTLSPort > 0 && (c.TURNCert == "" || c.TURNKey == "") {
		bad("--turn-tls-port needs --turn-cert and --turn-key")
	}
	if c.TURNTLSPort > 0 && c.TURNTLSPort == c.TURNPort {
		bad("--turn-tls-port %d: the same TCP port as --turn-port", c.TURNTLSPort)
	}
}

// traversal is what openTraversal opened; the App owns it once given.
type traversal struct {
	tcp  net.Listener     // ICE-TCP, or nil
	turn *app.TURNOptions // or nil
}

// close closes what was opened (run's error paths before app.New).
func (t traversal) close() {
	if t.tcp != nil {
		_ = t.tcp.Close()
	}
	if t.turn != nil {
		for _, c := range []interface{ Close() error }{t.turn.UDP, t.turn.TCP, t.turn.TLS} {
			if c != nil {
				_ = c.Close()
			}
		}
	}
}

// openTraversal opens the ICE-TCP and TURN listeners on the media IP.
// ICE-TCP on its default port (the UDP port's number) is skipped with a
// warning when that TCP port is taken; a port given explicitly must open.
func openTraversal(cfg Config, udp net.PacketConn, log *slog.Logger) (traversal, error) {
	var t traversal
	ip := cfg.UDPIP
	port := cfg.TCPPort
	if port == tcpPortSameAsUDP {
		port = udp.LocalAddr().(*net.UDPAddr).Port
	}
	if port > 0 {
		ln, err := net.Listen("tcp4", net.JoinHostPort(ip, strconv.Itoa(port)))
		switch {
		case err == nil:
			t.tcp = ln
		case cfg.TCPPort == tcpPortSameAsUDP:
			log.Warn("ICE-TCP off: its port is taken (set --tcp-port)", "port", port, "err", err)
		default:
			return t, fmt.Errorf("ice-tcp: %w", err)
		}
	}
	if cfg.TURNPort == 0 && cfg.TURNTLSPort == 0 {
		return t, nil
	}
	t.turn = &app.TURNOptions{Host: cfg.TURNHost}
	if cfg.TURNPort > 0 {
		addr := net.JoinHostPort(ip, strconv.Itoa(cfg.TURNPort))
		u, err := net.ListenPacket("udp4", addr)
		if err != nil {
			t.close()
			return t, fmt.Errorf("turn udp: %w", err)
		}
		t.turn.UDP = u
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			t.close()
			return t, fmt.Errorf("turn tcp: %w", err)
		}
		t.turn.TCP = l
	}
	if cfg.TURNTLSPort > 0 {
		cert, err := tls.LoadX509KeyPair(cfg.TURNCert, cfg.TURNKey)
		if err != nil {
			t.close()
			return t, fmt.Errorf("turn tls: --turn-cert/--turn-key: %w", err)
		}
		l, err := net.Listen("tcp4", net.JoinHostPort(ip, strconv.Itoa(cfg.TURNTLSPort)))
		if err != nil {
			t.close()
			return t, fmt.Errorf("turn tls: %w", err)
		}
		t.turn.TLS = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	if t.turn.UDP == nil && t.turn.TCP == nil && t.turn.TLS == nil {
		return t, errors.New("turn: no listener") // not reached: Validate
	}
	return t, nil
}

// addrOf is a listener's address, or "off".
func addrOf(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}
