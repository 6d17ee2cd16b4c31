package bench

// What a run is asked to do: the scenario flags of cmd/relaybench, their
// defaults and their validation.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config describes one relaybench run. cmd/relaybench fills it from flags;
// tests fill it directly. Zero values take the defaults of Defaults.
type Config struct {
	// Target: exactly one of URL and Spawn.
	URL        string   // base URL of a running server, http://127.0.0.1:8800
	Spawn      string   // path of a relayd binary to start and stop
	SpawnArgs  []string // more flags for the spawned relayd (e.g. --admin-listen 127.0.0.1:6060)
	Secret     string   // the server's token secret (--url); generated with --spawn
	AdminToken string   // with --url and no secret: mint tokens with POST /v1/tokens

	Rooms        int           // rooms
	Publishers   int           // publishers per room from the start: the host and Publishers-1 co-hosts
	Viewers      int           // viewers per room
	Cohosts      int           // co-hosts per room brought on stage during the window
	Relays       int           // each room's host relays into this many other rooms
	Duration     time.Duration // the measurement window
	Warmup       time.Duration // between the last join and the window
	VideoBitrate int           // bits per second
	FPS          int
	Audio        bool    // an Opus track besides the video
	Churn        float64 // viewer arrivals per second (all rooms); each stays 2-6 s

	Ramp     bool // add viewers step by step until loss or latency passes a limit
	RampStep int  // viewers per room added at each step
	RampMax  int  // stop the ramp at this many viewers per room

	JoinConcurrency int // viewers joining at the same time

	// Light: all stable viewers of a room but its first FullViewers are
	// light viewers (lightviewer.go): real PeerConnections that count the
	// RTP headers instead of decrypting the media. Loopback runs only.
	Light       bool
	FullViewers int // with Light: full viewers per room, at least 1 (0: the default, 5)

	// The network lab (docs/bench.md, "The network lab"): with any of these
	// the run happens in a netlab lab, the server (--spawn) in its server
	// namespace and each group of participants in its own client
	// namespace; RunLab runs it.
	Lab               bool          // in the lab even without profiles: --viewers is the healthy group
	ViewerNets        []ViewerNet   // --viewer-net N:PROFILE, one group each
	PublisherNet      string        // --publisher-net PROFILE ("" = a perfect link)
	BrowserViewer     string        // --browser-viewer PROFILE: one Chromium viewer behind it ("none": a perfect link)
	Chromium          string        // the browser binary (default: chromium in PATH)
	FirstFrameTimeout time.Duration // lab: a viewer without a frame this long after its dial failed to join
	// Simulcast (lab): the publisher sends one simulcast layer per
	// LayerBitrates rate (default DefaultLayerBitrates) and the viewers
	// join as 1.1 sessions, whose layers the report follows (simulcast.go).
	Simulcast     bool
	LayerBitrates []int
	// Nodes (lab): 2 runs two relayd nodes on one Redis, the relay
	// destination room (--relays 1) on the second (labnodes.go).
	Nodes int

	JSON       string // write the report here
	CPUProfile string // write the bench's own CPU profile of the (first) window here
	Command    string // the command line, recorded in the report

	// ramp stop conditions (tests may lower them)
	RampMaxLoss  float64 // default 0.005
	RampMaxP99MS float64 // default 100

	floorPackets int // packets per floor run; 0 = floorPackets (tests use fewer)
	// lightDrop (tests): each light viewer drops the video packets this
	// returns true for, once each, before counting them
	lightDrop func(seq uint16) bool
}

// Defaults are the values zero fields of a Config take.
var Defaults = Config{
	Rooms:             1,
	Publishers:        1,
	Viewers:           10,
	Duration:          10 * time.Second,
	Warmup:            2 * time.Second,
	VideoBitrate:      1_500_000,
	FPS:               30,
	Audio:             true,
	RampStep:          25,
	RampMax:           1000,
	JoinConcurrency:   8,
	FullViewers:       5,
	FirstFrameTimeout: 20 * time.Second,
	RampMaxLoss:       0.005,
	RampMaxP99MS:      100,
}

