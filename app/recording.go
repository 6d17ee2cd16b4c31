package app

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/relaysfu/relayd/recorder"
	"github.com/relaysfu/relayd/sfu"
	"github.com/relaysfu/relayd/signaling"
)

// recordings records rooms: one recorder.Recorder per participant (its
// audio and video in one WebM), a Sink on each of its up tracks. When the
// room ends the files are finalized, described in a JSON file beside each
// (sizes and durations for the API), announced as recording.completed, and
// the room goes ended -> recorded.
type recordings struct {
	dir  string
	all  bool // --record
	sfu  func() *sfu.SFU
	emit func(typ, room string, data any)
	log  *slog.Logger

	mu     sync.Mutex
	on     map[string]bool                                    // rooms recorded on request
	active map[string]map[*sfu.Participant]*recorder.Recorder // by room name
	wg     sync.WaitGroup                                     // finalizations under way
}

func (rs *recordings) SetRecording(room string, on bool) {
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

// onTrack is the sfu's OnTrack hook: a published track of a recorded room
// gets a recorder sink.
func (rs *recordings) onTrack(r *sfu.Room, p *sfu.Participant, up *sfu.UpTrack, published bool) {
	if !published || !rs.wanted(r.Name()) {
		return
	}
	rs.mu.Lock()
	recs := rs.active[r.Name()]
	if recs == nil {
		recs = map[*sfu.Participant]*recorder.Recorder{}
		rs.active[r.Name()] = recs
	}
	rec := recs[p]
	if rec == nil {
		name := p.Identity()
		if p.Role() == sfu.RoleRelay {
			name += ".relay"
		}
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
			info := signaling.RecordingInfo{
				Name: filepath.Base(f.Path), Participant: f.Participant, Size: f.Size,
				Duration: f.Duration.Seconds(), Tracks: f.Tracks, StartedAt: f.StartedAt,
			}
			if b, err := json.Marshal(info); err == nil {
				_ = os.WriteFile(f.Path+".json", b, 0o600)
			}
			rs.emit("recording.completed", room, map[string]any{
				"participant": f.Participant, "file": info.Name, "size": f.Size,
				"duration_ms": f.Duration.Milliseconds(), "tracks": f.Tracks, "started_at": f.StartedAt,
			})
		}
		if r := rs.sfu().Room(room); r != nil {
			r.MarkRecorded()
		}
	}()
}

// List implements signaling.Recordings.
func (rs *recordings) List(room string) ([]signaling.RecordingInfo, error) {
	dir := recorder.RoomDir(rs.dir, room)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []signaling.RecordingInfo
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".webm.json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var info signaling.RecordingInfo
		if json.Unmarshal(b, &info) == nil {
			info.URL = "/v1/rooms/" + url.PathEscape(room) + "/recordings/" + url.PathEscape(info.Name)
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out, nil
}

// Path implements signaling.Recordings: only finished recordings (those
// with a description) of that room, never a path outside it.
func (rs *recordings) Path(room, name string) (string, error) {
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
