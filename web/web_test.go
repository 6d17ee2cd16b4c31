package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func do(t *testing.T, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestRoutes(t *testing.T) {
	h := Handler(Options{})
	cases := []struct {
		path, ctype, contains string
	}{
		{"/sdk/relay-client.js", "text/javascript; charset=utf-8", "export class RelayClient"},
		{"/sdk/relay-client.d.ts", "application/typescript; charset=utf-8", "export declare class RelayClient"},
		{"/sdk/relay-policy.js", "text/javascript; charset=utf-8", "export function simulcastEncodings"},
		{"/sdk/relay-resume.js", "text/javascript; charset=utf-8", "export class ResumeMethods"},
		{"/sdk/relay-simulcast.js", "text/javascript; charset=utf-8", "export class SimulcastMethods"},
		{"/", "text/html; charset=utf-8", "Live now"},
		{"/studio", "text/html; charset=utf-8", "Go live"},
		{"/cohost", "text/html; charset=utf-8", "invitations"},
		{"/watch", "text/html; charset=utf-8", "Stream ended"},
		{"/static/style.css", "text/css; charset=utf-8", ".tile"},
		{"/static/app.js", "text/javascript; charset=utf-8", "export function el"},
		{"/static/icon.svg", "image/svg+xml", "<svg"},
	}
	for _, c := range cases {
		w := do(t, h, "GET", c.path, "")
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", c.path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if !strings.Contains(w.Body.String(), c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", c.path)
		}
		if strings.HasSuffix(c.ctype, "html; charset=utf-8") && !strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET %s: no CSP", c.path)
		}
	}
	for _, p := range []string{"/nope", "/studio/x", "/static/nope.js", "/sdk/other.js", "/dev/rooms", "/pages/index.html"} {
		if w := do(t, h, "GET", p, ""); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	// HEAD works like GET.
	if w := do(t, h, "HEAD", "/sdk/relay-client.js", ""); w.Code != http.StatusOK {
		t.Errorf("HEAD sdk: %d", w.Code)
	}
}

func TestETag(t *testing.T) {
	h := Handler(Options{})
	w := do(t, h, "GET", "/sdk/relay-client.js", "")
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req := httptest.NewRequest("GET", "/sdk/relay-client.js", nil)
	req.Header.Set("If-None-Match", etag)
	w2 := httptest.NewRecorder()
	h.ServeHTTP(w2, req)
	if w2.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d, want 304", w2.Code)
	}
}

func TestDevEndpointsOffWithoutDev(t *testing.T) {
	minted := false
	h := Handler(Options{
		MintToken: func(string, string, string) (string, error) { minted = true; return "x", nil },
		Rooms:     func() any { return []string{} },
	})
	if w := do(t, h, "POST", "/dev/token", `{"identity":"a","room":"r","role":"host"}`); w.Code != http.StatusNotFound {
		t.Fatalf("POST /dev/token without Dev: %d, want 404", w.Code)
	}
	if w := do(t, h, "GET", "/dev/rooms", ""); w.Code != http.StatusNotFound {
		t.Fatalf("GET /dev/rooms without Dev: %d, want 404", w.Code)
	}
	if minted {
		t.Fatal("minted a token without Dev")
	}
}

func TestDevToken(t *testing.T) {
	type call struct{ identity, room, role string }
	var got []call
	h := Handler(Options{Dev: true, MintToken: func(identity, room, role string) (string, error) {
		got = append(got, call{identity, room, role})
		if identity == "boom" {
			return "", errors.New("mint failed")
		}
		return "tok-" + identity, nil
	}})
	w := do(t, h, "POST", "/dev/token", `{"identity":"alice","room":"demo","role":"host"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("mint: %d %s", w.Code, w.Body)
	}
	var out struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Token != "tok-alice" {
		t.Fatalf("mint body %s", w.Body)
	}
	// Defaults: viewer with a room; no role for a user session.
	do(t, h, "POST", "/dev/token", `{"identity":"bob","room":"demo"}`)
	do(t, h, "POST", "/dev/token", `{"identity":"carol","role":"host"}`)
	want := []call{{"alice", "demo", "host"}, {"bob", "demo", "viewer"}, {"carol", "", ""}}
	if len(got) != len(want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("call %d = %v, want %v", i, got[i], want[i])
		}
	}

	bad := []struct {
		body   string
		status int
		code   int
	}{
		{`{"identity":""}`, 400, -32602},
		{`{"identity":"a b"}`, 400, -32602},
		{`{"identity":"` + strings.Repeat("a", 129) + `"}`, 400, -32602},
		{`{"identity":"a","room":"x/y"}`, 400, -32602},
		{`{"identity":"a","room":"r","role":"cohost"}`, 400, -32602},
		{`{"identity":5}`, 400, -32602},
		{`not json`, 400, -32700},
		{`{"identity":"a","pad":"` + strings.Repeat("x", 70000) + `"}`, 413, 4013},
		{`{"identity":"boom","room":"r"}`, 500, -32603},
	}
	for _, b := range bad {
		w := do(t, h, "POST", "/dev/token", b.body)
		if w.Code != b.status {
			t.Errorf("%.40s: status %d, want %d", b.body, w.Code, b.status)
			continue
		}
		var e struct {
			Error struct {
				Code    int
				Message string
			}
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != b.code || e.Error.Message == "" {
			t.Errorf("%.40s: body %s, want code %d", b.body, w.Body, b.code)
		}
	}
	if w := do(t, h, "GET", "/dev/token", ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /dev/token: %d, want 405", w.Code)
	}
}

func TestDevRooms(t *testing.T) {
	for _, c := range []struct {
		rooms any
		want  string
	}{
		{[]map[string]any{{"name": "a", "status": "live", "viewers": 2}}, `{"rooms":[{"name":"a","status":"live","viewers":2}]}`},
		{map[string]any{"rooms": []string{}}, `{"rooms":[]}`},
		{nil, `{"rooms":[]}`},
	} {
		h := Handler(Options{Dev: true, Rooms: func() any { return c.rooms }})
		w := do(t, h, "GET", "/dev/rooms", "")
		if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != c.want {
			t.Errorf("rooms %v: %d %s, want %s", c.rooms, w.Code, w.Body, c.want)
		}
		if w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", w.Header().Get("Content-Type"))
		}
	}
}

// TestNoInnerHTML keeps the pages to textContent: no markup is ever built
// from strings.
func TestNoInnerHTML(t *testing.T) {
	for _, dir := range []string{"static", "sdk", "pages"} {
		entries, err := files.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, _ := files.ReadFile(dir + "/" + e.Name())
			for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
				if strings.Contains(string(b), bad) {
					t.Errorf("%s/%s uses %s", dir, e.Name(), bad)
				}
			}
			if strings.HasSuffix(e.Name(), ".html") && (strings.Contains(string(b), "style=") || strings.Contains(string(b), "<script>")) {
				t.Errorf("%s/%s has inline style or script (the CSP forbids them)", dir, e.Name())
			}
		}
	}
}
