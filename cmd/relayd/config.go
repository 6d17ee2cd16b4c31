package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the server's configuration (PROTOCOL.md "The server binary").
// Every field is a flag of the same name, an environment variable
// RELAYD_<NAME> and a key of the YAML config file.
type Config struct {
	Listen               string        `yaml:"listen"`                 // HTTP + WebSocket address; default 127.0.0.1:8800
	UDPPort              int           `yaml:"udp-port"`               // the one media UDP port; default 8801 (0 = pick a free port, for tests)
	UDPIP                string        `yaml:"udp-ip"`                 // extension: IP the media UDP socket binds; default: the host part of Listen
	Secret               string        `yaml:"secret"`                 // HS256 token secret; required unless Dev
	Dev                  bool          `yaml:"dev"`                    // development mode (implies ICELoopback)
	ICELoopback          bool          `yaml:"ice-loopback"`           // offer loopback ICE candidates
	PublicIP             string        `yaml:"public-ip"`              // IP announced in ICE candidates behind NAT
	DataDir              string        `yaml:"data-dir"`               // embedded store directory; default ./data
	AllowedOrigins       []string      `yaml:"allowed-origins"`        // WebSocket origins allowed besides the server's own
	MaxCohosts           int           `yaml:"max-cohosts"`            // co-hosts on one stage; default 8
	MaxRelayDestinations int           `yaml:"max-relay-destinations"` // destinations of one relay; default 4
	ReconnectGrace       time.Duration `yaml:"reconnect-grace"`        // how long a room waits for its vanished host; default 30s
	InvitationTTL        time.Duration `yaml:"invitation-ttl"`         // how long an invitation stays pending; default 10m
	LogLevel             string        `yaml:"log-level"`              // extension: debug|info|warn|error; default info
	LogFormat            string        `yaml:"log-format"`             // extension: text|json; default text
	Record               bool          `yaml:"record"`                 // record every room (off by default; per room through the HTTP API)
	WebhookURLs          []string      `yaml:"webhook-url"`            // webhook receivers, repeatable
	DrainTimeout         time.Duration `yaml:"drain-timeout"`          // SIGTERM/SIGINT: bound on the waits of the shutdown (sessions closing, HTTP requests finishing); default 10s
	HTTPReadTimeout      time.Duration `yaml:"http-read-timeout"`      // extension: a whole plain HTTP request, body included; default 30s (0: none)
	HTTPWriteTimeout     time.Duration `yaml:"http-write-timeout"`     // extension: a plain HTTP response making no progress; default 30s (0: none)
	HTTPIdleTimeout      time.Duration `yaml:"http-idle-timeout"`      // extension: a keep-alive connection between requests; default 60s (0: the read timeout)
	AdminListen          string        `yaml:"admin-listen"`           // pprof listener (off when empty); keep it private
	Redis                string        `yaml:"redis"`                  // extension: cluster mode on this Redis (redis://host:port/db)
	Advertise            string        `yaml:"advertise"`              // extension: this node's base URL for other nodes; default http://<listen address>
	NodeID               string        `yaml:"node-id"`                // extension: this node's name in the cluster; default random
	UDPBatch             bool          `yaml:"udp-batch"`              // extension: send media with sendmmsg batches (default on)
	DirectSend           bool          `yaml:"direct-send"`            // extension: SRTP straight into the batch, past pion's write path (default on)
	RoomRetention        time.Duration `yaml:"room-retention"`         // extension: how long ended rooms and their data are kept; default 720h, 0 = forever
	RoomCreateRate       int           `yaml:"room-create-rate"`       // extension: rooms one identity may create a minute; default 10, 0 = no limit

	// extension: the WebSockets one identity (token sub) may hold open at
	// once; default 10, 0 = no cap
	MaxSocketsPerIdentity int `yaml:"max-sockets-per-identity"`

	// Firewall traversal (traversal.go).
	TCPPort     int    `yaml:"tcp-port"`      // passive ICE-TCP port; default -1 = --udp-port's number, 0 = off
	TURNPort    int    `yaml:"turn-port"`     // embedded TURN server, UDP and TCP; default 0 = off
	TURNTLSPort int    `yaml:"turn-tls-port"` // TURN over TLS; default 0 = off
	TURNCert    string `yaml:"turn-cert"`     // PEM certificate of TURN over TLS
	TURNKey     string `yaml:"turn-key"`      // PEM key of TURN over TLS
	TURNHost    string `yaml:"turn-host"`     // host in the iceServers URLs; default --public-ip, else the media IP
}

