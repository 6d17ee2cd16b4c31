package bench

// What the lab's parent and its children say to each other. Each group of
// participants (the publisher, a group of viewers, the browser viewer) runs
// as a child process inside its own client namespace: relaybench
// re-executed by netlab.GoCommand. The parent writes JSON lines on the
// child's stdin: first its childConfig, later one "window" command; closing
// stdin tells the child to leave and exit. The child writes JSON lines on
// its stdout, each after childPrefix ("ready", then "report", or "error"):
// the prefix keeps them apart from anything a library prints there (pion
// logs to stdout), which the parent keeps as the child's log.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// childPrefix starts every protocol line a child writes.
const childPrefix = "@relaybench "

// The registered functions (netlab.Register) of the children.
const (
	childPublisher = "relaybench-publisher"
	childViewers   = "relaybench-viewers"
	childBrowser   = "relaybench-browser"
)

// childConfig is a child's first stdin line.
type childConfig struct {
	Group   string `json:"group"`
	BaseURL string `json:"base_url"` // http://198.18.0.1:<port>
	Room    string `json:"room"`
	// Identities and their tokens, one per participant of the group.
	Identities []string `json:"identities"`
	Tokens     []string `json:"tokens"`
	// Addrs are their addresses, one link each (netlab AddLink): a
	// participant's media stays on its own link, behind its own caps.
	Addrs []string `json:"addrs"`

	VideoBitrate int  `json:"video_bitrate"`
	FPS          int  `json:"fps"`
	Audio        bool `json:"audio"`

	JoinConcurrency   int    `json:"join_concurrency"`
	FirstFrameTimeout int64  `json:"first_frame_timeout_ns"`
	Chromium          string `json:"chromium,omitempty"` // the browser's binary
	// Transport forces the Go participants' path (labtransport.go);
	// CAFile is the lab TURN server's certificate.
	Transport string `json:"transport,omitempty"`
	CAFile    string `json:"ca_file,omitempty"`

	// Simulcast: the publisher sends one layer per LayerBitrates rate
	// (simulcast.go), and the viewers join as 1.1 sessions and follow the
	// layers they get (layers.go).
	Simulcast     bool  `json:"simulcast,omitempty"`
	LayerBitrates []int `json:"layer_bitrates,omitempty"`
	// AtNS and LiftNS: the group's profile applies and is lifted this long
	// into the window (labnet.go); 0: from the start, never.
	AtNS   int64 `json:"at_ns,omitempty"`
	LiftNS int64 `json:"lift_ns,omitempty"`
	// Quality: the viewers ask for at most this layer (track.settings)
	Quality string `json:"quality,omitempty"`
}

// windowCmd opens the measurement window, in the future so that every
// child has it in time: packets sent in [StartNS, EndNS) count, and a child
// reports GraceNS after EndNS.
type windowCmd struct {
	Cmd     string `json:"cmd"` // "window"
	StartNS int64  `json:"start_ns"`
	EndNS   int64  `json:"end_ns"`
	GraceNS int64  `json:"grace_ns"`
}

// childMsg is one line a child writes.
type childMsg struct {
	Type  string `json:"type"` // "ready", "report", "error"
	Error string `json:"error,omitempty"`

	Publisher *publisherFigures `json:"publisher,omitempty"`
	Viewers   []viewerFigures   `json:"viewers,omitempty"`
	Latency   *histJSON         `json:"latency,omitempty"` // every viewer of the group, packets sent in the window
	Browser   *browserFigures   `json:"browser,omitempty"`
}

