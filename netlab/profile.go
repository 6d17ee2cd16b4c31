package netlab

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Rate is a link rate in bits per second; 0 means uncapped.
type Rate int64

// The rates a cap may take. Below 10 kbit/s a single full-size packet
// (1514 bytes) already takes over a second to serialise, which no profile we
// want to model has; above 10 Gbit/s a veth on this machine is the limit, not
// the cap.
const (
	MinRate Rate = 10_000
	MaxRate Rate = 10_000_000_000
)

// rateUnits are tc's decimal units (tc's "kbit" is 1000 bit/s). tc's "kbps"
// means kilobytes per second, which is too easily misread, so it is refused.
var rateUnits = []struct {
	name string
	mult int64
}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}

// String gives the rate in the largest unit that divides it: 600kbit, 2mbit.
func (r Rate) String() string {
	if r == 0 {
		return "0bit"
	}
	for _, u := range rateUnits {
		if int64(r)%u.mult == 0 {
			return strconv.FormatInt(int64(r)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(r), 10) + "bit"
}

// ParseRate reads a rate such as "600kbit", "1.5mbit" or "2mbit".
func ParseRate(s string) (Rate, error) {
	low := strings.ToLower(strings.TrimSpace(s))
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(low, u.name)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("rate %q: %q is not a number", s, num)
		}
		bits := math.Round(v * float64(u.mult))
		if bits < float64(MinRate) || bits > float64(MaxRate) {
			return 0, fmt.Errorf("rate %q: out of range %s..%s", s, MinRate, MaxRate)
		}
		return Rate(bits), nil
	}
	return 0, fmt.Errorf("rate %q: needs a unit: bit, kbit, mbit or gbit (e.g. 600kbit)", s)
}

// DefaultQueue is how long a packet may wait in a capped link's queue when
// the profile does not say (tbf's "latency"). The queue length is the
// queueing delay a capped client sees once the sender exceeds the cap:
// 200 ms is the order of a consumer router's or a cellular link's buffer,
// long enough that a delay-based congestion controller (WebRTC's GCC) sees
// the delay grow before packets drop, short enough that a test sees the
// drops within a second.
const DefaultQueue = 200 * time.Millisecond

// The queue lengths a profile may ask for: below 1 ms a capped link holds
// less than a packet at low rates; above 10 s nothing realistic is modelled.
const (
	minQueue = time.Millisecond
	maxQueue = 10 * time.Second
)

// Profile is what one client's network does to its traffic with the server.
// The zero Profile is a perfect link. Down is the direction server → client,
// Up client → server.
type Profile struct {
	Down Rate // cap on traffic to the client; 0 = none
	Up   Rate // cap on traffic from the client; 0 = none

	// Queue is how long a packet may wait in a capped link's queue before
	// it is dropped (both directions); 0 means DefaultQueue. It has no
	// effect on an uncapped direction.
	Queue time.Duration

	LossDown float64 // percent (0..100) of packets to the client dropped at random
	LossUp   float64 // percent (0..100) of packets from the client dropped at random

	UDPBlocked bool // every UDP packet is dropped, both ways

	// OnlyTCPPort, when non-zero, drops everything but TCP to (and back
	// from) this port of the server: a network that only lets TLS or
	// TURN-over-TCP out. OnlyTCPAlso, when non-zero, is a second port TCP
	// may also reach (only-tcp=443+8800: TURN over TLS, and the
	// signaling of a lab whose server has one address).
	OnlyTCPPort uint16
	OnlyTCPAlso uint16
}

// queue is the effective queue length.
func (p Profile) queue() time.Duration {
	if p.Queue == 0 {
		return DefaultQueue
	}
	return p.Queue
}

// Validate says what is wrong with a profile built in code; ParseProfile
// only returns valid ones.
func (p Profile) Validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		v    Rate
	}{{"down", p.Down}, {"up", p.Up}} {
		if r.v != 0 && (r.v < MinRate || r.v > MaxRate) {
			errs = append(errs, fmt.Errorf("%s cap %s out of range %s..%s", r.name, r.v, MinRate, MaxRate))
		}
	}
	for _, l := range []struct {
		name string
		v    float64
	}{{"loss-down", p.LossDown}, {"loss-up", p.LossUp}} {
		if !(l.v >= 0 && l.v <= 100) { // also catches NaN
			errs = append(errs, fmt.Errorf("%s %v%% out of range 0..100%%", l.name, l.v))
		}
	}
	if p.Queue != 0 && (p.Queue < minQueue || p.Queue > maxQueue) {
		errs = append(errs, fmt.Errorf("queue %v out of range %v..%v", p.Queue, minQueue, maxQueue))
	}
	return errors.Join(errs...)
}

// profileKeys lists the keys ParseProfile knows, for its error message.
const profileKeys = "cap, down, up, loss, loss-down, loss-up, queue, udp, only-tcp"

