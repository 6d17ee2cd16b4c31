package main

// The operator subcommands: a running server's rooms, participants and
// relays through its admin HTTP API (docs/protocol.md §10), the way
// `lk room` drives a LiveKit server.
//
//	relayd rooms list [--status S]
//	relayd rooms stop ROOM
//	relayd participants list ROOM
//	relayd participants kick ROOM IDENTITY [--ban]
//	relayd participants mute ROOM IDENTITY [--track ID | --kind audio|video]
//	relayd relays list
//	relayd relays stop ID
//
// Every one takes --url (RELAYD_URL; default http://127.0.0.1:8800), an
// admin token with --token (RELAYD_TOKEN) or the server's secret with
// --secret (RELAYD_SECRET) to mint one here, --json for the API's answer
// as JSON instead of a table, and --timeout. Flags may come before or
// after the arguments.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
)

// Defaults of the operator subcommands.
const (
	adminDefaultURL = "http://127.0.0.1:8800" // the server's default --listen
	adminTimeout    = 10 * time.Second        // one API call, far beyond a loaded server's answer
	// adminTokenTTL is the life of a token minted from --secret: it is
	// used for one command, at once.
	adminTokenTTL = 5 * time.Minute
)

// adminGroups are the subcommand groups main dispatches to runAdminCmd.
var adminGroups = map[string]bool{"rooms": true, "participants": true, "relays": true}

// adminCmd is one subcommand: its arguments, its own flags, and what it
// does (the answer is printed as a table, or as JSON with --json).
type adminCmd struct {
	args  []string // the names of its positional arguments
	about string
	flags func(fs *flag.FlagSet) func() any // defines its flags; the returned func reads them
	run   func(ctx context.Context, a *client.Admin, args []string, opts any) (any, error)
	table func(w io.Writer, answer any)
}

// adminCmds are the subcommands by "group verb".
var adminCmds = map[string]adminCmd{
	"rooms list": {
		about: "list the rooms (ended ones too), with their status",
		flags: func(fs *flag.FlagSet) func() any {
			s := fs.String("status", "", "only rooms of this `status`: idle, live, waiting_reconnect, ended, recorded")
			return func() any { return *s }
		},
		run: func(ctx context.Context, a *client.Admin, _ []string, opts any) (any, error) {
			rooms, err := a.Rooms(ctx, opts.(string))
			return map[string]any{"rooms": nonNil(rooms)}, err
		},
		table: func(w io.Writer, v any) { roomsTable(w, v.(map[string]any)["rooms"].([]client.Room)) },
	},
	"rooms stop": {
		args: []string{"ROOM"}, about: "end a room now (endReason stopped_by_admin)",
		run: func(ctx context.Context, a *client.Admin, args []string, _ any) (any, error) {
			return a.StopRoom(ctx, args[0])
		},
		table: func(w io.Writer, v any) {
			r := v.(*client.Room)
			fmt.Fprintf(w, "room %s: %s (%s)\n", r.Name, r.Status, dash(r.EndReason))
		},
	},
	"participants list": {
		args: []string{"ROOM"}, about: "list a room's participants and their tracks",
		run: func(ctx context.Context, a *client.Admin, args []string, _ any) (any, error) {
			ps, err := a.Participants(ctx, args[0])
			return map[string]any{"participants": nonNil(ps)}, err
		},
		table: func(w io.Writer, v any) {
			participantsTable(w, v.(map[string]any)["participants"].([]client.Participant))
		},
	},
	"participants kick": {
		args: []string{"ROOM", "IDENTITY"}, about: "kick a participant (the host too); --ban keeps it out until the broadcast ends (a banned host ends the room)",
		flags: func(fs *flag.FlagSet) func() any {
			b := fs.Bool("ban", false, "also refuse its joins until the room's broadcast ends")
			return func() any { return *b }
		},
		run: func(ctx context.Context, a *client.Admin, args []string, opts any) (any, error) {
			return struct{}{}, a.KickParticipant(ctx, args[0], args[1], opts.(bool))
		},
		table: func(w io.Writer, _ any) { fmt.Fprintln(w, "kicked") },
	},
	"participants mute": {
		args: []string{"ROOM", "IDENTITY"}, about: "mute a participant's tracks: one (--track), one kind (--kind) or all",
		flags: func(fs *flag.FlagSet) func() any {
			var r client.MuteRequest
			fs.StringVar(&r.TrackID, "track", "", "the track `id` to mute")
			fs.StringVar(&r.Kind, "kind", "", "mute every track of this `kind`: audio or video")
			return func() any { return r }
		},
		run: func(ctx context.Context, a *client.Admin, args []string, opts any) (any, error) {
			r := opts.(client.MuteRequest)
			if r.TrackID != "" && r.Kind != "" {
				return nil, usageError("give --track or --kind, not both")
			}
			tracks, err := a.MuteParticipant(ctx, args[0], args[1], r)
			return map[string]any{"tracks": nonNil(tracks)}, err
		},
		table: func(w io.Writer, v any) { tracksTable(w, v.(map[string]any)["tracks"].([]client.Track)) },
	},
	"relays list": {
		about: "list the running relays and their destinations",
		run: func(ctx context.Context, a *client.Admin, _ []string, _ any) (any, error) {
			relays, err := a.Relays(ctx)
			return map[string]any{"relays": nonNil(relays)}, err
		},
		table: func(w io.Writer, v any) { relaysTable(w, v.(map[string]any)["relays"].([]client.Relay)) },
	},
	"relays stop": {
		args: []string{"ID"}, about: "stop a relay (it leaves every destination)",
		run: func(ctx context.Context, a *client.Admin, args []string, _ any) (any, error) {
			return a.StopRelay(ctx, args[0])
		},
		table: func(w io.Writer, v any) {
			r := v.(*client.Relay)
			fmt.Fprintf(w, "relay %s of %s/%s: %s\n", r.ID, r.Source.Room, r.Source.Identity, r.State)
		},
	},
}

