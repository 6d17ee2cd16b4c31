package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaysfu/relayd/signaling"
)

// load runs LoadConfig's body with the help text discarded.
func load(args []string, env ...string) (Config, error) {
	var help bytes.Buffer
	return loadConfigTo(&help, args, env)
}

// writeYAML writes a config file into a test directory and returns its path.
func writeYAML(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relayd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigDefaults(t *testing.T) {
	got, err := load([]string{"--secret", "s"})
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	want := DefaultConfig()
	want.Secret = "s"
	want.UDPIP = "127.0.0.1" // derived from the default --listen
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if want := (Config{
		Listen: "127.0.0.1:8800", UDPPort: 8801, DataDir: "./data",
		MaxCohosts: 8, MaxRelayDestinations: 4,
		ReconnectGrace: 30 * time.Second, InvitationTTL: 10 * time.Minute,
		LogLevel: "info", LogFormat: "text", DrainTimeout: 10 * time.Second,
		HTTPReadTimeout: 30 * time.Second, HTTPWriteTimeout: 30 * time.Second, HTTPIdleTimeout: time.Minute,
		UDPBatch: true, DirectSend: true, RoomRetention: 720 * time.Hour, RoomCreateRate: 10,
		MaxSocketsPerIdentity: 10, TCPPort: -1,
	}); !reflect.DeepEqual(DefaultConfig(), want) {
		t.Errorf("DefaultConfig() = %+v, want the PROTOCOL.md defaults %+v", DefaultConfig(), want)
	}
}

func TestConfigPrecedence(t *testing.T) {
	path := writeYAML(t, `
listen: 127.0.0.2:9000
udp-port: 9001
secret: from-file
max-cohosts: 1
max-relay-destinations: 2
reconnect-grace: 1m
log-level: debug
allowed-origins: [https://file.example]
`)
	env := []string{
		"RELAYD_UDP_PORT=9002",
		"RELAYD_MAX_COHOSTS=3",
		"RELAYD_MAX_RELAY_DESTINATIONS=5",
		"RELAYD_MAX_SOCKETS_PER_IDENTITY=0",
		"RELAYD_ALLOWED_ORIGINS=https://env.example",
		"RELAYD_LOG_LEVEL=", // empty: unset
		"HOME=/root",        // not ours
	}
	got, err := load([]string{"--config", path, "--max-cohosts", "7", "-invitation-ttl=90s"}, env...)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"listen (file only)", got.Listen, "127.0.0.2:9000"},
		{"udp-ip (derived from the file's listen)", got.UDPIP, "127.0.0.2"},
		{"secret (file only)", got.Secret, "from-file"},
		{"reconnect-grace (file only)", got.ReconnectGrace, time.Minute},
		{"log-level (file; empty env ignored)", got.LogLevel, "debug"},
		{"udp-port (env over file)", got.UDPPort, 9002},
		{"max-relay-destinations (env over file)", got.MaxRelayDestinations, 5},
		{"allowed-origins (env over file)", got.AllowedOrigins, []string{"https://env.example"}},
		{"max-cohosts (flag over env over file)", got.MaxCohosts, 7},
		{"invitation-ttl (flag only)", got.InvitationTTL, 90 * time.Second},
		{"data-dir (default)", got.DataDir, "./data"},
		{"max-sockets-per-identity (env: 0, no cap)", got.MaxSocketsPerIdentity, 0},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	path := writeYAML(t, "secret: s\nudp-port: 0\n")
	got, err := load(nil, "RELAYD_CONFIG="+path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if got.Secret != "s" || got.UDPPort != 0 {
		t.Errorf("RELAYD_CONFIG file not applied: %+v", got)
	}
}

func TestConfigAllowedOrigins(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		file string
		want []string
	}{
		{
			name: "repeated flag, with commas",
			args: []string{"--allowed-origins", "https://a", "--allowed-origins=https://b,https://c"},
			want: []string{"https://a", "https://b", "https://c"},
		},
		{
			name: "comma-separated env",
			env:  []string{"RELAYD_ALLOWED_ORIGINS=https://a, https://b,"},
			want: []string{"https://a", "https://b"},
		},
		{
			name: "flags replace env",
			args: []string{"--allowed-origins", "https://f1", "--allowed-origins", "https://f2"},
			env:  []string{"RELAYD_ALLOWED_ORIGINS=https://e"},
			want: []string{"https://f1", "https://f2"},
		},
		{
			name: "flag replaces file",
			args: []string{"--allowed-origins", "https://f"},
			file: "allowed-origins: [https://y1, https://y2]\n",
			want: []string{"https://f"},
		},
		{
			name: "file only",
			file: "allowed-origins:\n  - https://y1\n  - https://y2\n",
			want: []string{"https://y1", "https://y2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--secret", "s"}, tt.args...)
			if tt.file != "" {
				args = append(args, "--config", writeYAML(t, tt.file))
			}
			got, err := load(args, tt.env...)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if !reflect.DeepEqual(got.AllowedOrigins, tt.want) {
				t.Errorf("AllowedOrigins = %q, want %q", got.AllowedOrigins, tt.want)
			}
		})
	}
}

