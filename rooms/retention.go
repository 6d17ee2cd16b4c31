package rooms

// Room retention (--room-retention, default 720h = 30 days; 0 keeps ended
// rooms forever). A room that has been ended (or recorded) for longer is
// purged: taken out of the sfu's registry, and its record, its
// invitations, its chat history and its recordings deleted, the recordings
// from this node's disk. Operators who keep recordings copy them off after
// recording.completed (the webhook names the file): they are deleted with
// their room. The name is then free: GET /v1/rooms/{room} answers 404 and
// a host token creates the room anew.
//
// One sweeper goroutine (run) purges, at start and then once a minute.
// In cluster mode every node sweeps: the rooms in its own registry, and
// the stored rooms no node holds (a dead node's). The deletes are
// idempotent and conditional, so nodes racing on a room (or a new room of
// the same name created meanwhile) are safe:
//   - the record goes only if it is still the purged room's (CreatedAt);
//   - invitations and messages only up to the room's EndedAt: a newer
//     room of the name made them later;
//   - recordings only when no room of the name is in this node's
//     registry, and only files last written before the purge began;
//   - a recordings directory whose room has no record left (another node
//     purged it first, so this node never saw it due) goes once its files
//     are older than the retention and no room of the name is here.
//
// The record is deleted last: if a delete fails the record stays, and the
// next sweep finds the room again and retries.

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/recorder"
	"github.com/relaysfu/relayd/sfu"
)

// sweepEvery is how often ended rooms are looked at. Retention is counted
// in days; a minute is precise enough and costs one store listing.
const sweepEvery = time.Minute

// dueForPurge returns the rooms of list that have been ended or recorded
// for keep or longer at now. keep <= 0 keeps every room; a room that has
// not ended, or whose end time is unknown or in the future, is never due.
func dueForPurge(list []sfu.RoomInfo, now time.Time, keep time.Duration) []sfu.RoomInfo {
	if keep <= 0 {
		return nil
	}
	var due []sfu.RoomInfo
	for _, r := range list {
		if r.Status.Ended() && r.EndedAt != nil && now.Sub(*r.EndedAt) >= keep {
			due = append(due, r)
		}
	}
	return due
}

// retention purges ended rooms past their retention.
type retention struct {
	keep   time.Duration
	sfu    *sfu.SFU
	store  invitations.Store
	chat   chat.Store
	recDir string // the recordings' root (data-dir/recordings); "": none
	log    *slog.Logger
}

// run sweeps at once, then every sweepEvery, until ctx is done.
func (rt *retention) run(ctx context.Context) {
	if rt.keep <= 0 {
		return
	}
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		rt.sweep(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep purges the rooms due at now: first those of this node's registry,
// then the stored rooms no room of this node stands for. It returns how
// many it purged, and stops early when ctx is done.
func (rt *retention) sweep(ctx context.Context, now time.Time) int {
	purged := 0
	local := map[string]*sfu.Room{}
	var infos []sfu.RoomInfo
	for _, r := range rt.sfu.Rooms() {
		local[r.Name()] = r
		infos = append(infos, r.Info(false))
	}
	for _, info := range dueForPurge(infos, now, rt.keep) {
		if ctx.Err() != nil {
			return purged
		}
		if rt.purge(info, local[info.Name]) {
			purged++
		}
	}
	recs, err := rt.store.ListRooms()
	if err != nil {
		rt.log.Error("retention: listing the stored rooms", "err", err)
		return purged
	}
	var stored []sfu.RoomInfo
	for _, rec := range recs {
		if rt.sfu.Room(rec.Name) == nil {
			stored = append(stored, sfu.RoomInfo{
				Name: rec.Name, Host: rec.Host, Status: sfu.RoomStatus(rec.Status),
				CreatedAt: rec.CreatedAt, EndedAt: rec.EndedAt,
			})
		}
	}
	for _, info := range dueForPurge(stored, now, rt.keep) {
		if ctx.Err() != nil {
			return purged
		}
		if rt.purge(info, nil) {
			purged++
		}
	}
	rt.sweepOrphans(now)
	return purged
}

// sweepOrphans deletes the recordings on this node's disk of rooms that
// have no record any more: in cluster mode another node may purge a room
// (record included) whose recordings this node wrote. Only files last
// written keep before now go, and only when no room of the name is in this
// node's registry or the store.
func (rt *retention) sweepOrphans(now time.Time) {
	if rt.recDir == "" {
		return
	}
	entries, err := os.ReadDir(rt.recDir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			rt.log.Error("retention: listing the recordings", "err", err)
		}
		return
	}
	for _, e := range entries {
		room, ok := recorder.RoomOfDir(e.Name())
		if !e.IsDir() || !ok || rt.sfu.Room(room) != nil {
			continue
		}
		if _, err := rt.store.GetRoom(room); !errors.Is(err, invitations.ErrNotFound) {
			continue // stored (or the store failed: keep, try next sweep)
		}
		n, err := removeRecordings(rt.recDir, room, now.Add(-rt.keep))
		if err != nil {
			rt.log.Error("retention: deleting the recordings of a purged room", "room", room, "err", err)
		} else if n > 0 {
			rt.log.Info("recordings of a purged room deleted", "room", room, "recordings", n)
		}
	}
}

// purge deletes one due room: r (nil for a room only stored) leaves the
// registry, then its invitations, messages and recordings go, its record
// last. It reports whether the record is gone (or was already).
func (rt *retention) purge(info sfu.RoomInfo, r *sfu.Room) bool {
	began := time.Now()
	if r != nil && !rt.sfu.Forget(r) {
		return false // replaced or reopened since it was listed
	}
	until := *info.EndedAt
	log := rt.log.With("room", info.Name)
	invs, err1 := rt.store.DeleteInvitations(info.Name, until)
	msgs, err2 := rt.chat.DeleteRoom(info.Name, until)
	var recs int
	var err3 error
	if rt.recDir != "" && rt.sfu.Room(info.Name) == nil { // else a new room of the name records here
		recs, err3 = removeRecordings(rt.recDir, info.Name, began)
	}
	if err := errors.Join(err1, err2, err3); err != nil {
		log.Error("retention: purging the room; the next sweep tries again", "err", err)
		return false
	}
	if _, err := rt.store.DeleteRoom(info.Name, info.CreatedAt); err != nil {
		log.Error("retention: deleting the room record; the next sweep tries again", "err", err)
		return false
	}
	log.Info("room purged", "ended_at", until, "invitations", invs, "messages", msgs, "recordings", recs)
	return true
}

// removeRecordings deletes the files of room's recordings directory last
// written before before, and the directory once empty. It returns how
// many recordings (WebM files) it deleted.
func removeRecordings(dir, room string, before time.Time) (int, error) {
	d := recorder.RoomDir(dir, room)
	entries, err := os.ReadDir(d)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(before) {
			continue
		}
		if err := os.Remove(filepath.Join(d, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		if strings.HasSuffix(e.Name(), ".webm") {
			n++
		}
	}
	if rest, err := os.ReadDir(d); err == nil && len(rest) == 0 {
		_ = os.Remove(d) // a recording starting now may have refilled it: then it stays
	}
	return n, errors.Join(errs...)
}