// usageError is a mistake in the command line (exit status 2).
type usageError string

func (e usageError) Error() string { return string(e) }

// runAdminCmd runs `relayd <group> <verb> ...`: args are what follows the
// group; env is os.Environ()-style. It prints the answer to stdout and
// returns the exit status: 0, 1 when the server refused or could not be
// reached, 2 for a bad command line (the problem and the usage on stderr).
func runAdminCmd(group string, args, env []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		groupUsage(stderr, group)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return 0
		}
		return 2
	}
	name := group + " " + args[0]
	cmd, ok := adminCmds[name]
	if !ok {
		fmt.Fprintf(stderr, "relayd %s: unknown command %q\n", group, args[0])
		groupUsage(stderr, group)
		return 2
	}
	fs := flag.NewFlagSet("relayd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	vars := parseEnvList(env)
	urlFlag := fs.String("url", "", "the server's `URL` (default $RELAYD_URL, else "+adminDefaultURL+")")
	token := fs.String("token", "", "an admin `token` (default $RELAYD_TOKEN)")
	secret := fs.String("secret", "", "the server's `secret`, to mint an admin token here (default $"+configEnvName("secret")+")")
	asJSON := fs.Bool("json", false, "print the API's answer as JSON")
	timeout := fs.Duration("timeout", adminTimeout, "give up on the server after this long")
	opts := func() any { return nil }
	if cmd.flags != nil {
		opts = cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: relayd %s%s [flags]\n  %s\n", name, argList(cmd.args), cmd.about)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // flag has printed the error and the usage
	}
	if len(pos) != len(cmd.args) {
		fmt.Fprintf(stderr, "relayd %s: want %d argument(s)%s, got %d\n", name, len(cmd.args), argList(cmd.args), len(pos))
		fs.Usage()
		return 2
	}
	base := firstOf(*urlFlag, vars["RELAYD_URL"], adminDefaultURL)
	tok, err := adminToken(*token, *secret, vars)
	if err != nil {
		fmt.Fprintf(stderr, "relayd %s: %v\n", name, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	answer, err := cmd.run(ctx, &client.Admin{BaseURL: base, Token: tok}, pos, opts())
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "relayd %s: %v\n", name, err)
			return 2
		}
		fmt.Fprintf(stderr, "relayd %s: %s\n", name, describeErr(err))
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(answer)
		return 0
	}
	cmd.table(stdout, answer)
	return 0
}

// parseInterspersed parses args with fs, flags before, between and after
// the positional arguments (which it returns), as `lk` and git take them.
// After "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// Parse stops at the first positional argument, or consumes a
		// "--" and stops after it.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

