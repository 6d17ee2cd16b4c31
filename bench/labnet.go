package bench

// A viewer group's network over time, and the room it watches: the bench's
// own keys of --viewer-net beside netlab's profile keys.
//
//   - at=D: the group's link is perfect until D into the window, then its
//     profile applies (the moment "the cap" starts, from which the time to
//     settle is measured); without it the profile holds from the start.
//   - lift=D: D into the window the profile is lifted (a perfect link
//     again): the moment from which "back on the top layer" and "resumed"
//     are measured.
//   - dest: the group watches the relay destination room (--relays 1 in
//     the lab) instead of the publisher's own room.
//   - quality=Q (--simulcast): each viewer asks for at most layer Q (low,
//     medium, high) of the video with track.settings once joined, as a
//     small tile would: what dynacast needs to switch layers off.
//
// The parent applies the changes with netlab's Client.SetProfile at those
// moments (scheduleNets); the children get the same moments to measure
// from.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/netlab"
	"github.com/relaysfu/relayd/signaling"
)

// Timing is a group's at=, lift= and dest (zero: none).
type Timing struct {
	At      time.Duration // the profile applies this long into the window; 0: from the start
	Lift    time.Duration // the profile is lifted this long into the window; 0: never
	Dest    bool          // the group watches the relay destination room
	Quality string        // track.settings quality the viewers ask for ("": none)
}

// parseTiming takes the bench's keys out of a profile string and returns
// the rest for netlab.ParseProfile.
func parseTiming(prof string) (string, Timing, error) {
	var tm Timing
	var rest []string
	seen := map[string]bool{}
	for _, kv := range strings.Split(prof, ",") {
		k, v, hasV := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "at", "lift", "dest", "quality":
		default:
			rest = append(rest, kv)
			continue
		}
		if seen[k] {
			return "", tm, fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		if k == "quality" {
			if v != "low" && v != "medium" && v != "high" {
				return "", tm, fmt.Errorf("quality=%q: want low, medium or high", v)
			}
			tm.Quality = v
			continue
		}
		if k == "dest" {
			if hasV {
				return "", tm, fmt.Errorf("dest takes no value")
			}
			tm.Dest = true
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return "", tm, fmt.Errorf("%s=%q: want a duration into the window, e.g. %s=10s", k, v, k)
		}
		if k == "at" {
			tm.At = d
		} else {
			tm.Lift = d
		}
	}
	if tm.Lift > 0 && tm.At >= tm.Lift {
		return "", tm, fmt.Errorf("at=%v must come before lift=%v", tm.At, tm.Lift)
	}
	return strings.Join(rest, ","), tm, nil
}

// String is the keys as given, canonical ("" for none).
func (t Timing) String() string {
	var parts []string
	if t.At > 0 {
		parts = append(parts, "at="+t.At.String())
	}
	if t.Lift > 0 {
		parts = append(parts, "lift="+t.Lift.String())
	}
	if t.Dest {
		parts = append(parts, "dest")
	}
	if t.Quality != "" {
		parts = append(parts, "quality="+t.Quality)
	}
	return strings.Join(parts, ",")
}

// checkTiming checks the groups' timings against the run.
func (c *Config) checkTiming() error {
	for _, vn := range c.ViewerNets {
		switch {
		case vn.At >= c.Duration || vn.Lift >= c.Duration:
			return fmt.Errorf("--viewer-net %s: at= and lift= must fall in the %v window", vn.Timing, c.Duration)
		case (vn.At > 0 || vn.Lift > 0) && vn.Profile == (netlab.Profile{}):
			return fmt.Errorf("--viewer-net %s: at= and lift= need a profile to apply or lift", vn.Timing)
		case vn.Dest && c.Relays != 1:
			return fmt.Errorf("--viewer-net ...,dest: the group watches the relay destination room, which needs --relays 1")
		case vn.Quality != "" && !c.Simulcast:
			return fmt.Errorf("--viewer-net ...,quality=%s: asking for a layer needs --simulcast", vn.Quality)
		}
	}
	return nil
}

// scheduleNets applies each timed group's profile at its at= and lifts it
// at its lift=, measured from the window's start ws. It returns when every
// change is made, ctx ends, or a change fails (the error).
func (lr *labRun) scheduleNets(ctx context.Context, ws time.Time) error {
	type change struct {
		at time.Time
		g  *labGroup
		p  netlab.Profile
	}
	var changes []change
	for _, g := range lr.groups {
		if g.timing.At > 0 {
			changes = append(changes, change{ws.Add(g.timing.At), g, g.profile})
		}
		if g.timing.Lift > 0 {
			changes = append(changes, change{ws.Add(g.timing.Lift), g, netlab.Profile{}})
		}
	}
	for len(changes) > 0 {
		next := 0
		for i, c := range changes {
			if c.at.Before(changes[next].at) {
				next = i
			}
		}
		c := changes[next]
		changes = append(changes[:next], changes[next+1:]...)
		if err := sleepUntil(ctx, c.at.UnixNano()); err != nil {
			return err
		}
		if err := c.g.client.SetProfile(ctx, c.p); err != nil {
			return fmt.Errorf("%s: setting its profile to %q: %w", c.g.name, c.p, err)
		}
		lr.prog.logf("%s: profile %q at %v into the window", c.g.name, c.p.String(), c.at.Sub(ws).Round(time.Millisecond))
	}
	return nil
}

// startLabRelay relays the publisher's tracks into a destination room
// over the admin API (POST /v1/relays): the destination is made with the
// relay's identity as its host (the identity must pass the destination's
// publishing gate), and the destination groups join it.
func (lr *labRun) startLabRelay(ctx context.Context) error {
	tok, err := signaling.NewTokens([]byte(lr.srv.secret)).Issue(signaling.TokenSpec{Identity: "relaybench-operator", Admin: true, TTL: tokenTTL})
	if err != nil {
		return err
	}
	admin := &client.Admin{BaseURL: lr.destURL(), Token: tok, HTTPClient: lr.tgt.hc}
	relayID := lr.room + "-relay"
	if _, err := admin.CreateRoom(ctx, client.CreateRoomRequest{Name: lr.destRoom(), Host: relayID}); err != nil {
		return fmt.Errorf("creating the relay destination room %s: %w", lr.destRoom(), err)
	}
	rel, err := admin.StartRelay(ctx, client.RelaySource{Room: lr.room, Identity: lr.pub.ids[0]},
		[]client.AdminRelayTarget{{Room: lr.destRoom(), Identity: relayID}})
	if err != nil {
		return unsupported(err, "relays", "POST /v1/relays")
	}
	lr.prog.logf("relay %s: %s into %s", rel.ID, rel.State, lr.destRoom())
	lr.checkDestNode(ctx)
	return nil
}

// destRoom is the relay destination room's name.
func (lr *labRun) destRoom() string { return lr.room + "-dst" }
