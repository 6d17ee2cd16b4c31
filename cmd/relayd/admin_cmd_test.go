package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		ban  bool
		kind string
	}{
		{nil, nil, false, ""},
		{[]string{"r", "alice"}, []string{"r", "alice"}, false, ""},
		{[]string{"--ban", "r", "alice"}, []string{"r", "alice"}, true, ""},
		{[]string{"r", "--ban", "alice"}, []string{"r", "alice"}, true, ""},
		{[]string{"r", "alice", "--ban", "--kind", "video"}, []string{"r", "alice"}, true, "video"},
		{[]string{"r", "--kind=audio", "alice"}, []string{"r", "alice"}, false, "audio"},
		{[]string{"r", "--", "--ban"}, []string{"r", "--ban"}, false, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		ban := fs.Bool("ban", false, "")
		kind := fs.String("kind", "", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *ban != tc.ban || *kind != tc.kind {
			t.Errorf("%q: %q ban %v kind %q, %v; want %q ban %v kind %q", tc.args, pos, *ban, *kind, err, tc.pos, tc.ban, tc.kind)
		}
	}
}

// A bad command line is exit status 2 with the problem on stderr, and
// calls no server; --help is 0.
func TestAdminCmdUsage(t *testing.T) {
	env := []string{"RELAYD_SECRET=s", "RELAYD_URL=http://127.0.0.1:1"} // nothing listens on port 1
	for _, tc := range []struct {
		group string
		args  []string
		code  int
		say   string
	}{
		{"rooms", nil, 2, "relayd rooms list"},
		{"rooms", []string{"--help"}, 0, "relayd rooms stop ROOM"},
		{"rooms", []string{"dance"}, 2, `unknown command "dance"`},
		{"rooms", []string{"stop"}, 2, "want 1 argument(s) ROOM, got 0"},
		{"rooms", []string{"list", "extra"}, 2, "want 0 argument(s), got 1"},
		{"rooms", []string{"list", "--nope"}, 2, "flag provided but not defined: -nope"},
		{"participants", []string{"kick", "r"}, 2, "want 2 argument(s) ROOM IDENTITY, got 1"},
		{"participants", []string{"mute", "r", "alice", "--track", "TR_x", "--kind", "audio"}, 2, "not both"},
		{"participants", []string{"mute", "--help"}, 0, "-kind kind"},
		{"relays", []string{"stop"}, 2, "want 1 argument(s) ID"},
	} {
		var out, errOut bytes.Buffer
		code := runAdminCmd(tc.group, tc.args, env, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.say) {
			t.Errorf("relayd %s %q: status %d, stderr %q; want %d saying %q", tc.group, tc.args, code, errOut.String(), tc.code, tc.say)
		}
	}
	var errOut bytes.Buffer
	if code := runAdminCmd("rooms", []string{"list"}, nil, io.Discard, &errOut); code != 2 || !strings.Contains(errOut.String(), "admin token is needed") {
		t.Errorf("no token nor secret: %d %q", code, errOut.String())
	}
	errOut.Reset()
	if code := runAdminCmd("rooms", []string{"list"}, env, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "127.0.0.1:1") {
		t.Errorf("no server: %d %q, want 1 naming the address", code, errOut.String())
	}
}

// The operator subcommands of the real binary against a running one:
// rooms, participants (list, mute, kick) and relays (list, stop), as
// tables and as JSON, with the address and secret from flags or the
// environment; refusals are exit status 1 with the server's words.
func TestAdminCmdAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildRelayd(t)
	p := spawnRelayd(t, bin, "--secret", restartSecret, "--listen", "127.0.0.1:0", "--udp-port", "0", "--data-dir", t.TempDir())
	base := "http://" + p.addr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tokens := signaling.NewTokens([]byte(restartSecret))
	dial := func(identity, room, role string) *client.Client {
		t.Helper()
		tok, err := tokens.Issue(signaling.TokenSpec{Identity: identity, Room: room, Role: role, Name: strings.ToUpper(identity), TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(ctx, base, tok, client.Options{})
		if err != nil {
			t.Fatalf("%s dials: %v", identity, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := c.JoinWith(ctx, client.JoinParams{Version: "1.1"}); err != nil {
			t.Fatalf("%s joins %s: %v", identity, room, err)
		}
		return c
	}
	// relayd runs the binary; flags: --url and --secret.
	relayd := func(want int, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append(args, "--url", base, "--secret", restartSecret)...)
		cmd.Env = os.Environ()
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("relayd %q: %v", args, err)
		}
		if code != want {
			t.Fatalf("relayd %q: status %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out.String(), errOut.String())
		}
		if want != 0 {
			return errOut.String()
		}
		return out.String()
	}
	mustHave := func(what, out string, lines ...string) {
		t.Helper()
		for _, l := range lines {
			if !strings.Contains(out, l) {
				t.Errorf("%s: no %q in\n%s", what, l, out)
			}
		}
	}

	if out := relayd(0, "rooms", "list"); strings.TrimSpace(out) != "no rooms" {
		t.Errorf("rooms list of an empty server: %q", out)
	}

	// alice hosts A and B; she goes live in A, relays A into B; bob
	// watches A.
	alice := dial("alice", "A", "host")
	dial("alice", "B", "host")
	bob := dial("bob", "A", "viewer")
	pub, err := client.NewSyntheticPublisher(client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	if err := alice.Publish(ctx, pub.Tracks()...); err != nil {
		t.Fatal(err)
	}
	pub.Start()
	video, err := client.WaitEvent(ctx, alice, client.NotifyTrackPublished, func(ev client.TrackEvent) bool { return ev.Track.Kind == "video" })
	if err != nil {
		t.Fatal(err)
	}
	var rl client.Relay
	if err := alice.Call(ctx, "relay.start", map[string]any{"destinations": []map[string]string{{"room": "B", "token": mustToken(t, tokens, "alice", "B")}}}, &rl); err != nil {
		t.Fatal(err)
	}
	if _, err := client.WaitEvent(ctx, alice, client.NotifyRelayState, func(ev client.RelayStateEvent) bool { return ev.State == "running" }); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitTrack(ctx, "video", nil); err != nil {
		t.Fatal(err)
	}

	out := relayd(0, "rooms", "list")
	mustHave("rooms list", out, "ROOM", "STATUS", "HOST")
	if !regexpLine(out, `^A\s+live\s+alice\s+2\s+1\s+no\s+BC_`) || !regexpLine(out, `^B\s+idle\s+alice\s+2\s+0\s+no\s+BC_`) {
		t.Errorf("rooms list:\n%s", out)
	}
	if out := relayd(0, "rooms", "list", "--status", "idle"); strings.Contains(out, "\nA ") || !strings.Contains(out, "\nB ") {
		t.Errorf("rooms list --status idle:\n%s", out)
	}
	var rooms struct{ Rooms []client.Room }
	if err := json.Unmarshal([]byte(relayd(0, "rooms", "list", "--json")), &rooms); err != nil || len(rooms.Rooms) != 2 {
		t.Errorf("rooms list --json: %+v, %v", rooms, err)
	}

	out = relayd(0, "participants", "list", "A")
	mustHave("participants list A", out, "IDENTITY", "ROLE", "TRACKS", "video VP8 "+video.Track.ID)
	if !regexpLine(out, `^alice\s+host\s+ALICE\s+audio opus TR_\S+, video VP8 TR_`) || !regexpLine(out, `^bob\s+viewer\s+BOB\s+-$`) {
		t.Errorf("participants list A:\n%s", out)
	}
	if out := relayd(0, "participants", "list", "B"); !regexpLine(out, `^alice\s+relay \(from A\)\s+ALICE\s+audio`) {
		t.Errorf("participants list B:\n%s", out)
	}

	// Mute with flags after the arguments; alice is told.
	out = relayd(0, "participants", "mute", "A", "alice", "--kind", "video")
	if !regexpLine(out, `^`+video.Track.ID+`\s+video\s+VP8\s+alice\s+true$`) {
		t.Errorf("participants mute:\n%s", out)
	}
	if _, err := client.WaitEvent(ctx, alice, client.NotifyTrackMuted, func(ev client.TrackMutedEvent) bool {
		return ev.TrackID == video.Track.ID && ev.Muted && ev.By == "admin"
	}); err != nil {
		t.Fatalf("alice not told of the admin mute: %v", err)
	}
	mustHave("participants list A after the mute", relayd(0, "participants", "list", "A"), "video VP8 "+video.Track.ID+" (muted)")
	mustHave("mute of someone without tracks", relayd(1, "participants", "mute", "A", "bob"), "bob has no track in room A", "HTTP 404, code 4004")
	mustHave("a bad kind", relayd(1, "participants", "mute", "A", "alice", "--kind", "screen"), "HTTP 400, code -32602")

	// Relays.
	out = relayd(0, "relays", "list")
	if !regexpLine(out, `^`+rl.ID+`\s+A/alice\s+running\s+none\s+false\s+B running$`) {
		t.Errorf("relays list:\n%s", out)
	}
	mustHave("relays stop", relayd(0, "relays", "stop", rl.ID), "relay "+rl.ID+" of A/alice: idle")
	mustHave("relays list after the stop", relayd(0, "relays", "list"), "no relays")
	mustHave("relays stop again", relayd(1, "relays", "stop", rl.ID), "HTTP 404, code 4004")

	// Kick, with the address and secret from the environment.
	cmd := exec.CommandContext(ctx, bin, "participants", "kick", "A", "bob")
	cmd.Env = append(os.Environ(), "RELAYD_URL="+base, "RELAYD_SECRET="+restartSecret)
	if b, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "kicked" {
		t.Fatalf("participants kick with the environment: %q, %v", b, err)
	}
	select {
	case <-bob.Closed():
	case <-ctx.Done():
		t.Fatal("bob was not closed")
	}
	if code := bob.CloseCode(); code != 4003 {
		t.Errorf("bob closed with %d, want 4003", code)
	}
	mustHave("kick of someone gone", relayd(1, "participants", "kick", "A", "bob"), "bob is not in the room", "code 4004")

	// A token that is not an admin's.
	viewerTok := mustToken(t, tokens, "carol", "A")
	cmd = exec.CommandContext(ctx, bin, "rooms", "list", "--url", base, "--token", viewerTok)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "HTTP 403, code 4003") {
		t.Errorf("rooms list with a viewer's token: %q, %v", b, err)
	}

	// Stop A.
	mustHave("rooms stop", relayd(0, "rooms", "stop", "A"), "room A: ended (stopped_by_admin)")
	mustHave("rooms list --status ended", relayd(0, "rooms", "list", "--status", "ended"), "stopped_by_admin")
	mustHave("rooms stop of no room", relayd(1, "rooms", "stop", "nowhere"), "code 4004")
}

func mustToken(t *testing.T, tokens *signaling.Tokens, identity, room string) string {
	t.Helper()
	tok, err := tokens.Issue(signaling.TokenSpec{Identity: identity, Room: room, Role: "viewer", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// regexpLine reports whether a line of out matches expr.
func regexpLine(out, expr string) bool {
	re := regexp.MustCompile(expr)
	for _, l := range strings.Split(out, "\n") {
		if re.MatchString(strings.TrimRight(l, " ")) {
			return true
		}
	}
	return false
}