func TestConfigDev(t *testing.T) {
	for _, args := range [][]string{{"--dev"}, {"-dev=true"}} {
		got, err := load(args)
		if err != nil {
			t.Fatalf("LoadConfig(%q): %v", args, err)
		}
		if !got.Dev || !got.ICELoopback || got.Secret != "" {
			t.Errorf("LoadConfig(%q): dev=%v ice-loopback=%v secret=%q, want dev, ice-loopback, no secret (the caller makes one)",
				args, got.Dev, got.ICELoopback, got.Secret)
		}
	}
	// Booleans from the environment take the strconv.ParseBool forms.
	got, err := load(nil, "RELAYD_DEV=1")
	if err != nil || !got.Dev || !got.ICELoopback {
		t.Errorf("RELAYD_DEV=1: got %+v, %v", got, err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		file string
	}{
		{name: "missing secret"},
		{name: "missing secret, dev=false in env", env: []string{"RELAYD_DEV=false"}},
		{name: "unknown flag", args: []string{"--secret", "s", "--bogus"}},
		{name: "stray argument", args: []string{"--secret", "s", "serve"}},
		{name: "unknown YAML key", args: []string{"--secret", "s"}, file: "listen: 127.0.0.1:1\nlisten-addr: x\n"},
		{name: "YAML type mismatch", args: []string{"--secret", "s"}, file: "udp-port: many\n"},
		{name: "YAML bad duration", args: []string{"--secret", "s"}, file: "reconnect-grace: 30\n"},
		{name: "missing config file", args: []string{"--secret", "s", "--config", "/nonexistent/relayd.yaml"}},
		{name: "bad duration flag", args: []string{"--secret", "s", "--reconnect-grace", "30"}},
		{name: "bad duration env", args: []string{"--secret", "s"}, env: []string{"RELAYD_INVITATION_TTL=ten minutes"}},
		{name: "bad int env", args: []string{"--secret", "s"}, env: []string{"RELAYD_UDP_PORT=eighty"}},
		{name: "bad bool env", args: []string{"--secret", "s"}, env: []string{"RELAYD_DEV=yes please"}},
		{name: "zero duration", args: []string{"--secret", "s", "--reconnect-grace", "0s"}},
		{name: "negative duration", args: []string{"--secret", "s", "--invitation-ttl", "-1m"}},
		{name: "udp port too big", args: []string{"--secret", "s", "--udp-port", "65536"}},
		{name: "negative udp port", args: []string{"--secret", "s", "--udp-port", "-1"}},
		{name: "listen without port", args: []string{"--secret", "s", "--listen", "127.0.0.1"}},
		{name: "listen port too big", args: []string{"--secret", "s", "--listen", "127.0.0.1:70000"}},
		{name: "listen on a host name", args: []string{"--secret", "s", "--listen", "example.com:80"}},
		{name: "bad udp-ip", args: []string{"--secret", "s", "--udp-ip", "eth0"}},
		{name: "bad public-ip", args: []string{"--secret", "s", "--public-ip", "example.com"}},
		{name: "negative max-cohosts", args: []string{"--secret", "s", "--max-cohosts", "-1"}},
		{name: "zero max-relay-destinations", args: []string{"--secret", "s", "--max-relay-destinations", "0"}},
		{name: "negative max-sockets-per-identity", args: []string{"--secret", "s", "--max-sockets-per-identity", "-1"}},
		{name: "bad log level", args: []string{"--secret", "s", "--log-level", "verbose"}},
		{name: "bad log format", args: []string{"--secret", "s", "--log-format", "xml"}},
		{name: "room retention under a minute", args: []string{"--secret", "s", "--room-retention", "30s"}},
		{name: "negative room retention", args: []string{"--secret", "s"}, env: []string{"RELAYD_ROOM_RETENTION=-1h"}},
		{name: "negative room create rate", args: []string{"--secret", "s"}, file: "room-create-rate: -1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeYAML(t, tt.file))
			}
			got, err := load(args, tt.env...)
			if err == nil {
				t.Fatalf("LoadConfig(%q, %q) = %+v, want an error", args, tt.env, got)
			}
			t.Log(err)
		})
	}
}

