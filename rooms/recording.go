package rooms

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/relaysfu/relayd/recorder"
	"github.com/relaysfu/relayd/sfu"
)

// RecordingInfo is one finished recording as GET
// /v1/rooms/{room}/recordings lists it (and its sidecar file stores it).
type RecordingInfo struct {
	Name        string    `json:"name"` // the file name, for the download URL
	Participant string    `json:"participant"`
	Size        int64     `json:"size"`      // bytes
	Duration    float64   `json:"duration"`  // seconds
	Tracks      []string  `json:"tracks"`    // "audio/opus", "video/VP8"
	StartedAt   time.Time `json:"startedAt"` // first media written
	URL         string    `json:"url"`       // where to download it
	// Cut: the server was killed while recording; the file was repaired
	// at its next start. It ends up to a few seconds before the kill
	// (what was still buffered was lost).
	Cut bool `json:"cut"`
}

// recordings is the recording policy: which rooms are recorded (all with
// --record, else those asked for), and what happens to a room's
// recordings. It records rooms: one recorder.Recorder per participant (its
// audio and video in one WebM), a Sink on each of its up tracks. When the
// room ends the files are finalized, described in a JSON file beside each
// (sizes and durations for the API: the sidecar, <file>.webm.json),
// announced as recording.completed, and the room goes ended -> recorded.
// Files a killed server left unfinished are repaired at the next start
// (repairCut).
type recordings struct {
	dir  string
	all  bool // --record
	sfu  *sfu.SFU
	emit func(typ, room string, data any)
	log  *slog.Logger

	mu     sync.Mutex
	on     map[string]bool                                    // rooms recorded on request
	active map[string]map[*sfu.Participant]*recorder.Recorder // by room name
	wg     sync.WaitGroup                                     // finalizations under way
}

func (rs *recordings) setRecording(room string, on bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.on[room] = on
}

func (rs *recordings) wanted(room string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if v, ok := rs.on[room]; ok {
		return v
	}
	return rs.all
}

// onTrack follows the sfu's TrackChanged: a published track of a recorded
// room gets a recorder sink.
func (rs *recordings) onTrack(r *sfu.Room, p *sfu.Participant, up *sfu.UpTrack, published bool) {
	if !published || !rs.wanted(r.Name()) {
		return
	}
	name := p.Identity()
	if p.Role() == sfu.RoleRelay { // read before rs.mu: no sfu lock under it
		name += ".relay"
	}
	rs.mu.Lock()
	recs := rs.active[r.Name()]
	if recs == nil {
		recs = map[*sfu.Participant]*recorder.Recorder{}
		rs.active[r.Name()] = recs
	}
	rec := recs[p]
	if rec == nil {
		var err error
		rec, err = recorder.New(recorder.Params{Dir: rs.dir, Room: r.Name(), Participant: name, Logger: rs.log})
		if err != nil {
			rs.mu.Unlock()
			rs.log.Error("recorder", "room", r.Name(), "participant", name, "err", err)
			return
		}
		recs[p] = rec
	}
	rs.mu.Unlock()
	up.AddSink(rec.Sink(up))
}

// roomEnded finalizes a room's recordings in the background; Close waits.
func (rs *recordings) roomEnded(room string) {
	rs.mu.Lock()
	recs := rs.active[room]
	delete(rs.active, room)
	delete(rs.on, room)
	rs.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		for _, rec := range recs {
			f, err := rec.Close()
			if errors.Is(err, recorder.ErrNoMedia) {
				continue
			}
			if err != nil {
				rs.log.Error("recording", "room", room, "err", err)
				continue
			}
			info := RecordingInfo{
				Name: filepath.Base(f.Path), Participant: f.Participant, Size: f.Size,
				Duration: f.Duration.Seconds(), Tracks: f.Tracks, StartedAt: f.StartedAt,
			}
			rs.describe(room, info) // listed before anyone hears of it
			rs.announce(room, info)
		}
		if r := rs.sfu.Room(room); r != nil {
			r.MarkRecorded()
		}
	}()
}

// describe writes a finished recording's sidecar, which lists it.
func (rs *recordings) describe(room string, info RecordingInfo) {
	path := filepath.Join(recorder.RoomDir(rs.dir, room), info.Name) + sidecarSuffix
	if err := writeSidecar(path, info); err != nil {
		rs.log.Error("recording description", "room", room, "participant", info.Participant, "file", info.Name, "err", err)
	}
}

// announce emits recording.completed.
func (rs *recordings) announce(room string, info RecordingInfo) {
	rs.emit("recording.completed", room, map[string]any{
		"participant": info.Participant, "file": info.Name, "size": info.Size,
		"duration_ms": int64(math.Round(info.Duration * 1000)), "tracks": info.Tracks, "started_at": info.StartedAt,
		"cut": info.Cut,
	})
}

// sidecarSuffix is added to a recording's path for its description.
const sidecarSuffix = ".json"