// DefaultConfig returns the configuration used where nothing is set.
func DefaultConfig() Config {
	return Config{
		Listen:               "127.0.0.1:8800",
		UDPPort:              8801,
		TCPPort:              tcpPortSameAsUDP,
		UDPBatch:             true,
		DirectSend:           true,
		DataDir:              "./data",
		MaxCohosts:           8,
		MaxRelayDestinations: 4,
		// 30s outlasts a browser reload or a Wi-Fi to cellular handover,
		// yet is short enough that viewers are not left staring at a
		// frozen stage for long.
		ReconnectGrace: 30 * time.Second,
		// 10m gives an invited user time to notice the invitation without
		// leaving it pending for a show that has moved on.
		InvitationTTL: 10 * time.Minute,
		LogLevel:      "info",
		LogFormat:     "text",
		// 30 days of ended rooms (records, invitations, chat and
		// recordings): a month to fetch what a show left behind.
		RoomRetention: 30 * 24 * time.Hour,
		// A host makes a room per show: 10 a minute (bursts of 10) lets a
		// back end set up a schedule at once, and stops one identity
		// from filling the registry (2,000 rooms in 3 s gets 10).
		RoomCreateRate: 10,
		// 10: a room session and a user session in each of a few tabs,
		// with room for reconnects; an identity past that is a script,
		// not a person (1,000 idle sockets cost 2,000 goroutines).
		MaxSocketsPerIdentity: 10,
		// Every room ends at once on SIGTERM; 10s is ample for the
		// sessions to get their close and the HTTP requests under way to
		// finish, and keeps the whole stop well inside the 30s an
		// orchestrator usually gives before SIGKILL (main gives up 5s
		// after it).
		DrainTimeout: 10 * time.Second,
		// Requests are small JSON bodies: 30s is far beyond a slow mobile
		// upload of one, and frees the descriptor of a request whose body
		// never comes. A response is cut only after 30s without progress
		// (a download may take longer: each write extends it).
		HTTPReadTimeout:  30 * time.Second,
		HTTPWriteTimeout: 30 * time.Second,
		// Browsers keep an idle connection for about 60s (Chromium's
		// socket pool drops it after 5 min unused, but the SDK calls the
		// API seldom); past that the descriptor is better freed.
		HTTPIdleTimeout: 60 * time.Second,
	}
}

// configEnvPrefix starts the environment variable of every flag.
const configEnvPrefix = "RELAYD_"

// LoadConfig builds the Config from args (without the program name) and env
// (os.Environ()-style "K=V" entries). Sources apply in this order, later
// ones winning:
//
//  1. DefaultConfig;
//  2. the YAML file named by --config (or RELAYD_CONFIG), decoded strictly:
//     an unknown key is an error;
//  3. environment variables RELAYD_<flag name upper-cased, '-' -> '_'>,
//     e.g. RELAYD_UDP_PORT, where an empty value counts as unset;
//  4. flags.
//
// Durations take Go syntax ("30s"), booleans the strconv.ParseBool forms,
// and --allowed-origins comma-separated lists (the flag may be repeated).
// The result has been through Validate.
//
// On --help, LoadConfig prints the usage to os.Stderr and returns an error
// wrapping flag.ErrHelp: the caller should exit 0.
func LoadConfig(args []string, env []string) (Config, error) {
	return loadConfigTo(os.Stderr, args, env)
}

