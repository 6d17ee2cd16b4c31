package signaling

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
)

// layerNote matches track.layer for track id with quality and reason.
func layerNote(id, quality, reason string) func(json.RawMessage) bool {
	return func(p json.RawMessage) bool {
		var ev trackLayerParams
		return json.Unmarshal(p, &ev) == nil && ev.TrackID == id && ev.Quality == quality && ev.Reason == reason
	}
}

// track.settings: its errors (unknown and own track 4004, a user session
// 4003, bad values -32602, nothing changed), the settings in force
// (omitted fields kept), track.layer with a video track's first packet
// (a track that is not simulcast: high, no rid) for 1.1 viewers only,
// and paused stopping the video, without track.stream, until unpaused.
func TestTrackSettings(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	host, _ := ts.join11(t, "alice", "A", "host")
	v11, _ := ts.join11(t, "v11", "A", "viewer")
	v10, _ := ts.join(t, "v10", "A", "viewer")
	publish(t, host)
	video := ownTrack(t, host, "alice", "video")
	tr := receiving(t, v11, "video", 20)
	receiving(t, v10, "video", 20)
	n := waitNote(t, v11, "track.layer", layerNote(video.ID, "high", "requested"))
	if json.Valid(n.Params) {
		var raw map[string]any
		_ = json.Unmarshal(n.Params, &raw)
		if _, ok := raw["rid"]; ok {
			t.Errorf("track.layer of a track that is not simulcast has a rid: %s", n.Params)
		}
	}
	noNote(t, v10, "track.layer", nil, 100*time.Millisecond)

	for _, tc := range []struct {
		name   string
		c      *client.Client
		params map[string]any
		code   int
	}{
		{"unknown track", v11, map[string]any{"trackId": "TR_nope"}, CodeNotFound},
		{"own track", host, map[string]any{"trackId": video.ID}, CodeNotFound},
		{"no trackId", v11, map[string]any{}, CodeInvalidParams},
		{"bad quality", v11, map[string]any{"trackId": video.ID, "quality": "ultra"}, CodeInvalidParams},
		{"too wide", v11, map[string]any{"trackId": video.ID, "maxWidth": 16385}, CodeInvalidParams},
		{"negative", v11, map[string]any{"trackId": video.ID, "maxHeight": -1}, CodeInvalidParams},
		{"not a number", v11, map[string]any{"trackId": video.ID, "maxWidth": "640"}, CodeInvalidParams},
		{"paused not a bool", v11, map[string]any{"trackId": video.ID, "paused": 1}, CodeInvalidParams},
	} {
		if err := tc.c.Call(ctx, "track.settings", tc.params, nil); client.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want code %d", tc.name, err, tc.code)
		}
	}
	tok, _ := ts.Tokens.Issue(TokenSpec{Identity: "dave", TTL: time.Hour})
	u, err := client.Dial(ctx, ts.URL, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, _ = u.Join(ctx)
	if err := u.Call(ctx, "track.settings", map[string]any{"trackId": video.ID}, nil); client.ErrorCode(err) != CodeForbidden {
		t.Errorf("user session: %v, want %d", err, CodeForbidden)
	}

	var got map[string]any
	if err := v11.Call(ctx, "track.settings", map[string]any{"trackId": video.ID, "maxWidth": 640}, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"trackId": video.ID, "quality": "auto", "maxWidth": 640.0, "maxHeight": 0.0, "paused": false}
	if len(got) != len(want) {
		t.Fatalf("settings %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("settings %v, want %v", got, want)
		}
	}
	if err := v11.Call(ctx, "track.settings", map[string]any{"trackId": video.ID, "paused": true}, &got); err != nil {
		t.Fatal(err)
	}
	if got["maxWidth"] != 640.0 || got["paused"] != true {
		t.Fatalf("paused kept no maxWidth: %v", got)
	}
	packetsStop(t, tr)
	noNote(t, v11, "track.stream", nil, 10*time.Millisecond)
	kf, pk := tr.Keyframes(), tr.Packets()
	if err := v11.Call(ctx, "track.settings", map[string]any{"trackId": video.ID, "paused": false}, &got); err != nil {
		t.Fatal(err)
	}
	flowsAgain(t, tr, kf, pk, 2*time.Second)
	noNote(t, v11, "track.stream", nil, 10*time.Millisecond)
}
