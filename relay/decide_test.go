package relay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/relaysfu/relayd/sfu"
)

// The relay's decisions, step by step, against PROTOCOL.md's "Exactly:"
// list and the state, error and event tables. Each case starts a relay
// out of room "a" into its destinations, then runs its steps through run
// (the same driver the Relay uses) with a fake that performs the actions:
// a join succeeds unless fails names its room. The trace is every
// notification and action, in order:
//
//	state running/2 none/0    relay.state
//	event 3 b                 relay.event (room b); "event 2" has no room
//	join b, leave b           doJoin, doLeave
//	track b +, track b -      doTrack (published, unpublished)
//	pause, resume, end        doPause, doResume, doEnd
//
// Steps (a trailing @n names join n, to send a stale word):
//
//	begin, pause, resume, stop, gone (the source left)
//	update b c=bob d! e!2     targets: b as alice, c as bob, d whose token fails, e with another failing token
//	ended b, lost b           b's room ended / b's node was lost
//	packet b                  the first packet written into b
//	publish, unpublish        the source's track changes
//	settle
type decideCase struct {
	name  string
	dests string           // the start's destinations, as in update
	fails map[string]Error // join outcome by room
	limit int              // default 4
	steps []string
	want  []string // the trace of the last step, or of all with all
	all   bool
	err   error  // the last step's error
	final string // the relay after the last step: "state/error paused? | room state/error ..."
}

