package signaling

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/sfu"
)

// lastNotification waits for c's socket to close with 1000 and returns the
// last notification it got before (trickle aside: ICE runs on its own).
func lastNotification(t *testing.T, c *client.Client, who string) client.Notification {
	t.Helper()
	select {
	case <-c.Closed():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: socket not closed", who)
	}
	if code := c.CloseCode(); code != 1000 {
		t.Errorf("%s: close code %d, want 1000", who, code)
	}
	var last client.Notification
	for {
		select {
		case n := <-c.Notifications():
			if n.Method != client.NotifyTrickle {
				last = n
			}
			continue
		default:
		}
		return last
	}
}

// endReasonOf decodes a room.updated's room status and endReason.
func endReasonOf(n client.Notification) (status, reason string) {
	var ev struct {
		Room struct {
			Status    string `json:"status"`
			EndReason string `json:"endReason"`
		} `json:"room"`
	}
	_ = json.Unmarshal(n.Params, &ev)
	return ev.Room.Status, ev.Room.EndReason
}

// Each way a room ends gives its endReason: in the room.updated "ended"
// that is the last notification of every participant (the host's relay
// stopped before it), in GET /v1/rooms/{room}, and in the stored record.
func TestEndReasons(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, ts *testServer, host *client.Client)
		want sfu.EndReason
	}{
		{"room.stop", func(t *testing.T, _ *testServer, host *client.Client) {
			if err := host.Call(testCtx(t), "room.stop", map[string]any{}, nil); err != nil {
				t.Fatal(err)
			}
		}, sfu.EndHostLeft},
		{"HTTP stop", func(t *testing.T, ts *testServer, _ *client.Client) {
			if code, body := httpDo(t, "POST", ts.URL+"/v1/rooms/A/stop", ts.adminToken(t), ""); code != 200 {
				t.Fatalf("stop: %d %v", code, body)
			}
		}, sfu.EndStoppedByAdmin},
		{"grace expired", func(t *testing.T, _ *testServer, host *client.Client) { _ = host.Close() }, sfu.EndHostTimeout},
		{"host leave", func(t *testing.T, _ *testServer, host *client.Client) {
			if err := host.Leave(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		}, sfu.EndHostTimeout},
		{"shutdown", func(t *testing.T, ts *testServer, _ *client.Client) { ts.SFU.Close() }, sfu.EndServerShutdown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, withGrace(300*time.Millisecond), withCohosts(map[string][]string{"alice": {"B"}}))
			viewers := relayRooms(t, ts, "B")
			host, _ := ts.join(t, "alice", "A", "host")
			publish(t, host)
			viewer, _ := ts.join(t, "bob", "A", "viewer")
			receiving(t, viewer, "video", 5)
			if err := host.Call(testCtx(t), "relay.start", map[string]any{"destinations": ts.dests(t, "alice", "B")}, nil); err != nil {
				t.Fatal(err)
			}
			waitNote(t, host, "relay.state", relayState("running"))
			receiving(t, viewers["B"], "video", 5)

			tc.end(t, ts, host)
			who := []struct {
				c    *client.Client
				name string
			}{{viewer, "viewer"}}
			if tc.name == "room.stop" || tc.name == "HTTP stop" || tc.name == "shutdown" {
				who = append(who, struct {
					c    *client.Client
					name string
				}{host, "host"})
			}
			for _, w := range who {
				n := lastNotification(t, w.c, w.name)
				if st, reason := endReasonOf(n); n.Method != "room.updated" || st != "ended" || reason != string(tc.want) {
					t.Errorf("%s: last notification %s %s, want room.updated ended with endReason %s", w.name, n.Method, n.Params, tc.want)
				}
			}
			code, body := httpDo(t, "GET", ts.URL+"/v1/rooms/A", ts.adminToken(t), "")
			if code != 200 || body["status"] != "ended" || body["endReason"] != string(tc.want) {
				t.Errorf("GET /v1/rooms/A: %d %v", code, body)
			}
			rec, err := ts.Store.GetRoom("A")
			if err != nil || rec.Status != "ended" || rec.EndReason != string(tc.want) {
				t.Errorf("stored record %+v (%v), want ended with %s", rec, err, tc.want)
			}
		})
	}
}

// The end reason is stored with the room: a server restarted on the same
// data dir shows it, and ends a room found live (a crash) with
// server_shutdown, stored so.
func TestEndReasonSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	t.Run("first server", func(t *testing.T) {
		ts := newTestServer(t, func(o *serverOpts) { o.dataDir = dir })
		ts.join(t, "alice", "stopped", "host")
		if code, body := httpDo(t, "POST", ts.URL+"/v1/rooms/stopped/stop", ts.adminToken(t), ""); code != 200 {
			t.Fatalf("stop: %d %v", code, body)
		}
		live, _ := ts.join(t, "carol", "live", "host")
		publish(t, live)
		waitNote(t, live, "room.updated", roomStatusIs("live"))
		// What a crash leaves: a record that still says live.
		if err := ts.Store.PutRoom(invitations.RoomRecord{Name: "crashed", Host: "dan", Status: "live", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		// The cleanup shuts this server down: "live" ends then.
	})
	ts := newTestServer(t, func(o *serverOpts) { o.dataDir = dir })
	for room, want := range map[string]string{"stopped": "stopped_by_admin", "live": "server_shutdown", "crashed": "server_shutdown"} {
		code, body := httpDo(t, "GET", ts.URL+"/v1/rooms/"+room, ts.adminToken(t), "")
		if code != 200 || body["status"] != "ended" || body["endReason"] != want {
			t.Errorf("%s after the restart: %d %v, want ended with %s", room, code, body, want)
		}
		if rec, err := ts.Store.GetRoom(room); err != nil || rec.EndReason != want {
			t.Errorf("stored record of %s after the restart: %+v %v", room, rec, err)
		}
	}
}