// publisherFigures is what the publisher sent and heard back in the window.
type publisherFigures struct {
	Joined             bool     `json:"joined"`
	JoinError          string   `json:"join_error,omitempty"`
	VideoPackets       int64    `json:"video_packets"` // sent in the window (by send time)
	AudioPackets       int64    `json:"audio_packets"`
	Keyframes          int64    `json:"keyframes"`            // sent in the window
	KeyframesOnRequest int64    `json:"keyframes_on_request"` // of the run, after a PLI or FIR
	NACKPackets        int64    `json:"nack_packets"`
	NACKedSeqs         int64    `json:"nacked_seqs"`
	PLIs               int64    `json:"plis"`
	FIRs               int64    `json:"firs"`
	REMBs              int64    `json:"rembs"`
	REMBLastBps        *float64 `json:"remb_last_bps"`
	TWCC               int64    `json:"twcc_feedback"`
	RRs                int64    `json:"receiver_reports"`
	RRMaxFractionLost  *float64 `json:"rr_max_fraction_lost"` // the highest loss fraction a report gave (0..1)
	RRLost             int64    `json:"rr_lost"`              // cumulative lost packets the reports' count grew by
	ICEState           string   `json:"ice_state"`
	Transport          string   `json:"transport"` // udp, tcp or turn: the selected candidate pair's
	// with --simulcast: each layer's window, and the layers the server
	// last asked for (publisher.layers)
	Layers       []layerFigures `json:"layers,omitempty"`
	ActiveLayers []string       `json:"active_layers,omitempty"`
}

// viewerFigures is one Go viewer's window.
type viewerFigures struct {
	ID        string `json:"id"`
	Joined    bool   `json:"joined"` // the join request was answered
	JoinError string `json:"join_error,omitempty"`
	ICEState  string `json:"ice_state"` // the subscriber PeerConnection's, at the end
	Transport string `json:"transport"` // its selected pair's: udp, tcp or turn

	ConnectMS     *float64 `json:"connect_ms"`
	JoinedMS      *float64 `json:"joined_ms"`
	FirstPacketMS *float64 `json:"first_packet_ms"`
	FirstFrameMS  *float64 `json:"first_frame_ms"` // dial start -> first frame shown

	VideoReceived uint64 `json:"video_received"` // distinct packets sent in the window
	// VideoExpected (--simulcast): the span of the received video's
	// sequence numbers in the window, which a viewer's loss is counted
	// against (each viewer gets its own layers, not every packet sent)
	VideoExpected uint64  `json:"video_expected,omitempty"`
	AudioReceived uint64  `json:"audio_received"`
	Duplicates    uint64  `json:"duplicates"`
	Late          uint64  `json:"late"`  // video packets that came after a later one (the lab does not reorder: retransmissions), whole run
	Bytes         uint64  `json:"bytes"` // arrived within the window
	FramesShown   uint64  `json:"frames_shown"`
	FreezeMS      float64 `json:"freeze_ms"`
	PLIs          uint64  `json:"plis"` // sent within the window

	Layers *viewerLayers `json:"layers,omitempty"` // with --simulcast (layers.go)
}

// browserFigures is the browser viewer's getStats (inbound-rtp video) at
// the window's start and end, and its join.
type browserFigures struct {
	Joined       bool        `json:"joined"` // a frame was decoded within the first-frame timeout
	JoinError    string      `json:"join_error,omitempty"`
	FirstFrameMS *float64    `json:"first_frame_ms"` // page load start -> first frame decoded
	Transport    string      `json:"transport"`      // the page's: udp, tcp, turn_udp, turn_tcp or turn_tls
	Start, End   *videoStats `json:"-"`
	Stats        *videoStats `json:"stats,omitempty"` // End - Start (resolution and fps: End's)
}

// videoStats are the getStats fields of one inbound video stream.
type videoStats struct {
	FramesDecoded        float64 `json:"framesDecoded"`
	FramesReceived       float64 `json:"framesReceived"`
	FramesDropped        float64 `json:"framesDropped"`
	KeyFramesDecoded     float64 `json:"keyFramesDecoded"`
	FreezeCount          float64 `json:"freezeCount"`
	TotalFreezesDuration float64 `json:"totalFreezesDuration"` // s
	PauseCount           float64 `json:"pauseCount"`
	TotalPausesDuration  float64 `json:"totalPausesDuration"` // s
	PacketsReceived      float64 `json:"packetsReceived"`
	PacketsLost          float64 `json:"packetsLost"`
	BytesReceived        float64 `json:"bytesReceived"`
	NACKCount            float64 `json:"nackCount"`
	PLICount             float64 `json:"pliCount"`
	FIRCount             float64 `json:"firCount"`
	JitterBufferDelay    float64 `json:"jitterBufferDelay"` // s, summed over emitted frames
	JitterBufferEmitted  float64 `json:"jitterBufferEmittedCount"`
	FrameWidth           float64 `json:"frameWidth"`
	FrameHeight          float64 `json:"frameHeight"`
	FramesPerSecond      float64 `json:"framesPerSecond"`
}