// normalize applies the defaults to zero fields (Audio is taken as given)
// and checks the combination.
func (c *Config) normalize() error {
	d := Defaults
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.Rooms, d.Rooms)
	setInt(&c.Publishers, d.Publishers)
	setInt(&c.VideoBitrate, d.VideoBitrate)
	setInt(&c.FPS, d.FPS)
	setInt(&c.RampStep, d.RampStep)
	setInt(&c.RampMax, d.RampMax)
	setInt(&c.JoinConcurrency, d.JoinConcurrency)
	setInt(&c.FullViewers, d.FullViewers)
	if c.Duration == 0 {
		c.Duration = d.Duration
	}
	if c.Warmup == 0 {
		c.Warmup = d.Warmup
	}
	if c.RampMaxLoss == 0 {
		c.RampMaxLoss = d.RampMaxLoss
	}
	if c.RampMaxP99MS == 0 {
		c.RampMaxP99MS = d.RampMaxP99MS
	}
	if c.FirstFrameTimeout == 0 {
		c.FirstFrameTimeout = d.FirstFrameTimeout
	}
	if c.floorPackets == 0 {
		c.floorPackets = floorPackets
	}

	switch {
	case (c.URL == "") == (c.Spawn == ""):
		return errors.New("give exactly one of --url URL (a running server) and --spawn PATH (a relayd binary to start)")
	case c.URL != "" && c.Secret == "" && c.AdminToken == "":
		return errors.New("--url needs --secret (the server's token secret) or --admin-token (to mint tokens with POST /v1/tokens)")
	case c.Rooms < 1 || c.Publishers < 1:
		return errors.New("--rooms and --publishers must be at least 1")
	case c.Viewers < 0 || c.Cohosts < 0 || c.Relays < 0 || c.Churn < 0:
		return errors.New("--viewers, --cohosts, --relays and --churn cannot be negative")
	case c.Relays > 0 && c.Relays >= c.Rooms && !c.LabMode():
		return fmt.Errorf("--relays %d needs at least %d rooms (each room's host relays into %d other rooms)", c.Relays, c.Relays+1, c.Relays)
	case c.Duration < time.Second:
		return errors.New("--duration must be at least 1s")
	case c.FPS < 1 || c.FPS > 120:
		return errors.New("--fps must be between 1 and 120")
	case c.VideoBitrate < 10_000:
		return errors.New("--video-bitrate must be at least 10k")
	case c.Ramp && c.RampStep < 1:
		return errors.New("--ramp-step must be at least 1")
	case c.JoinConcurrency < 1:
		return errors.New("--join-concurrency must be at least 1")
	case c.FullViewers < 1:
		return errors.New("--full-viewers must be at least 1 (latency and integrity come from the full viewers)")
	case c.Light && c.LabMode():
		return errors.New("--light runs on loopback only: the network lab's viewers run in namespaces and follow the clip's frames, which a light viewer cannot see (drop --light, or the lab flags)")
	}
	if c.Simulcast && len(c.LayerBitrates) == 0 {
		c.LayerBitrates = DefaultLayerBitrates
	}
	switch {
	case c.Nodes > 1 && !c.LabMode():
		return errors.New("--nodes runs in the network lab (--lab, --viewer-net or --simulcast)")
	case len(c.LayerBitrates) > 0 && !c.Simulcast:
		return errors.New("--layer-bitrates needs --simulcast")
	case len(c.LayerBitrates) > len(simulcastRIDs):
		return fmt.Errorf("at most %d simulcast layers", len(simulcastRIDs))
	}
	if c.LabMode() {
		return c.checkLab()
	}
	return nil
}

// ParseBitrate reads a bit rate: "1500000", "1500k", "1.5M", "1.5Mbps".
func ParseBitrate(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "bps"), "bit/s")
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1e3, t[:len(t)-1]
	case strings.HasSuffix(t, "m"):
		mult, t = 1e6, t[:len(t)-1]
	case strings.HasSuffix(t, "g"):
		mult, t = 1e9, t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("bad bit rate %q (examples: 1500000, 1500k, 1.5M)", s)
	}
	return int(v * mult), nil
}
