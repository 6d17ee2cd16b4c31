package bench

// The resume lab's children (resumelab.go runs them): the host, which
// publishes, relays and resumes when told, and the viewers, which report
// when video comes back. Each reads commands on stdin and answers on
// stdout (resumeIO).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/netlab"
)

// The resume lab's children.
const (
	childResumeHost   = "relaybench-resume-host"
	childResumeViewer = "relaybench-resume-viewer"
	resumePrefix      = "@resumelab "
)

// RegisterResumeLabChildren registers the resume lab's children with
// netlab. Call it before netlab.MaybeRunChild (RegisterLabChildren does).
func RegisterResumeLabChildren() {
	netlab.Register(childResumeHost, runResumeHost)
	netlab.Register(childResumeViewer, runResumeViewer)
}

// resumeChildConfig is a resume lab child's first stdin line.
type resumeChildConfig struct {
	BaseURL   string `json:"base_url"`
	Room      string `json:"room"`
	Token     string `json:"token"`
	DestRoom  string `json:"dest_room,omitempty"`  // host: the relay's destination
	DestToken string `json:"dest_token,omitempty"` // host: its token there
	Watch     string `json:"watch,omitempty"`      // viewer: the host's identity
}

// resumeMsg is a line between the parent and a child.
type resumeMsg struct {
	Type      string `json:"type"` // ready, marked, frame, resumed, stats, ended, error; cmd: mark, restored, resume, stats, await_end
	AtNS      int64  `json:"at_ns,omitempty"`
	Resumed   bool   `json:"resumed,omitempty"`
	Refreshed bool   `json:"refreshed,omitempty"` // resumed with a token from token.refresh
	Error     string `json:"error,omitempty"`
	Count     [4]int `json:"count,omitempty"` // stats: left, joined, paused, active
	Reason    string `json:"reason,omitempty"`
}

// resumeIO is a child's side of the protocol.
type resumeIO struct {
	in  *bufio.Scanner
	mu  sync.Mutex
	out io.Writer
}

func newResumeIO() *resumeIO {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &resumeIO{in: sc, out: os.Stdout}
}

