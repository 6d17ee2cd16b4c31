package client_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
)

func startRelayd(t *testing.T) (*client.Admin, context.Context) {
	t.Helper()
	ctx, admin, stop := start()
	t.Cleanup(stop)
	return admin, ctx
}

// Refusals come back as *HTTPError carrying the body's error object, so
// ErrorCode reads relayd's code from an HTTP answer as from a JSON-RPC one.
func TestAdminRefusals(t *testing.T) {
	admin, ctx := startRelayd(t)
	viewerToken, err := admin.CreateToken(ctx, client.TokenRequest{Identity: "bob", Room: "show"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		call   func() error
		op     string
		status int
		code   int
	}{
		{"no token", func() error {
			_, err := (&client.Admin{BaseURL: admin.BaseURL}).Rooms(ctx, "")
			return err
		}, "GET /v1/rooms", http.StatusUnauthorized, client.CodeUnauthenticated},
		{"not an admin token", func() error {
			_, err := (&client.Admin{BaseURL: admin.BaseURL, Token: viewerToken}).Rooms(ctx, "")
			return err
		}, "GET /v1/rooms", http.StatusForbidden, client.CodeForbidden},
		{"unknown room", func() error {
			_, err := admin.StopRoom(ctx, "nowhere")
			return err
		}, "POST /v1/rooms/nowhere/stop", http.StatusNotFound, client.CodeNotFound},
		{"bad status filter", func() error {
			_, err := admin.Rooms(ctx, "asleep")
			return err
		}, "GET /v1/rooms", http.StatusBadRequest, client.CodeInvalidParams},
		{"unknown relay", func() error {
			_, err := admin.StopRelay(ctx, "RL_000000000000")
			return err
		}, "DELETE /v1/relays/RL_000000000000", http.StatusNotFound, client.CodeNotFound},
		{"unknown invitation", func() error {
			_, err := admin.AcceptInvitation(ctx, "IN_000000000000")
			return err
		}, "POST /v1/invitations/IN_000000000000/accept", http.StatusNotFound, client.CodeNotFound},
		{"source not connected", func() error {
			_, err := admin.StartRelay(ctx, client.RelaySource{Room: "show", Identity: "alice"},
				[]client.AdminRelayTarget{{Room: "studio", Identity: "alice"}})
			return err
		}, "POST /v1/relays", http.StatusNotFound, client.CodeNotFound},
		{"bad identity", func() error {
			_, err := admin.CreateToken(ctx, client.TokenRequest{Identity: "no spaces"})
			return err
		}, "POST /v1/tokens", http.StatusBadRequest, client.CodeInvalidParams},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var he *client.HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want an *HTTPError", err)
			}
			if he.Op != c.op || he.Status != c.status || client.ErrorCode(err) != c.code || he.Err == nil || he.Err.Message == "" {
				t.Fatalf("got op %q, HTTP %d, code %d (%+v), want %q, %d, %d", he.Op, he.Status, client.ErrorCode(err), he.Err, c.op, c.status, c.code)
			}
		})
	}

	// A room name in use: 409, and nothing changed.
	if _, err := admin.CreateRoom(ctx, client.CreateRoomRequest{Name: "show", Host: "alice", Title: "first"}); err != nil {
		t.Fatal(err)
	}
	_, err = admin.CreateRoom(ctx, client.CreateRoomRequest{Name: "show", Host: "carol", Title: "second"})
	if client.ErrorCode(err) != client.CodeConflict {
		t.Fatalf("second CreateRoom: %v, want 4009", err)
	}
	if r, err := admin.Room(ctx, "show"); err != nil || r.Host != "alice" || r.Title != "first" {
		t.Fatalf("room after a refused create: %+v, %v", r, err)
	}
}

func TestAdminBadBaseURL(t *testing.T) {
	for _, base := range []string{"", "ftp://127.0.0.1:1", "://"} {
		if _, err := (&client.Admin{BaseURL: base, Token: "x"}).Rooms(context.Background(), ""); err == nil {
			t.Errorf("base URL %q accepted", base)
		}
	}
}

