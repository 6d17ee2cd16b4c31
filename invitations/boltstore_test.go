package invitations

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaysfu/relayd/metrics"
)

// roundTrip is inv as it reads back from JSON: what a store returns.
func roundTrip(t *testing.T, inv Invitation) Invitation {
	t.Helper()
	b, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	var out Invitation
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPersistence: what a Manager committed reads back the same from a
// store opened anew over the same data (a restart; for Redis, also
// another node).
func TestPersistence(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		open := k.at(t)
		store, err := open()
		if err != nil {
			t.Fatal(err)
		}
		// The real clock, nanoseconds and all, to check they survive.
		m := NewManager(Config{Store: store, Metrics: metrics.New()})
		inv, _, err := m.Create(room, host, host, invitee)
		if err != nil {
			t.Fatal(err)
		}
		acc := must(t)(m.Accept(inv.ID, invitee))
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}

		store, err = open()
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		m = NewManager(Config{Store: store, Metrics: metrics.New()})
		got := must(t)(m.Get(inv.ID))
		if want := roundTrip(t, acc); !reflect.DeepEqual(got, want) {
			t.Errorf("after reopening: %+v, want %+v", got, want)
		}
		if !reflect.DeepEqual(got, acc) {
			t.Errorf("the accepted invitation differs from its JSON round trip: %+v, %+v", acc, got)
		}
		if !m.IsCohost(room, invitee) {
			t.Errorf("co-host lost in the restart")
		}
	})
}

// TestHelperProcess is the child of TestKilledAfterCommit, not a test of
// its own: it commits an accept in the store of RELAYD_TEST_DIR, says so,
// and waits to be killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("RELAYD_TEST_DIR")
	if dir == "" {
		t.Skip("child of TestKilledAfterCommit")
	}
	store, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(Config{Store: store, Metrics: metrics.New()})
	inv, _, err := m.Create(room, host, host, invitee)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Accept(inv.ID, invitee); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("committed " + inv.ID + "\n")
	time.Sleep(time.Minute) // the parent kills us long before
	t.Fatal("not killed")
}

// TestKilledAfterCommit: what Accept returned is on disk, even when the
// process dies right after without closing anything.
func TestKilledAfterCommit(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "RELAYD_TEST_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	// Scan closes when the child dies, so a child that fails does not
	// hang the test.
	var id string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
			id = rest
			break
		}
	}
	if id == "" {
		t.Fatalf("the child never committed (scan: %v)", sc.Err())
	}

	// While the child holds the file, a second open fails fast.
	begin := time.Now()
	if s, err := OpenBolt(dir); err == nil {
		s.Close()
		t.Fatalf("opened a store another process holds")
	} else if !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("second open: %v, want a message about the lock", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("second open took %v to fail", d)
	}

	// Process.Kill is SIGKILL on Unix: no deferred Close, no flush.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true

	store, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	inv, err := store.Get(id)
	if err != nil || inv.Status != StatusAccepted || inv.User != invitee {
		t.Fatalf("after the kill: %+v, %v; want bob's accepted invitation", inv, err)
	}
}

func TestOpenBoltLocked(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A second open of the same file, even in this process, waits for
	// the lock (flock is per open file) and gives up after openTimeout.
	begin := time.Now()
	b, err := OpenBolt(dir)
	if err == nil {
		b.Close()
		t.Fatal("opened a locked store")
	}
	// bbolt polls the lock every 50ms and stops polling just short of
	// the timeout.
	if d := time.Since(begin); d < openTimeout/2 || d > 5*openTimeout {
		t.Errorf("failed after %v, want about %v", d, openTimeout)
	}
	if !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("error %q does not say why", err)
	}
}

func TestOpenBoltCreatesDir(t *testing.T) {
	dir := t.TempDir() + "/a/b"
	s, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v, %v; want mode 0700", fi, err)
	}
}

func TestRoomRecords(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		open := k.at(t)
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		started := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
		ended := started.Add(time.Hour)
		rooms := []RoomRecord{
			{Name: "zeta", Host: "zed", Status: "idle", CreatedAt: started},
			{Name: "alpha", Host: "al", Title: "Morning show", Metadata: json.RawMessage(`{"tags":["news"]}`),
				Status: "ended", CreatedAt: started, StartedAt: &started, EndedAt: &ended},
		}
		for _, r := range rooms {
			if err := s.PutRoom(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutRoom(RoomRecord{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutRoom without a name: %v, want ErrInvalid", err)
		}
		// Records survive a reopen.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = open(); err != nil {
			t.Fatal(err)
		}
		defer s.Close()

		for _, want := range rooms {
			got, err := s.GetRoom(want.Name)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("GetRoom(%s) = %+v, %v; want %+v", want.Name, got, err, want)
			}
		}
		if _, err := s.GetRoom("nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetRoom of a missing room: %v", err)
		}
		list, err := s.ListRooms()
		if err != nil || len(list) != 2 || !reflect.DeepEqual(list[0], rooms[1]) || !reflect.DeepEqual(list[1], rooms[0]) {
			t.Errorf("ListRooms = %+v, %v; want alpha then zeta", list, err)
		}
		// Put replaces.
		rooms[0].Status = "live"
		if err := s.PutRoom(rooms[0]); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetRoom("zeta"); got.Status != "live" {
			t.Errorf("replaced record reads %q", got.Status)
		}
	})
}

// TestStoreIndexes checks the status index follows transitions and that
// Update refuses to change what is indexed.
func TestStoreIndexes(t *testing.T) {
	eachStore(t, func(t *testing.T, k storeKind) {
		f := newFixture(t, k, 0)
		a, b := f.invite(t, "u1"), f.invite(t, "u2")
		must(t)(f.m.Accept(a.ID, "u1"))
		tests := []struct {
			f    Filter
			want int
		}{
			{Filter{Status: StatusPending}, 1},
			{Filter{Status: StatusAccepted}, 1},
			{Filter{Status: StatusAccepted, User: "u1"}, 1},
			{Filter{Status: StatusAccepted, User: "u2"}, 0},
			{Filter{User: "u2"}, 1},
			{Filter{}, 2},
		}
		for _, tc := range tests {
			if list := mustList(t)(f.store.List(tc.f)); len(list) != tc.want {
				t.Errorf("List(%+v): %d, want %d", tc.f, len(list), tc.want)
			}
		}
		_, err := f.store.Update(b.ID, func(inv *Invitation, _ []Invitation) error {
			inv.User = "mallory"
			return nil
		})
		if err == nil {
			t.Errorf("Update changed the user")
		}
		if got := must(t)(f.store.Get(b.ID)); got.User != "u2" {
			t.Errorf("refused update stored %+v", got)
		}
		// Update hands fn the whole room.
		_, err = f.store.Update(b.ID, func(_ *Invitation, sameRoom []Invitation) error {
			if len(sameRoom) != 2 {
				t.Errorf("sameRoom has %d invitations, want 2", len(sameRoom))
			}
			return errSkip
		})
		if !errors.Is(err, errSkip) {
			t.Errorf("fn's error came back as %v", err)
		}
		// A duplicate id is refused.
		if _, _, err := f.store.Create(b, func([]Invitation) error { return nil }); !errors.Is(err, ErrConflict) {
			t.Errorf("Create of an existing id: %v, want ErrConflict", err)
		}
	})
}