// delta is e - s for the counters; the resolution and frame rate are e's.
func (e videoStats) delta(s videoStats) videoStats {
	d := videoStats{
		FramesDecoded: e.FramesDecoded - s.FramesDecoded, FramesReceived: e.FramesReceived - s.FramesReceived,
		FramesDropped: e.FramesDropped - s.FramesDropped, KeyFramesDecoded: e.KeyFramesDecoded - s.KeyFramesDecoded,
		FreezeCount: e.FreezeCount - s.FreezeCount, TotalFreezesDuration: e.TotalFreezesDuration - s.TotalFreezesDuration,
		PauseCount: e.PauseCount - s.PauseCount, TotalPausesDuration: e.TotalPausesDuration - s.TotalPausesDuration,
		PacketsReceived: e.PacketsReceived - s.PacketsReceived, PacketsLost: e.PacketsLost - s.PacketsLost,
		BytesReceived: e.BytesReceived - s.BytesReceived, NACKCount: e.NACKCount - s.NACKCount,
		PLICount: e.PLICount - s.PLICount, FIRCount: e.FIRCount - s.FIRCount,
		JitterBufferDelay: e.JitterBufferDelay - s.JitterBufferDelay, JitterBufferEmitted: e.JitterBufferEmitted - s.JitterBufferEmitted,
		FrameWidth: e.FrameWidth, FrameHeight: e.FrameHeight, FramesPerSecond: e.FramesPerSecond,
	}
	return d
}

// histJSON is a latency histogram on the wire: its non-empty buckets.
type histJSON struct {
	N       uint64      `json:"n"`
	SumUS   uint64      `json:"sum_us"`
	MaxUS   uint64      `json:"max_us"`
	Buckets [][2]uint64 `json:"buckets"` // [bucket index, count]
}

func histToJSON(s *HistSnap) *histJSON {
	h := &histJSON{N: s.N, SumUS: s.SumUS, MaxUS: s.MaxUS}
	for i, c := range s.Counts {
		if c != 0 {
			h.Buckets = append(h.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return h
}

// addTo merges h into s; buckets out of range are an error.
func (h *histJSON) addTo(s *HistSnap) error {
	var o HistSnap
	for _, b := range h.Buckets {
		if b[0] >= uint64(len(o.Counts)) {
			return fmt.Errorf("latency bucket %d out of range", b[0])
		}
		o.Counts[b[0]] += b[1]
	}
	o.N, o.SumUS, o.MaxUS = h.N, h.SumUS, h.MaxUS
	s.Add(&o)
	return nil
}

// childIO is a child's side of the protocol.
type childIO struct {
	in  *bufio.Scanner
	out io.Writer
}

func newChildIO(in io.Reader, out io.Writer) *childIO {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &childIO{in: sc, out: out}
}

// send writes one protocol line.
func (c *childIO) send(m childMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.out, "%s%s\n", childPrefix, b)
	return err
}

// next reads the next stdin line into v; io.EOF when the parent closed it.
func (c *childIO) next(v any) error {
	if !c.in.Scan() {
		if err := c.in.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	if err := json.Unmarshal(c.in.Bytes(), v); err != nil {
		return fmt.Errorf("bad line from the parent %q: %w", c.in.Text(), err)
	}
	return nil
}

// parseChildLine reads one line of a child's stdout: a protocol message, or
// (ok false) a log line.
func parseChildLine(line string) (m childMsg, ok bool, err error) {
	rest, ok := strings.CutPrefix(line, childPrefix)
	if !ok {
		return m, false, nil
	}
	if err := json.Unmarshal([]byte(rest), &m); err != nil {
		return m, true, fmt.Errorf("bad message %q: %w", rest, err)
	}
	return m, true, nil
}