var decideCases = []decideCase{
	{
		name:  "start: connecting, event 2, event 3 per destination, running",
		dests: "b c", all: true,
		steps: []string{"begin"},
		want: []string{
			"state connecting/1 none/0", "event 2",
			"join b", "event 3 b", "join c", "event 3 c",
			"state running/2 none/0",
		},
		final: "running/none | b running/none c running/none",
	},
	{
		name:  "event 4 once per destination, at its first packet",
		dests: "b c", all: true,
		steps: []string{"begin", "packet c", "packet c", "packet b"},
		want: []string{
			"state connecting/1 none/0", "event 2", "join b", "event 3 b", "join c", "event 3 c",
			"state running/2 none/0", "event 4 c", "event 4 b",
		},
	},
	{
		name:  "a destination that cannot be joined fails alone",
		dests: "b c d", fails: map[string]Error{"c": ErrFailedJoinDest, "d": ErrDestTokenExpired}, all: true,
		steps: []string{"begin"},
		want: []string{
			"state connecting/1 none/0", "event 2", "join b", "event 3 b", "join c", "join d",
			"state running/2 none/0",
		},
		final: "running/none | b running/none c failure/failed_join_dest d failure/dest_token_expired",
	},
	{
		name:  "none joined: failure with the first destination's error",
		dests: "b c", fails: map[string]Error{"b": ErrDestTokenExpired, "c": ErrFailedJoinDest},
		steps: []string{"begin"},
		want: []string{
			"state connecting/1 none/0", "event 2", "join b", "join c",
			"state failure/3 dest_token_expired/11",
		},
		final: "failure/dest_token_expired | b failure/dest_token_expired c failure/failed_join_dest",
	},
	{
		name:  "first destination's error: the first one that has one",
		dests: "b c", fails: map[string]Error{"c": ErrServerConnectionLost},
		steps: []string{"begin", "lost b"},
		want:  []string{"leave b", "event 0 b", "state failure/3 server_connection_lost/8"},
		final: "failure/server_connection_lost | b failure/server_connection_lost c failure/server_connection_lost",
	},
	{
		name:  "update over the limit: 4013, event 8, nothing changes",
		dests: "b c", limit: 2,
		steps: []string{"begin", "update b c d"},
		want:  []string{"event 8"}, err: ErrTooMany,
		final: "running/none | b running/none c running/none",
	},
	{
		name:  "update with the same set: event 9, nothing changes",
		dests: "b c",
		steps: []string{"begin", "update c b"},
		want:  []string{"event 9"},
		final: "running/none | b running/none c running/none",
	},
	{
		name:  "a fresh token for the same identity is the same set",
		dests: "b c=bob",
		steps: []string{"begin", "update b c=bob"},
		want:  []string{"event 9"},
	},
	{
		name:  "another identity in a room is not the same set",
		dests: "b c",
		steps: []string{"begin", "update b c=bob"},
		want:  []string{"leave c", "join c", "event 3 c", "event 7"},
		final: "running/none | b running/none c running/none",
	},
	{
		name:  "update with an empty set: -32602, event 10, nothing changes",
		dests: "b",
		steps: []string{"begin", "update"},
		want:  []string{"event 10"}, err: ErrInvalid,
		final: "running/none | b running/none",
	},
	{
		name:  "update naming the source room or a room twice: -32602, no event",
		dests: "b",
		steps: []string{"begin", "update b a"},
		want:  nil, err: ErrInvalid,
		final: "running/none | b running/none",
	},
	{
		name:  "update: left, joined, event 7 and events 3/4 for the new ones",
		dests: "b c",
		steps: []string{"begin", "update c d e", "packet d"},
		all:   true,
		want: []string{
			"state connecting/1 none/0", "event 2", "join b", "event 3 b", "join c", "event 3 c",
			"state running/2 none/0",
			"leave b", "join d", "event 3 d", "join e", "event 3 e", "event 7",
			"event 4 d",
		},
		final: "running/none | c running/none d running/none e running/none",
	},
	{
		name:  "update joins a failed destination again, with its new target",
		dests: "b c", fails: map[string]Error{"c": ErrDestTokenExpired},
		steps: []string{"begin", "fix c", "update b c"},
		want:  []string{"join c", "event 3 c", "event 7"},
		final: "running/none | b running/none c running/none",
	},
	{
		name:  "the same token that failed, sent again, is the same set",
		dests: "b c!", fails: map[string]Error{"c": ErrFailedJoinDest},
		steps: []string{"begin", "update b c!"},
		want:  []string{"event 9"},
		final: "running/none | b running/none c failure/failed_join_dest",
	},
	{
		name:  "another token that fails is not the same set",
		dests: "b c!", fails: map[string]Error{"c": ErrFailedJoinDest},
		steps: []string{"begin", "update b c!2"},
		want:  []string{"join c", "event 7"},
		final: "running/none | b running/none c failure/failed_join_dest",
	},
	{
		name:  "a failing token for a running destination is not the same set",
		dests: "b c",
		steps: []string{"begin", "update b c!"},
		want:  []string{"event 7"},
		final: "running/none | b running/none c running/none",
	},
	{
		name:  "an update that runs nothing fails the relay",
		dests: "b", fails: map[string]Error{"c": ErrFailedJoinDest},
		steps: []string{"begin", "update c"},
		want:  []string{"leave b", "join c", "event 7", "state failure/3 failed_join_dest/5"},
		final: "failure/failed_join_dest | c failure/failed_join_dest",
	},
	{
		name:  "an update that runs one again: running",
		dests: "b", fails: map[string]Error{"b": ErrFailedJoinDest},
		steps: []string{"begin", "update c"},
		want:  []string{"join c", "event 3 c", "event 7", "state running/2 none/0"},
	},
	{
		name:  "pause: event 12",
		dests: "b",
		steps: []string{"begin", "pause"},
		want:  []string{"pause", "event 12"},
		final: "running/none paused | b running/none",
	},
	{
		name:  "pause twice: 4009, event 13",
		dests: "b",
		steps: []string{"begin", "pause", "pause"},
		want:  []string{"event 13"}, err: ErrConflict,
		final: "running/none paused | b running/none",
	},
	{
		name:  "resume: event 14 after the keyframe request",
		dests: "b",
		steps: []string{"begin", "pause", "resume"},
		want:  []string{"resume", "event 14"},
		final: "running/none | b running/none",
	},
	{
		name:  "resume when not paused: 4009, event 15",
		dests: "b",
		steps: []string{"begin", "resume"},
		want:  []string{"event 15"}, err: ErrConflict,
	},
	{
		name:  "an update keeps the pause",
		dests: "b",
		steps: []string{"begin", "pause", "update b c"},
		want:  []string{"join c", "event 3 c", "event 7"},
		final: "running/none paused | b running/none c running/none",
	},
	{
		name:  "stop: leave every destination, idle (0)",
		dests: "b c d", fails: map[string]Error{"d": ErrFailedJoinDest},
		steps: []string{"begin", "stop"},
		want:  []string{"leave b", "leave c", "state idle/0 none/0", "end"},
		final: "idle/none | b idle/none c idle/none d failure/failed_join_dest",
	},
	{
		name:  "after stop: nothing, and the API says not found",
		dests: "b",
		steps: []string{"begin", "stop", "stop", "ended b", "packet b", "publish", "pause", "resume", "update c"},
		want:  nil, err: ErrNotFound,
		final: "idle/none | b idle/none",
	},
	{
		name:  "a destination room ends: dropped with event 0",
		dests: "b c",
		steps: []string{"begin", "ended b"},
		want:  []string{"leave b", "event 0 b"},
		final: "running/none | c running/none",
	},
	{
		name:  "the last destination room ends: idle",
		dests: "b",
		steps: []string{"begin", "ended b"},
		want:  []string{"leave b", "event 0 b", "state idle/0 none/0", "end"},
		final: "idle/none |",
	},
	{
		name:  "the only running destination ends: failure",
		dests: "b c", fails: map[string]Error{"c": ErrFailedJoinDest},
		steps: []string{"begin", "ended b"},
		want:  []string{"leave b", "event 0 b", "state failure/3 failed_join_dest/5"},
		final: "failure/failed_join_dest | c failure/failed_join_dest",
	},
	{
		name:  "a destination's node is lost: event 0, failure 8, still listed",
		dests: "b c",
		steps: []string{"begin", "lost b"},
		want:  []string{"leave b", "event 0 b"},
		final: "running/none | b failure/server_connection_lost c running/none",
	},
	{
		name:  "a lost destination stays failed at the same set",
		dests: "b",
		steps: []string{"begin", "lost b", "update b"},
		want:  []string{"event 9"},
		final: "failure/server_connection_lost | b failure/server_connection_lost",
	},
	{
		name:  "a lost destination joins again at an update, event 4 again",
		dests: "b",
		steps: []string{"begin", "packet b", "lost b", "update b c", "packet b"},
		want:  []string{"event 4 b"},
		final: "running/none | b running/none c running/none",
	},
	{
		name:  "late words about an older join are ignored",
		dests: "b",
		steps: []string{"begin", "lost b", "update b c", "ended b@1", "lost b@1", "packet b@1"},
		want:  nil,
		final: "running/none | b running/none c running/none",
	},
	{
		name:  "the source leaves: event 0, idle",
		dests: "b c",
		steps: []string{"begin", "gone"},
		want:  []string{"event 0", "leave b", "leave c", "state idle/0 none/0", "end"},
		final: "idle/none | b idle/none c idle/none",
	},
	{
		name:  "the source leaves before begin: the relay ends, never joins",
		dests: "b",
		steps: []string{"gone", "begin"},
		all:   true,
		want:  []string{"event 0", "state idle/0 none/0", "end"},
	},
	{
		name:  "the source's tracks follow into every joined destination",
		dests: "b c d", fails: map[string]Error{"d": ErrFailedJoinDest},
		steps: []string{"begin", "publish", "unpublish"},
		all:   true,
		want: []string{
			"state connecting/1 none/0", "event 2", "join b", "event 3 b", "join c", "event 3 c", "join d",
			"state running/2 none/0", "track b +", "track c +", "track b -", "track c -",
		},
	},
	{
		name:  "track changes before begin are left to begin's joins",
		dests: "b",
		steps: []string{"publish"},
		want:  nil,
		final: "connecting/none | b connecting/none",
	},
}

