package bench

// The report: one JSON object (--json) and the same figures as a table on
// stdout. Every field is documented in docs/bench.md. Unknown figures are
// null, never a made-up zero.

import (
	"encoding/json"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// Report is the result of a run.
type Report struct {
	Version   int       `json:"version"`
	Command   string    `json:"command,omitempty"`
	StartedAt time.Time `json:"started_at"`
	Machine   Machine   `json:"machine"`
	Load      Load      `json:"machine_load"`
	Target    string    `json:"target"` // "spawn" or "url"
	ServerURL string    `json:"server_url"`

	Scenario Scenario `json:"scenario"`

	Rooms      int     `json:"rooms"`
	Publishers int     `json:"publishers"`
	Viewers    int     `json:"viewers"`
	Cohosts    int     `json:"cohosts"`
	Relays     int     `json:"relays"`
	DurationS  float64 `json:"duration_s"`

	PacketsSent     uint64   `json:"packets_sent"`
	PacketsExpected uint64   `json:"packets_expected"`
	PacketsReceived uint64   `json:"packets_received"`
	LossRatio       *float64 `json:"loss_ratio"`
	Duplicates      uint64   `json:"duplicates"`
	// Light: with --light, the full and the light viewers apart
	Light *LightReport `json:"light,omitempty"`

	LatencyMS          Percentiles  `json:"latency_ms"`
	RelayLatencyMS     *Percentiles `json:"relay_latency_ms,omitempty"`
	RelayHopAddedP99MS *float64     `json:"relay_hop_added_p99_ms,omitempty"`

	ConnectMS           Percentiles `json:"connect_ms"`
	JoinedMS            Percentiles `json:"joined_ms"`
	JoinToFirstPacketMS Percentiles `json:"join_to_first_packet_ms"`
	JoinToFirstFrameMS  Percentiles `json:"join_to_first_frame_ms"`
	JoinErrors          int         `json:"join_errors"`
	ViewersWithoutFrame int         `json:"viewers_without_frame"`

	Server Server `json:"server"`

	ServerCPUUSPerPacket *float64     `json:"server_cpu_us_per_packet"`
	FloorUSPerPacket     *float64     `json:"floor_us_per_packet"`
	ServerToFloorRatio   *float64     `json:"server_to_floor_ratio"`
	SRTPProfile          string       `json:"srtp_profile"`
	Floor                *FloorResult `json:"floor,omitempty"`        // after the run
	FloorBefore          *FloorResult `json:"floor_before,omitempty"` // before the run
	FloorDrift           *float64     `json:"floor_drift"`            // floor.us_per_packet / floor_before.us_per_packet - 1

	ServerRSSBytes          *float64 `json:"server_rss_bytes"`
	ServerRSSPerViewerBytes *float64 `json:"server_rss_per_viewer_bytes"`

	BenchCPUUSPerPacket *float64 `json:"bench_cpu_us_per_packet"`
	BenchCPUCores       *float64 `json:"bench_cpu_cores"`
	BenchPacketsRead    uint64   `json:"bench_packets_read"`

	PublisherNACKs     int `json:"publisher_nacks_received"`
	PublisherPLIs      int `json:"publisher_plis_received"`
	PublisherKeyframes int `json:"publisher_keyframes_sent"`

	RelayStartMS      *Percentiles       `json:"relay_start_ms,omitempty"`
	RelayDestinations []RelayDestination `json:"relay_destinations,omitempty"`
	CohostStageMS     *Percentiles       `json:"cohost_stage_ms,omitempty"`
	CohostErrors      []string           `json:"cohost_errors,omitempty"`
	Churn             *Churn             `json:"churn,omitempty"`
	Ramp              *Ramp              `json:"ramp,omitempty"`

	Targets []Target `json:"targets"`
}

// Scenario is what the run was asked (per room where it says so).
type Scenario struct {
	Rooms             int     `json:"rooms"`
	PublishersPerRoom int     `json:"publishers_per_room"`
	ViewersPerRoom    int     `json:"viewers_per_room"`
	CohostsPerRoom    int     `json:"cohosts_per_room"`
	RelaysPerRoom     int     `json:"relays_per_room"`
	VideoBitrateBps   int     `json:"video_bitrate_bps"`
	FPS               int     `json:"fps"`
	Audio             bool    `json:"audio"`
	ChurnPerSecond    float64 `json:"churn_per_s"`
	DurationS         float64 `json:"duration_s"`
	WarmupS           float64 `json:"warmup_s"`
	Ramp              bool    `json:"ramp"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	OS       string `json:"os"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
}

// Load is the whole machine's CPU use during the window, to tell a quiet
// machine from one where other processes competed with the server and the
// bench (which disturbs every figure).
type Load struct {
	BusyCores  *float64 `json:"busy_cores"`            // every process and the kernel
	OtherCores *float64 `json:"other_processes_cores"` // busy minus the server and the bench
	StealCores *float64 `json:"steal_cores"`           // taken by the hypervisor
	// SoftirqCores is the kernel's deferred work (packets crossing the
	// lab's veths and router, mostly), part of busy and charged to no
	// process; in the lab other_processes_cores leaves it out.
	SoftirqCores *float64 `json:"softirq_cores,omitempty"`
}

// Server holds the server's figures over the window.
type Server struct {
	CPUSeconds      *float64 `json:"cpu_seconds"`
	CPUCores        *float64 `json:"cpu_cores"`
	PacketsIn       *float64 `json:"packets_in"`
	PacketsOut      *float64 `json:"packets_out"`
	PacketsInPerS   *float64 `json:"packets_in_per_s"`
	PacketsOutPerS  *float64 `json:"packets_out_per_s"`
	BitsInPerS      *float64 `json:"bits_in_per_s"`
	BitsOutPerS     *float64 `json:"bits_out_per_s"`
	NACKs           *float64 `json:"nacks"`
	RetransmitsHit  *float64 `json:"retransmits_hit"`
	RetransmitsMiss *float64 `json:"retransmits_miss"`
	// RetransmitsBudget: NACKs the server refused, over the
	// subscriber's retransmission budget (relayd_retransmits_total{result="budget"})
	RetransmitsBudget *float64 `json:"retransmits_budget,omitempty"`
	PLIsFromViewers   *float64 `json:"plis_from_subscribers"`
	PLIsToPublishers  *float64 `json:"plis_to_publishers"`
	Drops             *float64 `json:"drops"`
	ForwardP50MS      *float64 `json:"forward_latency_p50_ms"`
	ForwardP99MS      *float64 `json:"forward_latency_p99_ms"`
	RSSBeforeViewers  *float64 `json:"rss_before_viewers_bytes"`
	RSSBytes          *float64 `json:"rss_bytes"`
	Goroutines        *float64 `json:"goroutines"`
	HeapInuse         *float64 `json:"heap_inuse_bytes"`
	StackInuse        *float64 `json:"stack_inuse_bytes"`
	CPUSource         string   `json:"cpu_source"` // "/proc/<pid>/stat" or "/metrics"
}

// RelayDestination is one (source room, destination room) relay.
type RelayDestination struct {
	Source         string   `json:"source"`
	Destination    string   `json:"destination"`
	State          string   `json:"state"`       // the destination's state in relay.start's result
	RelayState     string   `json:"relay_state"` // the relay's state in its last relay.state notification
	Error          string   `json:"error,omitempty"`
	StartMS        *float64 `json:"start_ms"`
	DeliveredRatio *float64 `json:"delivered_ratio"`
}

// Churn summarizes --churn.
type Churn struct {
	Joins              int64       `json:"joins"`
	Leaves             int64       `json:"leaves"`
	Failures           int64       `json:"failures"`
	JoinToFirstFrameMS Percentiles `json:"join_to_first_frame_ms"`
}

// Target is one of the targets, checked against this run.
type Target struct {
	Name   string   `json:"name"`
	Limit  string   `json:"limit"`
	Value  *float64 `json:"value"`
	Met    *bool    `json:"met"` // null: not applicable or not measured
	Remark string   `json:"remark,omitempty"`
}

// writeJSON writes the report to path.
func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// ptr returns a pointer to v rounded to 3 decimals, nil when NaN.
func ptr(v float64) *float64 { return num(v) }

// ratio returns a/b, NaN when b is 0 or either is NaN.
func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}