// Tokens minted over HTTP open sessions; TTL and Name reach the token.
func TestAdminCreateToken(t *testing.T) {
	admin, ctx := startRelayd(t)
	tok, err := admin.CreateToken(ctx, client.TokenRequest{Identity: "alice", Room: "show", Role: "host", Name: "Alice", TTL: 90 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, admin.BaseURL, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	j, err := c.Join(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if j.Participant.Name != "Alice" || j.Participant.Role != "host" || j.Room.Name != "show" {
		t.Fatalf("joined as %+v in %+v", j.Participant, j.Room)
	}
	// A user-session token: no room, invitations only.
	tok, err = admin.CreateToken(ctx, client.TokenRequest{Identity: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := client.Dial(ctx, admin.BaseURL, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if j, err = u.Join(ctx); err != nil || j.Room != nil {
		t.Fatalf("user session join: %+v, %v", j, err)
	}
}

// Recording is switched per room; the list of a room without any is empty.
func TestAdminRecordings(t *testing.T) {
	admin, ctx := startRelayd(t)
	if _, err := admin.CreateRoom(ctx, client.CreateRoomRequest{Name: "show", Host: "alice", Record: true}); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetRecording(ctx, "show", false); err != nil {
		t.Fatal(err)
	}
	recs, err := admin.Recordings(ctx, "show")
	if err != nil || len(recs) != 0 {
		t.Fatalf("recordings: %+v, %v", recs, err)
	}
	if err := admin.SetRecording(ctx, "nowhere", true); client.ErrorCode(err) != client.CodeNotFound {
		t.Fatalf("SetRecording of an unknown room: %v", err)
	}
	if rooms, err := admin.Rooms(ctx, "idle"); err != nil || len(rooms) != 1 || rooms[0].Name != "show" {
		t.Fatalf("idle rooms: %+v, %v", rooms, err)
	}
	if rooms, err := admin.Rooms(ctx, "live"); err != nil || len(rooms) != 0 {
		t.Fatalf("live rooms: %+v, %v", rooms, err)
	}
}

// Dial's refusal carries the server's code too.
func TestDialRefusedCode(t *testing.T) {
	admin, ctx := startRelayd(t)
	c, err := client.Dial(ctx, admin.BaseURL, "not-a-token", client.Options{})
	if c != nil {
		_ = c.Close()
	}
	var he *client.HTTPError
	if !errors.As(err, &he) || he.Op != "websocket upgrade" || he.Status != http.StatusUnauthorized || client.ErrorCode(err) != client.CodeUnauthenticated {
		t.Fatalf("Dial with a bad token: %v", err)
	}
}

// What a client publishes arrives at its viewers under the server's
// payload types, not its own: the server rewrites each packet's payload
// type per subscriber.
func TestPublishRewritesPayloadType(t *testing.T) {
	admin, ctx := startRelayd(t)
	host, _ := connect(ctx, admin, "alice", "show", "host")
	defer host.Close()
	defer publish(ctx, host, client.PublisherOptions{}).Stop()
	viewer, _ := connect(ctx, admin, "bob", "show", "viewer")
	defer viewer.Close()

	sent := map[string]uint8{}
	for _, s := range host.PublisherPC().GetSenders() {
		if p := s.GetParameters(); s.Track() != nil && len(p.Codecs) > 0 {
			sent[s.Track().Kind().String()] = uint8(p.Codecs[0].PayloadType)
		}
	}
	for kind, want := range map[string]uint8{"video": 96, "audio": 111} { // the server's (internal/codec/codecs.go)
		rt, err := viewer.WaitTrack(ctx, kind, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := waitUntil(ctx, kind+" packets", func() bool { return rt.Packets() >= 10 }); err != nil {
			t.Fatal(err)
		}
		if got := uint8(rt.Remote().PayloadType()); got != want || sent[kind] == want {
			t.Errorf("%s: sent with payload type %d, received with %d, want %d (and different)", kind, sent[kind], got, want)
		}
	}
}
