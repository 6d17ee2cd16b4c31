package rooms

// Recording policy: which broadcasts record (every one with --record,
// else those asked for: POST /v1/rooms {record}, POST
// /v1/rooms/{room}/record, the host's room.record), and what happens to a
// broadcast's recordings. The files themselves are recordfiles.go's.

import (
	"errors"
	"log/slog"
	"math"
	"path/filepath"
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
	BroadcastID string    `json:"broadcastId,omitempty"` // the broadcast recorded (none: from before broadcasts)
	Size        int64     `json:"size"`                  // bytes
	Duration    float64   `json:"duration"`              // seconds
	Tracks      []string  `json:"tracks"`                // "audio/opus", "video/VP8"
	StartedAt   time.Time `json:"startedAt"`             // first media written
	URL         string    `json:"url"`                   // where to download it
	// Cut: the server was killed while recording; the file was repaired
	// at its next start. It ends up to a few seconds before the kill
	// (what was still buffered was lost).
	Cut bool `json:"cut"`
}

// recordings is the recording policy. It records broadcasts (each an
// sfu.Room): one recorder.Recorder per participant (its audio and video in
// one WebM), a Sink on each of its up tracks. Turning recording off
// finalizes the broadcast's recordings so far; turning it on again starts
// new files. When the broadcast ends its files are finalized, described in
// a JSON file beside each (sizes and durations for the API: the sidecar,
// <file>.webm.json), announced as recording.completed, and the broadcast
// goes ended -> recorded (its own: a later broadcast of the room is not
// touched). Files a killed server left unfinished are repaired at the next
// start (repairCut).
//
// The room object's recording (sfu.Room.SetRecording) says whether the
// broadcast records: it follows the policy here.
type recordings struct {
	dir  string
	all  bool // --record
	sfu  *sfu.SFU
	emit func(typ, room string, data any)
	log  *slog.Logger

	mu  sync.Mutex
	bcs map[*sfu.Room]*broadcastRec // guarded by mu: broadcasts asked about or recording
	wg  sync.WaitGroup              // finalizations under way
}

// broadcastRec is one broadcast's recording. Guarded by recordings.mu.
type broadcastRec struct {
	set, on bool                                    // asked for explicitly (set), and whether on
	active  map[*sfu.Participant]*recorder.Recorder // recording now
	sinks   map[*sfu.UpTrack]bool                   // tracks with a recorder's sink
	made    int                                     // recorders made, ever
	pending sync.WaitGroup                          // its finalizations under way
}

// entry returns room's record, made if needed. The caller holds rs.mu.
func (rs *recordings) entry(room *sfu.Room) *broadcastRec {
	b := rs.bcs[room]
	if b == nil {
		b = &broadcastRec{active: map[*sfu.Participant]*recorder.Recorder{}, sinks: map[*sfu.UpTrack]bool{}}
		rs.bcs[room] = b
	}
	return b
}

// wantedLocked is the policy: the broadcast's own choice, else --record.
func (rs *recordings) wantedLocked(room *sfu.Room) bool {
	if b := rs.bcs[room]; b != nil && b.set {
		return b.on
	}
	return rs.all
}

// started applies the policy to a new broadcast (created, restored, or
// the next one of its room): recording when --record says so, or record.
func (rs *recordings) started(room *sfu.Room, record bool) {
	if record {
		rs.set(room, true)
		return
	}
	rs.mu.Lock()
	on := rs.wantedLocked(room)
	rs.mu.Unlock()
	if on {
		room.SetRecording(true)
	}
}

// set turns recording of the broadcast room on or off. On: every track
// published now is recorded too, and the tracks published later. Off: its
// recordings so far are finalized (in the background) and listed. The
// room object's recording says so (room.updated to all on a change).
func (rs *recordings) set(room *sfu.Room, on bool) {
	rs.mu.Lock()
	b := rs.entry(room)
	b.set, b.on = true, on
	var stop map[*sfu.Participant]*recorder.Recorder
	if !on {
		stop, b.active, b.sinks = b.active, map[*sfu.Participant]*recorder.Recorder{}, map[*sfu.UpTrack]bool{}
		rs.finalizeLocked(room, b, stop)
	}
	rs.mu.Unlock()
	room.SetRecording(on)
	if on {
		for _, p := range room.Members() {
			for _, up := range p.PublishedTracks() {
				rs.record(room, p, up)
			}
		}
	}
}

// onTrack follows the sfu's TrackChanged: a published track of a recorded
// broadcast gets a recorder sink.
func (rs *recordings) onTrack(room *sfu.Room, p *sfu.Participant, up *sfu.UpTrack, published bool) {
	if published {
		rs.record(room, p, up)
	}
}