// loadConfigTo is LoadConfig printing --help to w.
func loadConfigTo(w io.Writer, args, env []string) (Config, error) {
	vars := parseEnvList(env)

	// First pass: parse the flags against the defaults, only to find
	// --config, to answer --help (showing the true defaults) and to report
	// flag errors before touching any file. The flags are applied for real
	// at the end, on top of the file and the environment.
	defaults := DefaultConfig()
	var path string
	fs := newConfigFlagSet(&defaults, &path)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printConfigUsage(w, fs)
		}
		return Config{}, fmt.Errorf("flags: %w", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("flags: unexpected argument %q", fs.Arg(0))
	}
	if path == "" {
		path = vars[configEnvPrefix+"CONFIG"]
	}

	cfg := DefaultConfig()
	if path != "" {
		if err := decodeConfigFile(path, &cfg); err != nil {
			return Config{}, err
		}
	}
	if err := applyConfigEnv(&cfg, vars); err != nil {
		return Config{}, err
	}
	// Each pass gets its own FlagSet: a list flag replaces what the
	// previous source set on its first Set, then appends.
	if err := newConfigFlagSet(&cfg, &path).Parse(args); err != nil {
		return Config{}, fmt.Errorf("flags: %w", err) // parsed fine above; kept for safety
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// newConfigFlagSet defines every flag, bound to c's fields, plus --config
// bound to path. It prints nothing: LoadConfig reports errors itself, and
// prints the usage on --help only.
func newConfigFlagSet(c *Config, path *string) *flag.FlagSet {
	fs := flag.NewFlagSet("relayd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	fs.StringVar(path, "config", "", "YAML config `file` (keys are the flag names)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "HTTP + WebSocket `address`")
	fs.IntVar(&c.UDPPort, "udp-port", c.UDPPort, "the one UDP `port` all media uses (ICE UDP mux); 0 picks a free one")
	fs.StringVar(&c.UDPIP, "udp-ip", c.UDPIP, "`IP` the media UDP socket binds (default: the host of --listen)")
	fs.StringVar(&c.Secret, "secret", c.Secret, "HS256 token `secret`, required unless --dev (prefer RELAYD_SECRET or the file: flags show in ps)")
	fs.BoolVar(&c.Dev, "dev", c.Dev, "development mode: generate a secret if none is given, print an admin token and demo links, allow any WebSocket origin, imply --ice-loopback")
	fs.BoolVar(&c.ICELoopback, "ice-loopback", c.ICELoopback, "offer loopback ICE candidates (tests, one-machine demos)")
	fs.StringVar(&c.PublicIP, "public-ip", c.PublicIP, "`IP` to announce in ICE candidates behind NAT")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "`directory` of the embedded store (invitations, rooms)")
	fs.Var(&stringListFlag{list: &c.AllowedOrigins}, "allowed-origins", "WebSocket `origins` allowed besides the server's own; comma-separated, repeatable")
	fs.IntVar(&c.MaxCohosts, "max-cohosts", c.MaxCohosts, "co-hosts on one stage")
	fs.IntVar(&c.MaxRelayDestinations, "max-relay-destinations", c.MaxRelayDestinations, "destinations of one relay")
	fs.DurationVar(&c.ReconnectGrace, "reconnect-grace", c.ReconnectGrace, "how long a room waits for its vanished host (waiting_reconnect)")
	fs.DurationVar(&c.InvitationTTL, "invitation-ttl", c.InvitationTTL, "how long an invitation stays pending")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log `level`: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log `format`: text or json")
	fs.BoolVar(&c.Record, "record", c.Record, "record every room to WebM under --data-dir (per room: POST /v1/rooms/{room}/record)")
	fs.Var(&stringListFlag{list: &c.WebhookURLs}, "webhook-url", "webhook receiver `URL`; comma-separated, repeatable")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "on SIGTERM or SIGINT every room ends at once; then wait at most this long for sessions to close and HTTP requests to finish (a second signal: no wait); the process gives up 5s later")
	fs.DurationVar(&c.HTTPReadTimeout, "http-read-timeout", c.HTTPReadTimeout, "longest time to read a plain HTTP request, body included (0: none; WebSockets have their own ping deadline)")
	fs.DurationVar(&c.HTTPWriteTimeout, "http-write-timeout", c.HTTPWriteTimeout, "a plain HTTP response that makes no progress for this long is cut; each write extends it, so long downloads go on (0: none)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", c.HTTPIdleTimeout, "how long an idle keep-alive connection stays open (0: the read timeout)")
	fs.StringVar(&c.AdminListen, "admin-listen", c.AdminListen, "`address` of a separate listener serving /debug/pprof/ (off when empty; keep it private)")
	fs.StringVar(&c.Redis, "redis", c.Redis, "cluster mode: Redis `URL` (redis://host:6379/0) shared by every node; the stores move there (docs/cluster.md)")
	fs.StringVar(&c.Advertise, "advertise", c.Advertise, "cluster mode: this node's base `URL` as other nodes reach it (default http://<listen address>)")
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, "cluster mode: this node's `name` (default random)")
	fs.BoolVar(&c.UDPBatch, "udp-batch", c.UDPBatch, "send media in sendmmsg batches (--udp-batch=false: one sendto per packet)")
	fs.BoolVar(&c.DirectSend, "direct-send", c.DirectSend, "encrypt subscribers' media straight into the send batch and read their RTCP off the socket (--direct-send=false: pion's paths)")
	fs.DurationVar(&c.RoomRetention, "room-retention", c.RoomRetention, "how long an ended room is kept; then it is purged with its invitations, chat and recordings (0: forever)")
	fs.IntVar(&c.RoomCreateRate, "room-create-rate", c.RoomCreateRate, "rooms one identity may create a minute, in bursts of as many; beyond: 4029 / HTTP 429 (0: no limit)")
	fs.IntVar(&c.MaxSocketsPerIdentity, "max-sockets-per-identity", c.MaxSocketsPerIdentity, "WebSockets one identity (token sub) may hold open at once; more get HTTP 429 (0: no cap)")
	addTraversalFlags(fs, c)
	return fs
}

