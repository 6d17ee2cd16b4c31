package main

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// maxHeaderTimeout bounds reading a request's headers: a client that opens
// a connection and sends nothing, or headers byte by byte, is dropped after
// 10s whatever --http-read-timeout says.
const maxHeaderTimeout = 10 * time.Second

// newHTTPServer is the server of --listen with the timeouts of cfg.
//
// The timeouts are those of plain HTTP. A WebSocket (/v1/ws) leaves them
// when it is upgraded: net/http clears a hijacked connection's deadlines,
// and the session sets its own (a pong every 45s, 10s per write).
//
// WriteTimeout is made a bound on a response without progress rather than
// on the whole response: each write of a handler extends the connection's
// write deadline (writeProgress), so a recording download of any length
// goes on while the client reads, and one that stops reading is cut. The
// admin listener's pprof handlers extend it themselves by their ?seconds=.
func newHTTPServer(cfg Config, h http.Handler, log *slog.Logger) *http.Server {
	header := maxHeaderTimeout
	if cfg.HTTPReadTimeout > 0 {
		header = min(header, cfg.HTTPReadTimeout)
	}
	return &http.Server{
		Handler:           writeProgress(h, cfg.HTTPWriteTimeout),
		ReadHeaderTimeout: header,
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// writeProgress makes d, the server's WriteTimeout, count from a response's
// last write instead of from the end of its request. WebSocket upgrades
// pass untouched: they need the http.Hijacker of the server's own writer.
func writeProgress(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: d}, r)
	})
}

// progressWriter extends the write deadline before each write. It has no
// ReadFrom: io.Copy (http.ServeFile) then writes in 32 KiB pieces, each
// with a fresh deadline, where sendfile would have one for the whole file.
type progressWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *progressWriter) Write(b []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer (Flush,
// deadlines).
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
