// Package web is relayd's browser side, embedded in the binary: the
// JavaScript client of the wire contract (/sdk/relay-client.js, with its
// TypeScript declarations) and the demo pages (lobby, studio, co-host,
// viewer).
//
// Routes of Handler:
//
//	GET  /sdk/relay-client.js    the ES module client (always)
//	GET  /sdk/relay-client.d.ts  its type declarations (always)
//	GET  /sdk/relay-policy.js    its decisions as pure functions, imported by it (always)
//	GET  /sdk/relay-resume.js    its resume, ICE restart and token refresh methods (always)
//	GET  /sdk/relay-simulcast.js its simulcast, dynacast and track settings methods (always)
//	GET  /                       lobby: rooms live now
//	GET  /studio                 host: preview, record, go live, chat (invite/delete/kick per message), co-hosts, invitations, relay, end, go live again
//	GET  /cohost                 invitee: pending invitations, accept/decline, join/leave the stage, chat
//	GET  /watch                  viewer: one tile per host, co-host and relayed host, REC, chat, invitation banner, go on stage, why it ended, the recording
//	GET  /static/...             the pages' CSS and scripts
//	POST /dev/token              Dev only: {identity, room?, role?} -> {token}
//	GET  /dev/rooms              Dev only: {"rooms": [...]} from Options.Rooms
//
// Anything else is 404 (so is /dev/* without Dev). The pages take a token
// from their URL (?token=...) when one is given, and otherwise ask
// /dev/token, so they work unchanged behind an app back end that mints
// tokens.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
)

//go:embed sdk pages static
var files embed.FS

// Options configure Handler.
type Options struct {
	// Dev serves the /dev/ endpoints the demo pages use to get tokens and
	// the room list. Never in production: anyone may mint any token.
	Dev bool
	// MintToken issues a token (dev only): identity, room ("" = user
	// session), role "host"|"viewer" ("" with a room means viewer).
	MintToken func(identity, room, role string) (string, error)
	// Rooms lists rooms for the lobby (dev only). Its JSON is served at
	// /dev/rooms; a list (e.g. []sfu.RoomInfo) is wrapped as {"rooms": [...]}.
	// The lobby reads name, host, status, title and viewers of each room.
	Rooms func() any
	// Logger gets dev token mints (debug) and failures (warn). Default: none.
	Logger *slog.Logger
}

// asset is one embedded file, ready to serve.
type asset struct {
	name  string
	body  []byte
	etag  string
	ctype string
}

// page routes: path -> embedded page.
var pageRoutes = map[string]string{
	"/{$}":    "pages/index.html",
	"/studio": "pages/studio.html",
	"/cohost": "pages/cohost.html",
	"/watch":  "pages/watch.html",
}

// contentSecurityPolicy keeps the pages to their own scripts and styles:
// no inline script, so text from the network can never run as code.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// Handler serves the SDK, the demo pages and their assets, and under Dev
// the /dev/ endpoints.
func Handler(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /sdk/relay-client.js", serveAsset(mustAsset("sdk/relay-client.js"), false))
	mux.Handle("GET /sdk/relay-client.d.ts", serveAsset(mustAsset("sdk/relay-client.d.ts"), false))
	mux.Handle("GET /sdk/relay-policy.js", serveAsset(mustAsset("sdk/relay-policy.js"), false))
	mux.Handle("GET /sdk/relay-resume.js", serveAsset(mustAsset("sdk/relay-resume.js"), false))
	mux.Handle("GET /sdk/relay-simulcast.js", serveAsset(mustAsset("sdk/relay-simulcast.js"), false))
	for route, name := range pageRoutes {
		mux.Handle("GET "+route, serveAsset(mustAsset(name), true))
	}
	static := map[string]*asset{}
	_ = fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			static[strings.TrimPrefix(p, "static/")] = mustAsset(p)
		}
		return nil
	})
	mux.HandleFunc("GET /static/{file...}", func(w http.ResponseWriter, r *http.Request) {
		a := static[r.PathValue("file")]
		if a == nil {
			http.NotFound(w, r)
			return
		}
		serveAsset(a, false).ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/icon.svg", http.StatusMovedPermanently)
	})
	if o.Dev {
		d := &dev{o: o}
		if o.MintToken != nil {
			mux.HandleFunc("POST /dev/token", d.token)
		}
		if o.Rooms != nil {
			mux.HandleFunc("GET /dev/rooms", d.rooms)
		}
	}
	return headers(mux)
}