// configEnvName is the environment variable of a flag: udp-port -> RELAYD_UDP_PORT.
func configEnvName(flagName string) string {
	return configEnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseEnvList turns "K=V" entries into a map. As with os.Getenv, the first
// entry of a repeated key wins.
func parseEnvList(env []string) map[string]string {
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if _, seen := vars[k]; !seen {
			vars[k] = v
		}
	}
	return vars
}

// decodeConfigFile decodes the YAML file at path over c, refusing unknown
// keys so that a typo does not silently leave a default in place.
func decodeConfigFile(path string, c *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// applyConfigEnv sets c's fields from the RELAYD_* variables in vars.
func applyConfigEnv(c *Config, vars map[string]string) error {
	var ignored string // RELAYD_CONFIG was read by the caller
	fs := newConfigFlagSet(c, &ignored)
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		name := configEnvName(f.Name)
		v := vars[name]
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("environment %s=%q: %w", name, v, err))
		}
	})
	return errors.Join(errs...)
}

// printConfigUsage writes the help text: each flag with its meaning,
// default and environment variable.
func printConfigUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage:
  relayd [flags]
  relayd token --secret S --identity I [--room R] [--role host|viewer] [--name N] [--admin] [--ttl 1h]
  relayd rooms list|stop, relayd participants list|kick|mute, relayd relays list|stop
      operate a running server through its HTTP API (relayd rooms --help, ...)

Every flag can also be set by the environment variable shown, and by the key
of the same name in the YAML file given to --config. Flags win over the
environment, which wins over the file.