// adminToken is the token to call with: --token, else one minted from
// --secret, else $RELAYD_TOKEN, else one minted from $RELAYD_SECRET.
func adminToken(token, secret string, vars map[string]string) (string, error) {
	switch {
	case token != "":
		return token, nil
	case secret != "":
	case vars["RELAYD_TOKEN"] != "":
		return vars["RELAYD_TOKEN"], nil
	case vars[configEnvName("secret")] != "":
		secret = vars[configEnvName("secret")]
	default:
		return "", fmt.Errorf("an admin token is needed: --token (or RELAYD_TOKEN), or the server's --secret (or %s) to mint one", configEnvName("secret"))
	}
	return signaling.NewTokens([]byte(secret)).Issue(signaling.TokenSpec{Identity: "relayd-cli", Admin: true, TTL: adminTokenTTL})
}

// describeErr says what went wrong: the server's code and message when it
// refused, else the error.
func describeErr(err error) string {
	var he *client.HTTPError
	if errors.As(err, &he) && he.Err != nil {
		return fmt.Sprintf("%s (HTTP %d, code %d)", he.Err.Message, he.Status, he.Err.Code)
	}
	return err.Error()
}

// groupUsage prints the commands of a group.
func groupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage:\n")
	var names []string
	for name := range adminCmds {
		if strings.HasPrefix(name, group+" ") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		c := adminCmds[name]
		fmt.Fprintf(w, "  relayd %s%s [flags]\n      %s\n", name, argList(c.args), c.about)
	}
	fmt.Fprintf(w, "Flags of every command: --url URL (default $RELAYD_URL, else %s), --token T ($RELAYD_TOKEN) or --secret S ($%s), --json, --timeout D.\n`relayd %s VERB --help` lists a command's own.\n",
		adminDefaultURL, configEnvName("secret"), group)
}

func argList(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return " " + strings.Join(args, " ")
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func newTable(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

func roomsTable(w io.Writer, rooms []client.Room) {
	if len(rooms) == 0 {
		fmt.Fprintln(w, "no rooms")
		return
	}
	tw := newTable(w, "ROOM", "STATUS", "HOST", "PARTICIPANTS", "VIEWERS", "RECORDING", "BROADCAST", "END REASON")
	for _, r := range rooms {
		rec := "no"
		if r.Recording {
			rec = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Name, r.Status, r.Host, r.NumParticipants, r.Viewers, rec, dash(r.BroadcastID), dash(r.EndReason))
	}
	_ = tw.Flush()
}

func participantsTable(w io.Writer, ps []client.Participant) {
	if len(ps) == 0 {
		fmt.Fprintln(w, "no participants")
		return
	}
	tw := newTable(w, "IDENTITY", "ROLE", "NAME", "TRACKS")
	for _, p := range ps {
		role := p.Role
		if p.RelayFrom != nil {
			role += " (from " + p.RelayFrom.Room + ")"
		}
		// Audio before video, then by id: the server lists a
		// participant's tracks in the order they came up, which a
		// publisher's audio and video race for.
		ts := slices.Clone(p.Tracks)
		slices.SortFunc(ts, func(a, b client.Track) int {
			return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
		})
		var tracks []string
		for _, t := range ts {
			tracks = append(tracks, trackWords(t))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Identity, role, dash(p.Name), dash(strings.Join(tracks, ", ")))
	}
	_ = tw.Flush()
}

// trackWords is a track in a few words: "video VP8 TR_x (muted)".
func trackWords(t client.Track) string {
	s := t.Kind + " " + t.Codec + " " + t.ID
	if t.Muted {
		s += " (muted)"
	}
	return s
}

func tracksTable(w io.Writer, tracks []client.Track) {
	tw := newTable(w, "TRACK", "KIND", "CODEC", "PARTICIPANT", "MUTED")
	for _, t := range tracks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", t.ID, t.Kind, t.Codec, t.Participant, t.Muted)
	}
	_ = tw.Flush()
}

func relaysTable(w io.Writer, relays []client.Relay) {
	if len(relays) == 0 {
		fmt.Fprintln(w, "no relays")
		return
	}
	tw := newTable(w, "RELAY", "SOURCE", "STATE", "ERROR", "PAUSED", "DESTINATIONS")
	for _, r := range relays {
		var dests []string
		for _, d := range r.Destinations {
			s := d.Room + " " + d.State
			if d.ErrorCode != 0 {
				s += " " + d.Error
			}
			dests = append(dests, s)
		}
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%v\t%s\n", r.ID, r.Source.Room, r.Source.Identity, r.State, r.Error, r.Paused, dash(strings.Join(dests, ", ")))
	}
	_ = tw.Flush()
}