func TestDecide(t *testing.T) {
	for _, c := range decideCases {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(c)
			var err error
			for i, step := range c.steps {
				if i == len(c.steps)-1 && !c.all {
					s.trace = nil
				}
				err = s.do(t, step)
			}
			if strings.Join(s.trace, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("trace:\n got %q\nwant %q", s.trace, c.want)
			}
			if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
				t.Errorf("error %v, want %v", err, c.err)
			}
			if c.final != "" {
				if got := s.describe(); got != c.final {
					t.Errorf("relay:\n got %q\nwant %q", got, c.final)
				}
			}
		})
	}
}

// Every error and event decide sends is a word and a number of the
// contract's tables; decide never changes the model it is given.
func TestDecideIsPure(t *testing.T) {
	for _, c := range decideCases {
		s := newSim(c)
		for _, step := range c.steps {
			before := s.describe()
			m := s.m
			m.dests = append([]destModel(nil), s.m.dests...)
			req := s.request(t, step)
			if req == nil {
				continue
			}
			_, _, _ = decide(s.m, req)
			if s.describe() != before || fmt.Sprint(m) != fmt.Sprint(s.m) {
				t.Fatalf("%s: decide(%s) changed its input", c.name, step)
			}
			_ = s.do(t, step)
		}
	}
}