// headers adds the headers every answer gets.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		// Page URLs may carry a token: never send them to anyone.
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func mustAsset(name string) *asset {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("web: missing embedded file " + name)
	}
	sum := sha256.Sum256(b)
	return &asset{name: name, body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: contentType(name)}
}

func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".d.ts"):
		return "application/typescript; charset=utf-8"
	case strings.HasSuffix(name, ".js"):
		return "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".css"):
		return "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".html"):
		return "text/html; charset=utf-8"
	case strings.HasSuffix(name, ".svg"):
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// serveAsset serves an embedded file with an ETag; browsers revalidate
// (no-cache), so a new binary's files are picked up at once.
func serveAsset(a *asset, isPage bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		if isPage {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("X-Frame-Options", "DENY")
			// The camera and microphone are for these pages only.
			h.Set("Permissions-Policy", "camera=(self), microphone=(self)")
		}
		if strings.HasPrefix(a.name, "sdk/") {
			// Other origins (an app's own pages) may load the SDK.
			h.Set("Access-Control-Allow-Origin", "*")
		}
		http.ServeContent(w, r, path.Base(a.name), time.Time{}, bytes.NewReader(a.body))
	})
}

// dev serves the /dev/ endpoints.
type dev struct{ o Options }

// validName is the contract's alphabet for identities and room names.
var validName = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,128}$`)

// JSON-RPC / contract codes used in error bodies, as in the HTTP API.
const (
	codeParse         = -32700
	codeInvalidParams = -32602
	codeInternal      = -32603
	codeTooMany       = 4013
)

const maxBody = 65536

func (d *dev) token(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Identity string `json:"identity"`
		Room     string `json:"room"`
		Role     string `json:"role"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, codeTooMany, "request body over 65536 bytes")
			return
		}
		writeError(w, http.StatusBadRequest, codeInvalidParams, "reading body: "+err.Error())
		return
	}
	if err := json.Unmarshal(body, &in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			writeError(w, http.StatusBadRequest, codeInvalidParams, "invalid params: "+te.Field+" must be a string")
			return
		}
		writeError(w, http.StatusBadRequest, codeParse, "body must be a JSON object {identity, room, role}")
		return
	}
	if !validName.MatchString(in.Identity) {
		writeError(w, http.StatusBadRequest, codeInvalidParams, "invalid params: identity must be 1-128 of [A-Za-z0-9_.:@-]")
		return
	}
	if in.Room != "" && !validName.MatchString(in.Room) {
		writeError(w, http.StatusBadRequest, codeInvalidParams, "invalid params: room must be 1-128 of [A-Za-z0-9_.:@-]")
		return
	}
	switch {
	case in.Room == "":
		in.Role = "" // a user session: invitations only
	case in.Role == "":
		in.Role = "viewer"
	case in.Role != "host" && in.Role != "viewer":
		writeError(w, http.StatusBadRequest, codeInvalidParams, `invalid params: role must be "host" or "viewer"`)
		return
	}
	tok, err := d.o.MintToken(in.Identity, in.Room, in.Role)
	if err != nil {
		d.o.Logger.Warn("dev token", "identity", in.Identity, "room", in.Room, "err", err)
		writeError(w, http.StatusInternalServerError, codeInternal, "could not mint a token: "+err.Error())
		return
	}
	d.o.Logger.Debug("dev token minted", "identity", in.Identity, "room", in.Room, "role", in.Role)
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

func (d *dev) rooms(w http.ResponseWriter, _ *http.Request) {
	b, err := json.Marshal(d.o.Rooms())
	if err != nil {
		d.o.Logger.Warn("dev rooms", "err", err)
		writeError(w, http.StatusInternalServerError, codeInternal, "internal error")
		return
	}
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		b = []byte(`{"rooms":[]}`)
	case len(b) > 0 && b[0] == '[':
		b = append(append([]byte(`{"rooms":`), b...), '}')
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers like the HTTP API: {"error": {"code", "message"}}.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}