// record gives up, a track of p, a sink of p's recorder when the broadcast
// records and up has none yet.
func (rs *recordings) record(room *sfu.Room, p *sfu.Participant, up *sfu.UpTrack) {
	if room.Status().Ended() {
		return
	}
	name := p.Identity()
	if p.Role() == sfu.RoleRelay { // read before rs.mu: no sfu lock under it
		name += ".relay"
	}
	rs.mu.Lock()
	if !rs.wantedLocked(room) {
		rs.mu.Unlock()
		return
	}
	b := rs.entry(room)
	if b.sinks[up] {
		rs.mu.Unlock()
		return
	}
	rec := b.active[p]
	if rec == nil {
		var err error
		rec, err = recorder.New(recorder.Params{Dir: rs.dir, Room: room.Name(), Participant: name, Logger: rs.log})
		if err != nil {
			rs.mu.Unlock()
			rs.log.Error("recorder", "room", room.Name(), "participant", name, "err", err)
			return
		}
		b.active[p] = rec
		b.made++
	}
	b.sinks[up] = true
	rs.mu.Unlock()
	up.AddSink(rec.Sink(up))
}

// roomEnded finalizes the ended broadcast's recordings in the background
// (Close waits); once they are all final, it goes recorded if it made any
// recorder (even one that got no media: its recordings are as final as
// they will be).
func (rs *recordings) roomEnded(room *sfu.Room) {
	rs.mu.Lock()
	b := rs.bcs[room]
	delete(rs.bcs, room)
	if b == nil || b.made == 0 {
		rs.mu.Unlock()
		return
	}
	rs.finalizeLocked(room, b, b.active)
	b.active = nil
	rs.wg.Add(1)
	rs.mu.Unlock()
	go func() {
		defer rs.wg.Done()
		b.pending.Wait()
		room.MarkRecorded() // this broadcast's Room, registered or not
	}()
}

// finalizeLocked closes recs, recorders of the broadcast room, in the
// background: each file is described (and so listed) and announced. The
// caller holds rs.mu.
func (rs *recordings) finalizeLocked(room *sfu.Room, b *broadcastRec, recs map[*sfu.Participant]*recorder.Recorder) {
	if len(recs) == 0 {
		return
	}
	bc := room.BroadcastID()
	rs.wg.Add(1)
	b.pending.Add(1)
	go func() {
		defer rs.wg.Done()
		defer b.pending.Done()
		for _, rec := range recs {
			f, err := rec.Close()
			if errors.Is(err, recorder.ErrNoMedia) {
				continue
			}
			if err != nil {
				rs.log.Error("recording", "room", room.Name(), "err", err)
				continue
			}
			info := RecordingInfo{
				Name: filepath.Base(f.Path), Participant: f.Participant, BroadcastID: bc, Size: f.Size,
				Duration: f.Duration.Seconds(), Tracks: f.Tracks, StartedAt: f.StartedAt,
			}
			rs.describe(room.Name(), info) // listed before anyone hears of it
			rs.announce(room.Name(), info)
		}
	}()
}

// announce emits recording.completed.
func (rs *recordings) announce(room string, info RecordingInfo) {
	rs.emit("recording.completed", room, withBroadcast(map[string]any{
		"participant": info.Participant, "file": info.Name, "size": info.Size,
		"duration_ms": int64(math.Round(info.Duration * 1000)), "tracks": info.Tracks, "started_at": info.StartedAt,
		"cut": info.Cut,
	}, info.BroadcastID))
}

// wait waits for the finalizations under way.
func (rs *recordings) wait() { rs.wg.Wait() }

// HasRecorder reports whether this server records at all: it has a data
// directory for the files (Config.DataDir).
func (r *Rooms) HasRecorder() bool { return r.rec != nil }

// SetRecording turns recording of a room's current broadcast on or off
// (the HTTP API), and returns the room: ErrNotFound without the room,
// ErrConflict once it has ended, ErrNotFound when this server records
// nothing.
func (r *Rooms) SetRecording(name string, on bool) (sfu.RoomInfo, error) {
	room := r.Room(name)
	if room == nil {
		return sfu.RoomInfo{}, errorf(ErrNotFound, "room %s not found", name)
	}
	if r.rec == nil {
		return sfu.RoomInfo{}, errorf(ErrNotFound, "this server records nothing (it has no data directory)")
	}
	if room.Status().Ended() {
		return sfu.RoomInfo{}, errorf(ErrConflict, "room %s has ended", name)
	}
	r.rec.set(room, on)
	return room.Info(false), nil
}

// Record turns recording of the member's room on or off (room.record): the
// host only, in a room that has not ended. It returns the room.
func (m *Member) Record(on bool) (sfu.RoomInfo, error) {
	if err := m.hostOnly(); err != nil {
		return sfu.RoomInfo{}, err
	}
	room := m.p.Room()
	if m.r.rec == nil {
		return sfu.RoomInfo{}, errorf(ErrNotFound, "this server records nothing")
	}
	if room.Status().Ended() {
		return sfu.RoomInfo{}, errorf(ErrConflict, "room has ended")
	}
	m.r.rec.set(room, on)
	return room.Info(false), nil
}