// sim runs decide's effects with fake actions.
type sim struct {
	m     model
	fails map[string]Error
	trace []string
}

func newSim(c decideCase) *sim {
	limit := c.limit
	if limit == 0 {
		limit = 4
	}
	s := &sim{m: model{room: "a", limit: limit, state: StateConnecting}, fails: c.fails}
	ts, _ := targets(strings.Fields(c.dests))
	for _, t := range ts {
		s.m.dests = append(s.m.dests, destModel{target: t, identity: t.Identity, state: StateConnecting})
	}
	return s
}

// targets parses "b c=bob d! e!2" (d!: a token that does not verify; e!2:
// another one).
func targets(words []string) ([]Target, []resolved) {
	var ts []Target
	var ids []resolved
	for _, w := range words {
		room, id, _ := strings.Cut(w, "=")
		if id == "" {
			id = "alice"
		}
		room, which, bad := strings.Cut(room, "!")
		if bad {
			ts = append(ts, Target{Room: room, Token: "bad" + which})
			ids = append(ids, resolved{})
			continue
		}
		ts = append(ts, Target{Room: room, Token: "tok-" + id})
		ids = append(ids, resolved{identity: id, ok: true})
	}
	return ts, ids
}

var track = &sfu.UpTrack{}

func (s *sim) request(t *testing.T, step string) request {
	t.Helper()
	w := strings.Fields(step)
	room, join := "", uint64(0)
	if len(w) > 1 {
		var n string
		room, n, _ = strings.Cut(w[1], "@")
		if i := s.m.find(room); i >= 0 {
			join = s.m.dests[i].join
		}
		if n != "" {
			v, _ := strconv.Atoi(n)
			join = uint64(v)
		}
	}
	switch w[0] {
	case "begin":
		return reqBegin{}
	case "pause":
		return reqPause{}
	case "resume":
		return reqResume{}
	case "stop":
		return reqStop{}
	case "gone":
		return reqSourceGone{}
	case "settle":
		return reqSettle{}
	case "publish", "unpublish":
		return reqTrack{up: track, published: w[0] == "publish"}
	case "update":
		ts, ids := targets(w[1:])
		return reqUpdate{ts, ids}
	case "ended":
		return reqDestEnded{room, join}
	case "lost":
		return reqDestLost{room, join}
	case "packet":
		return reqFirstPacket{room, join}
	case "fix": // room's joins succeed from now on
		delete(s.fails, room)
		return nil
	}
	t.Fatalf("unknown step %q", step)
	return nil
}

func (s *sim) do(t *testing.T, step string) error {
	req := s.request(t, step)
	if req == nil {
		return nil
	}
	m, err := run(s.m, req, s.exec, func(e effect) {
		switch e := e.(type) {
		case noteState:
			s.trace = append(s.trace, fmt.Sprintf("state %s/%d %s/%d", e.state, int(e.state), e.err, int(e.err)))
		case noteEvent:
			s.trace = append(s.trace, strings.TrimSpace(fmt.Sprintf("event %d %s", int(e.event), e.room)))
		}
	})
	s.m = m
	return err
}

func (s *sim) exec(_ model, e effect) request {
	switch e := e.(type) {
	case doJoin:
		room := e.target.Room
		s.trace = append(s.trace, "join "+room)
		id := strings.TrimPrefix(e.target.Token, "tok-")
		if e.target.Token == "bad" || s.fails[room] == ErrDestTokenExpired {
			id = "" // the token did not verify: no identity
		}
		return reqJoined{room: room, join: e.join, identity: id, fail: s.fails[room]}
	case doLeave:
		s.trace = append(s.trace, "leave "+e.room)
	case doTrack:
		sign := "-"
		if e.published {
			sign = "+"
		}
		s.trace = append(s.trace, "track "+e.room+" "+sign)
	case doPause:
		s.trace = append(s.trace, "pause")
	case doResume:
		s.trace = append(s.trace, "resume")
	case doEnd:
		s.trace = append(s.trace, "end")
	default:
		s.trace = append(s.trace, fmt.Sprintf("unexpected %T", e))
	}
	return nil
}

func (s *sim) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s", s.m.state, s.m.err)
	if s.m.paused {
		b.WriteString(" paused")
	}
	b.WriteString(" |")
	for _, d := range s.m.dests {
		fmt.Fprintf(&b, " %s %s/%s", d.target.Room, d.state, d.err)
	}
	return b.String()
}