Flags:
`)
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintf(w, "\n    \t%s", usage)
		switch f.DefValue {
		case "", "0", "false":
		default:
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, " [%s]\n", configEnvName(f.Name))
	})
}

// stringListFlag is a []string flag.Value taking comma-separated items. The
// first Set replaces what an earlier source (defaults, file, environment)
// put in the list; later Sets, from a repeated flag, append.
type stringListFlag struct {
	list *[]string
	set  bool
}

func (v *stringListFlag) String() string {
	if v == nil || v.list == nil { // flag may call String on a zero value
		return ""
	}
	return strings.Join(*v.list, ",")
}

func (v *stringListFlag) Set(s string) error {
	if !v.set {
		*v.list = nil
		v.set = true
	}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*v.list = append(*v.list, item)
		}
	}
	return nil
}

// Validate checks c and fills the derived values: UDPIP from Listen, and
// ICELoopback under Dev. It reports every problem at once. Calling it again
// on its result is harmless. Under Dev an empty Secret is allowed: the
// caller generates one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Secret == "" && !c.Dev {
		bad("--secret is required unless --dev")
	}
	if c.Dev {
		c.ICELoopback = true
	}

	host, port, listenErr := net.SplitHostPort(c.Listen)
	if listenErr != nil {
		bad("--listen %q: %w", c.Listen, listenErr)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("--listen %q: port must be a number in 0..65535", c.Listen)
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		bad("--udp-port %d: want 0..65535", c.UDPPort)
	}
	switch {
	case c.UDPIP != "":
		if net.ParseIP(c.UDPIP) == nil {
			bad("--udp-ip %q: not an IP address", c.UDPIP)
		}
	case listenErr != nil: // already reported
	case host == "" || net.ParseIP(host) != nil:
		// Bind media where HTTP listens, so a loopback --listen keeps
		// media on loopback too ("" binds every interface).
		c.UDPIP = host
	case host == "localhost":
		c.UDPIP = "127.0.0.1"
	default:
		bad("--udp-ip: cannot derive it from the --listen host %q, give an IP", host)
	}
	c.validateTraversal(bad)
	if c.PublicIP != "" && net.ParseIP(c.PublicIP) == nil {
		bad("--public-ip %q: not an IP address", c.PublicIP)
	}
	if c.DataDir == "" {
		bad("--data-dir must not be empty")
	}

	if c.MaxCohosts < 0 {
		bad("--max-cohosts %d: want >= 0", c.MaxCohosts)
	}
	if c.MaxRelayDestinations < 1 {
		bad("--max-relay-destinations %d: want >= 1", c.MaxRelayDestinations)
	}
	if c.MaxSocketsPerIdentity < 0 {
		bad("--max-sockets-per-identity %d: want >= 0 (0: no cap)", c.MaxSocketsPerIdentity)
	}
	if c.ReconnectGrace <= 0 {
		bad("--reconnect-grace %v: want > 0", c.ReconnectGrace)
	}
	if c.InvitationTTL <= 0 {
		bad("--invitation-ttl %v: want > 0", c.InvitationTTL)
	}
	// Rooms are swept once a minute, and a room's recordings are final
	// seconds after its end: a shorter retention means nothing more.
	if c.RoomRetention != 0 && c.RoomRetention < time.Minute {
		bad("--room-retention %v: want 0 (forever) or at least 1m", c.RoomRetention)
	}
	if c.RoomCreateRate < 0 {
		bad("--room-create-rate %d: want >= 0 (0: no limit)", c.RoomCreateRate)
	}
	if c.DrainTimeout <= 0 {
		bad("--drain-timeout %v: want > 0", c.DrainTimeout)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"http-read-timeout", c.HTTPReadTimeout}, {"http-write-timeout", c.HTTPWriteTimeout}, {"http-idle-timeout", c.HTTPIdleTimeout}} {
		if d.v < 0 {
			bad("--%s %v: want >= 0 (0: none)", d.flag, d.v)
		}
	}

	switch c.LogLevel = strings.ToLower(c.LogLevel); c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat = strings.ToLower(c.LogFormat); c.LogFormat {
	case "text", "json":
	default:
		bad("--log-format %q: want text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}