func (r *resumeIO) next(v any) error {
	if !r.in.Scan() {
		if err := r.in.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	return json.Unmarshal(r.in.Bytes(), v)
}

func (r *resumeIO) say(m resumeMsg) {
	b, _ := json.Marshal(m)
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = fmt.Fprintf(r.out, "%s%s\n", resumePrefix, b)
}

// dialLab opens a 1.1 session from inside a client namespace.
func dialLab(ctx context.Context, cfg resumeChildConfig) (*client.Client, error) {
	se := labSettingEngine(netip.Addr{})
	c, err := client.Dial(ctx, cfg.BaseURL, cfg.Token, client.Options{SettingEngine: &se})
	if err != nil {
		return nil, err
	}
	if _, err := c.JoinWith(ctx, client.JoinParams{Version: "1.1"}); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// runResumeHost is the host child: it publishes, relays into the
// destination, and resumes when told.
func runResumeHost(ctx context.Context, _ []string) error {
	rio := newResumeIO()
	var cfg resumeChildConfig
	if err := rio.next(&cfg); err != nil {
		return err
	}
	c, err := dialLab(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	pub, err := client.NewSyntheticPublisher(client.PublisherOptions{KeyframeInterval: -1, BitrateBps: 300_000})
	if err != nil {
		return err
	}
	if err := c.Publish(ctx, pub.Tracks()...); err != nil {
		return err
	}
	pub.Start()
	defer pub.Stop()
	if _, err := c.StartRelay(ctx, []client.RelayTarget{{Room: cfg.DestRoom, Token: cfg.DestToken}}); err != nil {
		return err
	}
	if _, err := client.WaitEvent(ctx, c, client.NotifyRelayState, func(ev client.RelayStateEvent) bool { return ev.State == "running" }); err != nil {
		return err
	}
	rio.say(resumeMsg{Type: "ready"})
	for {
		var cmd resumeMsg
		if err := rio.next(&cmd); err != nil {
			return nil // stdin closed: leave
		}
		if cmd.Type != "resume" {
			continue
		}
		c.DropSocket()
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		refreshed := c.Token() != cfg.Token
		r, err := c.Resume(rctx, client.ResumeOptions{})
		cancel()
		m := resumeMsg{Type: "resumed", Refreshed: refreshed}
		if err != nil {
			m.Error = err.Error()
		} else {
			m.Resumed = r.Resumed
		}
		rio.say(m)
	}
}

// runResumeViewer is a viewer child: it watches the room's video and
// reports its next keyframe after each mark, and what it heard of the
// host.
func runResumeViewer(ctx context.Context, _ []string) error {
	rio := newResumeIO()
	var cfg resumeChildConfig
	if err := rio.next(&cfg); err != nil {
		return err
	}
	c, err := dialLab(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	tr, err := c.WaitTrack(ctx, "video", nil)
	if err != nil {
		return err
	}
	for tr.Keyframes() == 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(10 * time.Millisecond)
	}
	// What the viewer hears of the host, counted as it comes.
	var mu sync.Mutex
	var count [4]int // left, joined, paused, active
	ended := make(chan string, 1)
	watch := func() {
		for {
			select {
			case n := <-c.Notifications():
				mu.Lock()
				switch n.Method {
				case client.NotifyParticipantLeft, client.NotifyParticipantJoined:
					var ev client.ParticipantEvent
					if n.Decode(&ev) == nil && ev.Participant.Identity == cfg.Watch && ev.Participant.Role != "relay" {
						count[map[bool]int{true: 0, false: 1}[n.Method == client.NotifyParticipantLeft]]++
					}
				case client.NotifyTrackStream:
					var ev client.TrackStreamEvent
					if n.Decode(&ev) == nil && ev.Reason == "publisher_reconnecting" {
						count[map[bool]int{true: 2, false: 3}[ev.State == "paused"]]++
					}
				case client.NotifyRoomUpdated:
					var ev client.RoomEvent
					if n.Decode(&ev) == nil && ev.Room.Status == "ended" {
						select {
						case ended <- ev.Room.EndReason:
						default:
						}
					}
				}
				mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}
	go watch()
	marks := make(chan chan int64, 1) // the mark waiting for its restore
	rio.say(resumeMsg{Type: "ready"})
	for {
		var cmd resumeMsg
		if err := rio.next(&cmd); err != nil {
			return nil
		}
		switch cmd.Type {
		case "mark":
			// From now on every new keyframe's arrival is noted; the first
			// at or after the restore (told with "restored") is reported.
			// A keyframe in flight when the cut began arrives before it.
			restored := make(chan int64, 1)
			marks <- restored
			rio.say(resumeMsg{Type: "marked"})
			go func() {
				deadline := time.Now().Add(90 * time.Second)
				k := tr.Keyframes()
				var at, seen []int64
				restoredAt := int64(-1)
				for time.Now().Before(deadline) {
					if n := tr.Keyframes(); n != k {
						k = n
						seen = append(seen, time.Now().UnixNano())
					}
					select {
					case restoredAt = <-restored:
					default:
					}
					if restoredAt >= 0 {
						at = slices.DeleteFunc(slices.Clone(seen), func(t int64) bool { return t < restoredAt })
						if len(at) > 0 {
							break
						}
					}
					time.Sleep(2 * time.Millisecond)
				}
				m := resumeMsg{Type: "frame"}
				if len(at) > 0 {
					m.AtNS = at[0]
				}
				rio.say(m)
			}()
		case "restored":
			select {
			case ch := <-marks:
				ch <- cmd.AtNS
			default:
			}
		case "stats":
			mu.Lock()
			rio.say(resumeMsg{Type: "stats", Count: count})
			mu.Unlock()
		case "await_end":
			select {
			case reason := <-ended:
				rio.say(resumeMsg{Type: "ended", Reason: reason, AtNS: time.Now().UnixNano()})
			case <-time.After(2 * time.Minute):
				rio.say(resumeMsg{Type: "ended"})
			}
		}
	}
}