func TestConfigValidateDerives(t *testing.T) {
	tests := []struct {
		listen, udpIP, want string
	}{
		{"127.0.0.1:8800", "", "127.0.0.1"},
		{"[::1]:8800", "", "::1"},
		{"localhost:8800", "", "127.0.0.1"},
		{":8800", "", ""}, // every interface, like the HTTP server
		{"0.0.0.0:8800", "", "0.0.0.0"},
		{"127.0.0.1:8800", "10.0.0.1", "10.0.0.1"}, // given: kept
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Secret, c.Listen, c.UDPIP = "s", tt.listen, tt.udpIP
		if err := c.Validate(); err != nil {
			t.Errorf("listen %q: %v", tt.listen, err)
			continue
		}
		if c.UDPIP != tt.want {
			t.Errorf("listen %q, udp-ip %q: UDPIP = %q, want %q", tt.listen, tt.udpIP, c.UDPIP, tt.want)
		}
		if err := c.Validate(); err != nil { // idempotent
			t.Errorf("second Validate: %v", err)
		}
	}

	// max-cohosts 0 is a stage without co-hosts, and allowed.
	c := DefaultConfig()
	c.Secret, c.MaxCohosts = "s", 0
	if err := c.Validate(); err != nil {
		t.Errorf("max-cohosts 0: %v", err)
	}
}

func TestConfigHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := loadConfigTo(&out, []string{"--help"}, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: err = %v, want flag.ErrHelp", err)
	}
	help := out.String()
	for _, want := range []string{
		"--listen address", "(default 127.0.0.1:8800)", "[RELAYD_LISTEN]",
		"--udp-port port", "(default 8801)", "[RELAYD_UDP_PORT]",
		"--udp-ip", "--secret", "--dev", "--ice-loopback", "--public-ip",
		"--data-dir", "(default ./data)", "--allowed-origins",
		"--max-cohosts", "(default 8)", "--max-relay-destinations", "(default 4)",
		"--reconnect-grace", "(default 30s)", "--invitation-ttl", "(default 10m0s)",
		"--log-level", "(default info)", "--log-format", "(default text)",
		"--room-retention", "(default 720h0m0s)", "[RELAYD_ROOM_RETENTION]",
		"--room-create-rate", "(default 10)", "[RELAYD_ROOM_CREATE_RATE]",
		"--config", "relayd token",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}

	// Help shows the defaults even when the environment sets a value.
	out.Reset()
	loadConfigTo(&out, []string{"-h"}, []string{"RELAYD_MAX_COHOSTS=2"})
	if !strings.Contains(out.String(), "(default 8)") {
		t.Errorf("-h with RELAYD_MAX_COHOSTS=2 does not show the default 8:\n%s", out.String())
	}
}

