package rooms

// A room's recording files: the sidecar that describes (and lists) each
// finished one, the repair of those a killed server left, the listing and
// the download path.

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/relaysfu/relayd/recorder"
)

// describe writes a finished recording's sidecar, which lists it.
func (rs *recordings) describe(room string, info RecordingInfo) {
	path := filepath.Join(recorder.RoomDir(rs.dir, room), info.Name) + sidecarSuffix
	if err := writeSidecar(path, info); err != nil {
		rs.log.Error("recording description", "room", room, "participant", info.Participant, "file", info.Name, "err", err)
	}
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
	// A file cut short was being recorded when the server was killed: in
	// the broadcast the room was in then, the one restored as its
	// current.
	var bc string
	restored := rs.sfu.Room(room)
	if restored != nil {
		bc = restored.BroadcastID()
	}
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
			Name: e.Name(), Participant: participant, BroadcastID: bc, Size: res.Size, Duration: res.Duration.Seconds(),
			Tracks: res.Tracks, StartedAt: started, Cut: true,
		})
	}
	if !cut {
		return
	}
	// recorded before the sidecars: a crash in between repairs the files
	// again at the next start (to the same bytes), and the room is not
	// left ended with every file described.
	if restored != nil {
		restored.MarkRecorded()
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

// list returns a room's finished recordings, oldest first: those of the
// broadcast bc, or every one when bc is "".
func (rs *recordings) list(room, bc string) ([]RecordingInfo, error) {
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
		if json.Unmarshal(b, &info) == nil && (bc == "" || info.BroadcastID == bc) {
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

// Recordings returns a room's finished recordings, oldest first (never
// nil): those of the broadcast bc, or every broadcast's when bc is "".
// ErrNotFound without the room, or when it has no broadcast bc.
func (r *Rooms) Recordings(room, bc string) ([]RecordingInfo, error) {
	if r.Room(room) == nil {
		return nil, errorf(ErrNotFound, "room %s not found", room)
	}
	if err := r.checkBroadcast(room, bc); err != nil {
		return nil, err
	}
	if r.rec == nil {
		return []RecordingInfo{}, nil
	}
	list, err := r.rec.list(room, bc)
	if list == nil {
		list = []RecordingInfo{}
	}
	return list, err
}

// RecordingPath returns the file of one of a room's finished recordings,
// or ErrNotFound. (Who may download it is the transport's to check: it
// knows the tokens.)
func (r *Rooms) RecordingPath(room, name string) (string, error) {
	if r.rec == nil {
		return "", errorf(ErrNotFound, "recording not found")
	}
	p, err := r.rec.path(room, name)
	if errors.Is(err, os.ErrNotExist) {
		return "", errorf(ErrNotFound, "recording not found")
	}
	return p, err
}
