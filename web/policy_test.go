package web_test

import (
	"encoding/json"
	"testing"
)

// callJSON runs fn of an ES module on each case's arguments in the page
// and returns each result as JSON (undefined as "undefined").
func callJSON(t *testing.T, p *page, module, fn string, args [][]any) []string {
	t.Helper()
	in, _ := json.Marshal(args)
	out, err := eval[[]string](p, `(async () => {
		const m = await import(`+jsString(module)+`);
		return `+string(in)+`.map((a) => {
			const r = m[`+jsString(fn)+`](...a);
			return r === undefined ? "undefined" : JSON.stringify(r);
		});
	})()`)
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return out
}

// The client's decisions (sdk/relay-policy.js) as table tests: simulcast
// layers by capture size, the layers publisher.layers keeps, what a tile
// asks for, reconnect waits, whether a kept session may be resumed, and
// the quality badge; with reconnectingText of the pages' words.
func TestPolicy(t *testing.T) {
	p := wordsPage(t)
	const mod = "/sdk/relay-policy.js"
	check := func(fn string, args [][]any, want []string) {
		t.Helper()
		got := callJSON(t, p, mod, fn, args)
		for i := range want {
			if i >= len(got) || got[i] != want[i] {
				g := "(none)"
				if i < len(got) {
					g = got[i]
				}
				t.Errorf("%s%v = %s, want %s", fn, args[i], g, want[i])
			}
		}
	}
	size := func(w, h int) map[string]any { return map[string]any{"width": w, "height": h} }
	three := `[{"rid":"q","scaleResolutionDownBy":4,"maxBitrate":150000,"active":true},{"rid":"h","scaleResolutionDownBy":2,"maxBitrate":500000,"active":true},{"rid":"f","scaleResolutionDownBy":1,"maxBitrate":1500000,"active":true}]`
	two := `[{"rid":"q","scaleResolutionDownBy":2,"maxBitrate":150000,"active":true},{"rid":"f","scaleResolutionDownBy":1,"maxBitrate":600000,"active":true}]`
	check("simulcastEncodings", [][]any{
		{size(1280, 720)}, {size(1920, 1080)}, {size(960, 540)}, {size(540, 960)}, // 540p and above: three
		{size(640, 480)}, {size(640, 360)}, // 360p-539p: two
		{size(640, 358)}, {size(320, 180)}, // smaller: one plain encoding
		{size(1280, 720), false}, {map[string]any{}}, {nil}, {size(1280, 0)},
	}, []string{three, three, three, three, two, two, "null", "null", "null", "null", "null", "null"})

	check("layerFlags", [][]any{
		{[]any{"q", "h", "f"}, []any{"q", "h"}},
		{[]any{"q", "h", "f"}, []any{"q", "h", "f"}},
		{[]any{"q", "h", "f"}, []any{}},
		{[]any{"q", "f"}, []any{"f", "x"}},
		{[]any{nil}, []any{}}, // a plain sender: never switched off
		{[]any{}, []any{"q"}},
		{[]any{"q", "h", "f"}, nil},
	}, []string{"[true,true,false]", "[true,true,true]", "[false,false,false]", "[false,true]", "null", "null", "[false,false,false]"})

	layers := []any{
		map[string]any{"rid": "q", "quality": "low", "width": 320, "height": 180},
		map[string]any{"rid": "h", "quality": "medium", "width": 640, "height": 360},
		map[string]any{"rid": "f", "quality": "high", "width": 1280, "height": 720},
	}
	view := func(w, h float64, dpr float64) map[string]any {
		return map[string]any{"hidden": false, "visible": true, "width": w, "height": h, "dpr": dpr}
	}
	paused := `{"paused":true}`
	check("tileSettings", [][]any{
		{map[string]any{"hidden": true, "visible": true, "width": 800, "height": 450}, layers}, // the tab is hidden
		{map[string]any{"visible": false, "width": 800, "height": 450}, layers},                // scrolled off screen
		{view(0, 0, 1), layers}, // not laid out
		{view(300, 169, 1), layers},
		{view(320, 180, 1), layers},
		{view(321, 180, 1), layers},
		{view(300, 169, 2), layers}, // 600 device pixels
		{view(800, 450, 1), layers},
		{view(1600, 900, 1), layers}, // wider than any layer: no limit
		{view(300, 169, 1), nil},     // sizes unknown: a small tile asks low
		{view(800, 450, 1), []any{map[string]any{"rid": "q", "quality": "low"}}},
	}, []string{
		paused, paused, paused,
		`{"paused":false,"quality":"auto","maxWidth":320}`,
		`{"paused":false,"quality":"auto","maxWidth":320}`,
		`{"paused":false,"quality":"auto","maxWidth":640}`,
		`{"paused":false,"quality":"auto","maxWidth":640}`,
		`{"paused":false,"quality":"auto","maxWidth":1280}`,
		`{"paused":false,"quality":"auto","maxWidth":0}`,
		`{"paused":false,"quality":"low","maxWidth":0}`,
		`{"paused":false,"quality":"auto","maxWidth":0}`,
	})

	check("sameSettings", [][]any{
		{map[string]any{"paused": false, "quality": "auto", "maxWidth": 0}, map[string]any{}},
		{map[string]any{"paused": true}, map[string]any{"paused": true, "quality": "low", "maxWidth": 320}},
		{map[string]any{"paused": false, "maxWidth": 320}, map[string]any{"paused": false, "maxWidth": 640}},
		{map[string]any{"paused": false}, map[string]any{"paused": true}},
		{nil, map[string]any{}},
	}, []string{"true", "true", "false", "false", "false"})

	// Attempt n, {base, max, graceLeft}, jitter r.
	opts := func(left int) map[string]any { return map[string]any{"base": 500, "max": 8000, "graceLeft": left} }
	check("reconnectDelay", [][]any{
		{1, opts(0), 0}, {1, opts(0), 0.999}, {2, opts(0), 0.5}, {5, opts(0), 1}, {9, opts(0), 1}, // 250-500, 750, 8000, cap 8000
		{5, opts(20000), 1}, // held: capped at 2 s
		{3, opts(20000), 0}, // held: 2000/2
		{4, opts(1000), 1},  // the grace nearly over: before its end
		{4, opts(100), 1},   // less than the margin: at once
	}, []string{"250", "500", "750", "8000", "8000", "2000", "1000", "750", "0"})

	check("graceLeft", [][]any{
		{1000, 30000, 11000}, {1000, 30000, 31000}, {1000, 30000, 40000}, {0, 30000, 5000}, {1000, 0, 1000},
	}, []string{"20000", "0", "0", "0", "0"})

	stored := func(at int) map[string]any {
		return map[string]any{"sessionId": "SE_1", "resumeToken": "rt.1", "lastSeq": 7, "at": at}
	}
	alice := map[string]any{"sub": "alice", "room": "show", "exp": 2000}
	check("resumable", [][]any{
		{stored(1000), alice, alice, 20000, 30000},
		{stored(1000), alice, map[string]any{"sub": "bob", "room": "show"}, 20000, 30000},
		{stored(1000), alice, map[string]any{"sub": "alice", "room": "other"}, 20000, 30000},
		{stored(1000), alice, alice, 31000, 30000},
		{map[string]any{"resumeToken": "", "lastSeq": 1, "at": 1000}, alice, alice, 2000, 30000},
		{map[string]any{"resumeToken": "rt", "at": 1000}, alice, alice, 2000, 30000},
		{stored(1000), nil, alice, 2000, 30000},
		{nil, alice, alice, 2000, 30000},
	}, []string{`""`, `"another identity or room"`, `"another identity or room"`, `"grace over"`, `"no resume token"`, `"bad lastSeq"`, `"tokens unreadable"`, `"none stored"`})

	later := map[string]any{"sub": "alice", "room": "show", "exp": 3000}
	bob := map[string]any{"sub": "bob", "room": "show", "exp": 9000}
	check("newerToken", [][]any{
		{"given", alice, "kept", later}, // a refreshed token lives longer
		{"given", later, "kept", alice},
		{"given", alice, "kept", bob}, // another identity's: never
		{"given", alice, "", nil},
	}, []string{`"kept"`, `"given"`, `"given"`, `"given"`})

	check("qualityLabel", [][]any{
		{"high", 720}, {"high", 1080}, {"medium", 360}, {"low", 180}, {"high", 180}, // the decoded size wins
		{"high", 0}, {"medium", nil}, {"low", 0}, {"", 0}, {nil, 0},
	}, []string{`"HD"`, `"HD"`, `"SD"`, `"LD"`, `"LD"`, `"HD"`, `"SD"`, `"LD"`, `""`, `""`})

	lay := func(rid string, active bool, w, h int) map[string]any {
		return map[string]any{"rid": rid, "active": active, "width": w, "height": h}
	}
	layersArgs := [][]any{
		{[]any{lay("q", true, 320, 180), lay("h", true, 640, 360), lay("f", true, 1280, 720)}},
		{[]any{lay("q", true, 320, 180), lay("h", false, 0, 0), lay("f", false, 0, 0)}},
		{[]any{lay("q", true, 0, 0), lay("f", true, 0, 0)}},
		{[]any{lay("", true, 640, 480)}},
		{nil},
	}
	gotLayers := call(t, p, "/static/words.js", "layersText", layersArgs)
	wantLayers := []string{
		"Sending 3 layers: q 320×180 · h 640×360 · f 1280×720",
		"Sending 3 layers: q 320×180 · h off · f off (no viewer needs what is off)",
		"Sending 2 layers: q · f",
		"", "",
	}
	for i := range wantLayers {
		if i >= len(gotLayers) || gotLayers[i] != wantLayers[i] {
			t.Errorf("layersText case %d = %q, want %q", i, gotLayers, wantLayers[i])
		}
	}

	got := call(t, p, "/static/words.js", "reconnectingText", [][]any{{12300}, {1000}, {0}, {-5}, {nil}})
	want := []string{"Reconnecting… (13 s left)", "Reconnecting… (1 s left)", "Reconnecting…", "Reconnecting…", "Reconnecting…"}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("reconnectingText case %d = %v, want %q", i, got, want[i])
		}
	}
}