func TestTokenCmd(t *testing.T) {
	const secret = "cmd-test-secret"
	tests := []struct {
		name     string
		args     []string
		env      []string
		identity string
		want     signaling.Claims // Room, Role, Name and Admin are compared
		ttl      time.Duration
	}{
		{
			name:     "host",
			args:     []string{"--secret", secret, "--identity", "alice", "--room", "show", "--role", "host", "--name", "Alice"},
			identity: "alice",
			want:     signaling.Claims{Room: "show", Role: "host", Name: "Alice"},
			ttl:      time.Hour,
		},
		{
			name:     "viewer by default, secret from env",
			args:     []string{"-identity", "bob", "-room", "show", "-ttl", "10m"},
			identity: "bob",
			env:      []string{"RELAYD_SECRET=" + secret},
			want:     signaling.Claims{Room: "show", Role: "viewer"},
			ttl:      10 * time.Minute,
		},
		{
			name:     "flag secret wins over env",
			args:     []string{"--secret", secret, "--identity", "carol"},
			identity: "carol",
			env:      []string{"RELAYD_SECRET=wrong"},
			ttl:      time.Hour,
		},
		{
			name:     "admin",
			args:     []string{"--secret", secret, "--identity", "ops", "--admin"},
			identity: "ops",
			want:     signaling.Claims{Admin: true},
			ttl:      time.Hour,
		},
	}
	tokens := signaling.NewTokens([]byte(secret))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runTokenCmd(tt.args, tt.env, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
			out := stdout.String()
			if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
				t.Errorf("stdout %q, want one line", out)
			}
			c, err := tokens.Verify(strings.TrimSuffix(out, "\n"))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Identity() != tt.identity {
				t.Errorf("identity = %q, want %q", c.Identity(), tt.identity)
			}
			if c.Room != tt.want.Room || c.Role != tt.want.Role || c.Name != tt.want.Name || c.Admin != tt.want.Admin {
				t.Errorf("claims room=%q role=%q name=%q admin=%v, want %+v", c.Room, c.Role, c.Name, c.Admin, tt.want)
			}
			if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != tt.ttl {
				t.Errorf("exp - iat = %v, want %v", got, tt.ttl)
			}
		})
	}
}

func TestTokenCmdErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
	}{
		{"no secret", []string{"--identity", "alice"}, nil},
		{"empty env secret", []string{"--identity", "alice"}, []string{"RELAYD_SECRET="}},
		{"no identity", []string{"--secret", "s"}, nil},
		{"bad identity", []string{"--secret", "s", "--identity", "a b"}, nil},
		{"bad role", []string{"--secret", "s", "--identity", "a", "--room", "r", "--role", "cohost"}, nil},
		{"bad room", []string{"--secret", "s", "--identity", "a", "--room", "r/1"}, nil},
		{"zero ttl", []string{"--secret", "s", "--identity", "a", "--ttl", "0s"}, nil},
		{"bad ttl", []string{"--secret", "s", "--identity", "a", "--ttl", "1"}, nil},
		{"unknown flag", []string{"--secret", "s", "--identity", "a", "--rooom", "r"}, nil},
		{"stray argument", []string{"--secret", "s", "--identity", "a", "extra"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runTokenCmd(tt.args, tt.env, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if stderr.Len() == 0 {
				t.Errorf("nothing on stderr")
			}
		})
	}

	var stdout, stderr bytes.Buffer
	if code := runTokenCmd([]string{"--help"}, nil, &stdout, &stderr); code != 0 {
		t.Errorf("--help: exit %d, want 0", code)
	}
	if !strings.Contains(stderr.String(), "-identity") {
		t.Errorf("--help: usage lacks -identity: %q", stderr.String())
	}
}

// --room-retention and --room-create-rate from each source; 0 turns each
// off.
func TestConfigRoomRetentionAndCreateRate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args, env []string
		file      string
		retention time.Duration
		rate      int
	}{
		{"defaults", nil, nil, "", 720 * time.Hour, 10},
		{"flags, off", []string{"--room-retention", "0", "--room-create-rate", "0"}, nil, "", 0, 0},
		{"environment", nil, []string{"RELAYD_ROOM_RETENTION=48h", "RELAYD_ROOM_CREATE_RATE=3"}, "", 48 * time.Hour, 3},
		{"file", nil, nil, "room-retention: 1m\nroom-create-rate: 100\n", time.Minute, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--secret", "s"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeYAML(t, tc.file))
			}
			got, err := load(args, tc.env...)
			if err != nil {
				t.Fatal(err)
			}
			if got.RoomRetention != tc.retention || got.RoomCreateRate != tc.rate {
				t.Errorf("room-retention %v, room-create-rate %d; want %v, %d", got.RoomRetention, got.RoomCreateRate, tc.retention, tc.rate)
			}
		})
	}
}