// ParseProfile reads a profile string: comma-separated key=value pairs.
//
//	cap=R        cap both directions at rate R (600kbit, 2mbit, 1.5mbit)
//	down=R up=R  cap one direction (overrides cap for it)
//	loss=P%      drop P percent of packets at random, both directions
//	loss-down=P% loss-up=P%   one direction (overrides loss for it)
//	queue=D      how long a packet may wait in a capped queue (200ms)
//	udp=blocked  drop all UDP (udp=open is the default)
//	only-tcp=N   drop everything but TCP to the server's port N
//	only-tcp=N+M ... or to its ports N and M
//
// "" and "none" are the perfect link. A key may appear once.
func ParseProfile(s string) (Profile, error) {
	var p Profile
	if t := strings.TrimSpace(s); t == "" || t == "none" {
		return p, nil
	}
	seen := map[string]bool{}
	var capRate, down, up Rate
	var loss, lossDown, lossUp float64
	for _, field := range strings.Split(s, ",") {
		field = strings.TrimSpace(field)
		key, val, ok := strings.Cut(field, "=")
		if !ok || key == "" || val == "" {
			return Profile{}, fmt.Errorf("profile %q: %q: want key=value", s, field)
		}
		if seen[key] {
			return Profile{}, fmt.Errorf("profile %q: %s given twice", s, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "cap":
			capRate, err = ParseRate(val)
		case "down":
			down, err = ParseRate(val)
		case "up":
			up, err = ParseRate(val)
		case "loss":
			loss, err = parseLoss(val)
		case "loss-down":
			lossDown, err = parseLoss(val)
		case "loss-up":
			lossUp, err = parseLoss(val)
		case "queue":
			p.Queue, err = time.ParseDuration(val)
			if err == nil && (p.Queue < minQueue || p.Queue > maxQueue) {
				err = fmt.Errorf("%v out of range %v..%v", p.Queue, minQueue, maxQueue)
			}
		case "udp":
			switch val {
			case "blocked":
				p.UDPBlocked = true
			case "open":
			default:
				err = fmt.Errorf("%q: want blocked or open", val)
			}
		case "only-tcp":
			first, second, two := strings.Cut(val, "+")
			var n, m uint64
			n, err = strconv.ParseUint(first, 10, 16)
			if err == nil && two {
				m, err = strconv.ParseUint(second, 10, 16)
				if m == 0 || m == n {
					err = errors.New("bad second port")
				}
			}
			if err != nil || n == 0 {
				err = fmt.Errorf("%q: want a port 1..65535, or two (443+8800)", val)
			}
			p.OnlyTCPPort, p.OnlyTCPAlso = uint16(n), uint16(m)
		default:
			return Profile{}, fmt.Errorf("profile %q: unknown key %q (keys: %s)", s, key, profileKeys)
		}
		if err != nil {
			return Profile{}, fmt.Errorf("profile %q: %s: %w", s, key, err)
		}
	}
	p.Down, p.Up = pick(seen["down"], down, capRate), pick(seen["up"], up, capRate)
	p.LossDown, p.LossUp = pick(seen["loss-down"], lossDown, loss), pick(seen["loss-up"], lossUp, loss)
	return p, nil
}

// pick is the one-direction value when it was given, else the both-ways one.
func pick[T Rate | float64](given bool, oneWay, both T) T {
	if given {
		return oneWay
	}
	return both
}

// parseLoss reads "2%" or "0.5%" as a percentage 0..100.
func parseLoss(s string) (float64, error) {
	num, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, fmt.Errorf("%q: want a percentage such as 2%%", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v >= 0 && v <= 100) {
		return 0, fmt.Errorf("%q: want a percentage 0%%..100%%", s)
	}
	return v, nil
}

// String gives the profile in ParseProfile's syntax, canonical order;
// ParseProfile(p.String()) == p for every valid p.
func (p Profile) String() string {
	var parts []string
	switch {
	case p.Down != 0 && p.Down == p.Up:
		parts = append(parts, "cap="+p.Down.String())
	default:
		if p.Down != 0 {
			parts = append(parts, "down="+p.Down.String())
		}
		if p.Up != 0 {
			parts = append(parts, "up="+p.Up.String())
		}
	}
	pct := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "%" }
	switch {
	case p.LossDown != 0 && p.LossDown == p.LossUp:
		parts = append(parts, "loss="+pct(p.LossDown))
	default:
		if p.LossDown != 0 {
			parts = append(parts, "loss-down="+pct(p.LossDown))
		}
		if p.LossUp != 0 {
			parts = append(parts, "loss-up="+pct(p.LossUp))
		}
	}
	if p.Queue != 0 {
		parts = append(parts, "queue="+p.Queue.String())
	}
	if p.UDPBlocked {
		parts = append(parts, "udp=blocked")
	}
	if p.OnlyTCPPort != 0 {
		ports := strconv.Itoa(int(p.OnlyTCPPort))
		if p.OnlyTCPAlso != 0 {
			ports += "+" + strconv.Itoa(int(p.OnlyTCPAlso))
		}
		parts = append(parts, "only-tcp="+ports)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}