// writeSidecar writes path through a temporary file renamed over it: a
// crash leaves the whole description or none, never half of one.
func writeSidecar(path string, info RecordingInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// described reports whether the recording at path has a readable sidecar.
func described(path string) bool {
	b, err := os.ReadFile(path + sidecarSuffix)
	var info RecordingInfo
	return err == nil && json.Unmarshal(b, &info) == nil
}

// repairCut finishes the recordings a killed server left behind, a .webm
// without its sidecar (see recorder.Repair). It runs once, at start,
// before rooms are served. Each file is repaired in place, then announced
// and described with cut: true, and so listed. A file that cannot be
// repaired (not one complete frame on disk: the server died as it began)
// is logged and left as it is, unlisted. A room that had such files,
// restored as ended, moves on to recorded (persisted, as for any room):
// its recordings are as final as they will be, as when a room ends with a
// recorder that got nothing.
func (rs *recordings) repairCut() {
	dirs, err := os.ReadDir(rs.dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		rs.log.Error("looking for recordings cut short", "dir", rs.dir, "err", err)
		return
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		room, ok := recorder.RoomOfDir(d.Name())
		if !ok {
			rs.log.Warn("not a room's recordings directory: left alone", "dir", filepath.Join(rs.dir, d.Name()))
			continue
		}
		rs.repairRoom(room, filepath.Join(rs.dir, d.Name()))
	}
}

func (rs *recordings) repairRoom(room, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		rs.log.Error("looking for recordings cut short", "room", room, "err", err)
		return
	}
	cut := false
	var repaired []RecordingInfo
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".webm") || described(path) {
			continue
		}
		cut = true
		res, err := recorder.RepairFile(path)
		if err != nil {
			rs.log.Error("recording cut short: cannot be repaired, left as it is (not listed)", "room", room, "file", e.Name(), "err", err)
			continue
		}
		participant, created, ok := recorder.ParseFileName(e.Name())
		if !ok {
			participant = strings.TrimSuffix(e.Name(), ".webm")
		}
		started := res.StartedAt
		if started.IsZero() { // a file from before DateUTC was written
			started = created
		}
		rs.log.Warn("recording cut short (the server was killed): repaired", "room", room, "participant", participant,
			"file", e.Name(), "duration", res.Duration, "frames", res.Frames, "dropped_bytes", res.Dropped, "cues", res.Cues)
		repaired = append(repaired, RecordingInfo{
			Name: e.Name(), Participant: participant, Size: res.Size, Duration: res.Duration.Seconds(),
			Tracks: res.Tracks, StartedAt: started, Cut: true,
		})
	}
	if !cut {
		return
	}
	// recorded before the sidecars: a crash in between repairs the files
	// again at the next start (to the same bytes), and the room is not
	// left ended with every file described.
	if r := rs.sfu.Room(room); r != nil {
		r.MarkRecorded()
	}
	// Announced before described: webhooks are delivered only once the
	// App runs, after this, so the file is listed by then anyway; and a
	// crash in between announces it again at the next start rather than
	// never.
	for _, info := range repaired {
		rs.announce(room, info)
		rs.describe(room, info)
	}
}

// list returns a room's finished recordings, oldest first.
func (rs *recordings) list(room string) ([]RecordingInfo, error) {
	dir := recorder.RoomDir(rs.dir, room)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []RecordingInfo
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".webm.json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var info RecordingInfo
		if json.Unmarshal(b, &info) == nil {
			info.URL = "/v1/rooms/" + url.PathEscape(room) + "/recordings/" + url.PathEscape(info.Name)
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out, nil
}

// path returns the file of a finished recording (one with a description)
// of that room, never a path outside it; os.ErrNotExist if none.
func (rs *recordings) path(room, name string) (string, error) {
	if name != filepath.Base(name) || !strings.HasSuffix(name, ".webm") {
		return "", os.ErrNotExist
	}
	p := filepath.Join(recorder.RoomDir(rs.dir, room), name)
	if _, err := os.Stat(p + ".json"); err != nil {
		return "", os.ErrNotExist
	}
	return p, nil
}

// wait waits for the finalizations under way.
func (rs *recordings) wait() { rs.wg.Wait() }

// SetRecording turns recording of a room on or off, for the tracks
// published from then on (the HTTP API); ErrNotFound without the room.
func (r *Rooms) SetRecording(room string, on bool) error {
	if r.sfu.Room(room) == nil {
		return errorf(ErrNotFound, "room %s not found", room)
	}
	r.rec.setRecording(room, on)
	return nil
}

// Recordings returns a room's finished recordings, oldest first (never
// nil); ErrNotFound without the room.
func (r *Rooms) Recordings(room string) ([]RecordingInfo, error) {
	if r.sfu.Room(room) == nil {
		return nil, errorf(ErrNotFound, "room %s not found", room)
	}
	list, err := r.rec.list(room)
	if list == nil {
		list = []RecordingInfo{}
	}
	return list, err
}

// RecordingPath returns the file of one of a room's finished recordings,
// or ErrNotFound. (Who may download it is the transport's to check: it
// knows the tokens.)
func (r *Rooms) RecordingPath(room, name string) (string, error) {
	p, err := r.rec.path(room, name)
	if errors.Is(err, os.ErrNotExist) {
		return "", errorf(ErrNotFound, "recording not found")
	}
	return p, err
}
