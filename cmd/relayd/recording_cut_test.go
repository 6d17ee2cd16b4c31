package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/signaling"
)

// cutLossMax is the most media a kill may cost a recording: what the
// recorder's write buffer held (flushed every second), what ebml-go's block
// sorter held (2 s) and the jitter buffers (up to 1 s), with some margin
// for a slow machine.
const cutLossMax = 5 * time.Second

// A recording cut by SIGKILL: the server dies while a host publishes to a
// room recorded with --record. Restarted on the same --data-dir, it lists
// the recording with cut: true, serves it, the file holds VP8 and Opus
// and lasts about what was published (ffprobe), the room is recorded
// (and stays so across another restart), and recording.completed is sent
// with cut: true.
func TestRecordingCutBySIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("ffprobe not found (Debian package ffmpeg, installed by .ci/run): cannot check the recording")
	}
	bin := filepath.Join(t.TempDir(), "relayd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	addr, cmd := startRelayd(t, bin, dir, "--record")
	base := "http://" + addr

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tok, _ := signaling.NewTokens([]byte(restartSecret)).Issue(signaling.TokenSpec{Identity: "alice", Room: "show", Role: "host", TTL: time.Hour})
	host, err := client.Dial(ctx, base, tok, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.Join(ctx); err != nil {
		t.Fatal(err)
	}
	pub, err := client.NewSyntheticPublisher(client.PublisherOptions{KeyframeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	if err := host.Publish(ctx, pub.Tracks()...); err != nil {
		t.Fatal(err)
	}
	pub.Start()
	started := time.Now()

	// The file grows on disk while the host publishes (the header, then
	// the clusters), and has no description yet.
	roomDir := filepath.Join(dir, "recordings", "show")
	for webmSize(roomDir) < 80<<10 { // the header and its 64 KiB cues reserve, and some media
		if ctx.Err() != nil {
			t.Fatalf("no recording growing in %s", roomDir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Until(started.Add(8 * time.Second)))
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	published := time.Since(started)
	pub.Stop()
	_ = host.Close()
	names, _ := filepath.Glob(filepath.Join(roomDir, "*"))
	t.Logf("published %v; left by the kill: %v", published, names)
	// And a file that is no recording at all: left alone, not listed.
	junkPath := filepath.Join(roomDir, "bob-1.webm")
	junk := []byte("\x1a\x45\xdf\xa3 and then nothing of a WebM file")
	if err := os.WriteFile(junkPath, junk, 0o600); err != nil {
		t.Fatal(err)
	}

	hooks := newHookSink(t)
	addr2, cmd2 := startRelayd(t, bin, dir, "--webhook-url", hooks.URL)
	base2 := "http://" + addr2

	code, list := api(t, "GET", base2+"/v1/rooms/show/recordings", "")
	recs, _ := list["recordings"].([]any)
	if code != 200 || len(recs) != 1 {
		t.Fatalf("recordings after the restart: %d %v", code, list)
	}
	rec := recs[0].(map[string]any)
	t.Logf("listed: %v", rec)
	if rec["cut"] != true || rec["participant"] != "alice" || rec["url"] == "" {
		t.Errorf("listed %v, want cut: true, participant alice and a url", rec)
	}
	tracks, _ := json.Marshal(rec["tracks"])
	if string(tracks) != `["audio/opus","video/VP8"]` {
		t.Errorf("tracks %s", tracks)
	}
	if at, err := time.Parse(time.RFC3339Nano, rec["startedAt"].(string)); err != nil || at.Sub(started).Abs() > 5*time.Second {
		t.Errorf("startedAt %v (%v), want about %v", rec["startedAt"], err, started)
	}
	listed, _ := rec["duration"].(float64)
	if at, err := time.Parse(time.RFC3339Nano, rec["startedAt"].(string)); err == nil {
		t.Logf("media lost to the kill: %.2fs", published.Seconds()+started.Sub(at).Seconds()-listed)
	}
	if b, err := os.ReadFile(junkPath); err != nil || string(b) != string(junk) {
		t.Errorf("the file that is no recording was changed: %q, %v", b, err)
	}
	if want := published.Seconds(); listed < want-cutLossMax.Seconds() || listed > want+0.5 {
		t.Errorf("listed duration %.2fs, want the %.2fs published, less at most %v", listed, want, cutLossMax)
	}

	// It downloads, whole, and plays.
	body := download(t, base2+rec["url"].(string))
	if size, _ := rec["size"].(float64); int64(len(body)) != int64(size) {
		t.Fatalf("downloaded %d bytes, listed %v", len(body), rec["size"])
	}
	path := filepath.Join(t.TempDir(), "cut.webm")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	_ = json.Unmarshal(out, &probe)
	kinds := map[string]string{}
	for _, s := range probe.Streams {
		kinds[s.CodecType] = s.CodecName
	}
	if kinds["video"] != "vp8" || kinds["audio"] != "opus" {
		t.Errorf("streams %v, want vp8 video and opus audio", kinds)
	}
	if d, err := strconv.ParseFloat(probe.Format.Duration, 64); err != nil || d < listed-0.1 || d > listed+0.1 {
		t.Errorf("ffprobe duration %q, want the listed %.2fs", probe.Format.Duration, listed)
	}

	// The room moved on, and back ends heard of the file.
	if code, room := api(t, "GET", base2+"/v1/rooms/show", ""); code != 200 || room["status"] != "recorded" {
		t.Errorf("room after the restart: %d %v, want recorded", code, room)
	}
	ev := hooks.wait(ctx, "recording.completed")
	var data map[string]any
	_ = json.Unmarshal(ev, &data)
	if data["cut"] != true || data["file"] != rec["name"] || data["size"] != rec["size"] {
		t.Errorf("recording.completed %s, want cut: true for %v", ev, rec["name"])
	}

	// Once repaired, it stays so: a third start repairs nothing, and the
	// room is still recorded (persisted).
	_ = cmd2.Process.Signal(syscall.SIGKILL)
	_ = cmd2.Wait()
	addr3, _ := startRelayd(t, bin, dir)
	if code, room := api(t, "GET", "http://"+addr3+"/v1/rooms/show", ""); code != 200 || room["status"] != "recorded" {
		t.Errorf("room after a third start: %d %v, want recorded", code, room)
	}
	_, list3 := api(t, "GET", "http://"+addr3+"/v1/rooms/show/recordings", "")
	a, _ := json.Marshal(list)
	b, _ := json.Marshal(list3)
	if string(a) != string(b) {
		t.Errorf("recordings changed at the third start:\n%s\n%s", a, b)
	}
}

// webmSize returns the size of the largest .webm in dir (0 if none).
func webmSize(dir string) int64 {
	names, _ := filepath.Glob(filepath.Join(dir, "*.webm"))
	var n int64
	for _, name := range names {
		if st, err := os.Stat(name); err == nil {
			n = max(n, st.Size())
		}
	}
	return n
}

func download(t *testing.T, url string) []byte {
	t.Helper()
	tok, _ := signaling.NewTokens([]byte(restartSecret)).Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/webm" {
		t.Fatalf("download %s: %d %s, %v", url, resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	return body
}

// hookSink is a webhook receiver on loopback: it keeps each event's data
// by type.
type hookSink struct {
	*httptest.Server
	mu     sync.Mutex
	events map[string][]json.RawMessage
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{events: map[string][]json.RawMessage{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.events[ev.Type] = append(h.events[ev.Type], ev.Data)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

// wait returns the data of the first event of type typ.
func (h *hookSink) wait(ctx context.Context, typ string) json.RawMessage {
	for ctx.Err() == nil {
		h.mu.Lock()
		evs := h.events[typ]
		h.mu.Unlock()
		if len(evs) > 0 {
			return evs[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	return json.RawMessage(`{"error":"no ` + strings.ReplaceAll(typ, `"`, ``) + ` event"}`)
}
