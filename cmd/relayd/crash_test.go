package main

// Crash safety of the invitation store: SIGKILL in the middle of a burst of
// invitation writes, restart on the same store, and every acknowledged
// write is there as acknowledged.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/internal/redistest"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/signaling"
)

// The burst: crashRooms rooms (each with its host's WebSocket session),
// crashUsers invitees (each with a user session), crashWorkers clients
// writing at once, half over the HTTP API and half over JSON-RPC. The kill
// comes once crashKillAfter writes were acknowledged.
const (
	crashRooms     = 4
	crashUsers     = 12
	crashWorkers   = 8
	crashKillAfter = 60
)

// A burst of invitation creates, accepts, rejects and cancels from several
// clients at once, over HTTP and WebSocket, is cut by SIGKILL; relayd
// restarted on the same --data-dir has every acknowledged write exactly as
// acknowledged, and nothing else that is not a write the clients attempted.
func TestInvitationBurstSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	runInvitationCrash(t, []string{"--data-dir", t.TempDir()})
}

// The same in cluster mode: the store is Redis (which keeps running); the
// node is killed and started again with the same --node-id.
func TestInvitationBurstSurvivesSIGKILLCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	rs := redistest.Start(t)
	runInvitationCrash(t, []string{"--data-dir", t.TempDir(), "--redis", rs.URL, "--node-id", "crash-1"})
}

// crashLog records, per invitation, what the server acknowledged and the
// writes it did not answer (refused writes are forgotten: they changed
// nothing).
type crashLog struct {
	mu         sync.Mutex
	acked      map[string][]invitations.Invitation // id -> acknowledged states
	inFlight   map[string][]invitations.Status     // id -> transitions sent, never answered
	ids        []string                            // every acknowledged id, for picking
	n          atomic.Int64                        // acknowledged writes
	unanswered atomic.Int64                        // writes cut by the kill
}

func (l *crashLog) ack(inv invitations.Invitation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.acked[inv.ID]; !ok {
		l.ids = append(l.ids, inv.ID)
	}
	l.acked[inv.ID] = append(l.acked[inv.ID], inv)
	l.n.Add(1)
}

func (l *crashLog) unansweredTransition(id string, to invitations.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight[id] = append(l.inFlight[id], to)
	l.unanswered.Add(1)
}

// pick returns an acknowledged invitation, preferring one last seen pending.
func (l *crashLog) pick(r *rand.Rand) (invitations.Invitation, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ids) == 0 {
		return invitations.Invitation{}, false
	}
	var inv invitations.Invitation
	for range 4 {
		states := l.acked[l.ids[r.IntN(len(l.ids))]]
		inv = states[len(states)-1]
		if inv.Status == invitations.StatusPending {
			break
		}
	}
	return inv, true
}

// crashClients are the burst's connections to one relayd.
type crashClients struct {
	base  string
	admin string
	http  *http.Client
	hosts []*client.Client // by room
	users []*client.Client // by user
}

func crashRoom(i int) string { return fmt.Sprintf("crash-r%d", i) }
func crashHost(i int) string { return fmt.Sprintf("host%d", i) }
func crashUser(i int) string { return fmt.Sprintf("user%02d", i) }

// call runs one write over HTTP; it returns the invitation of a 2xx answer,
// answered=false when no answer came (the server died).
func (c *crashClients) call(method, path, body string) (inv invitations.Invitation, ok, answered bool) {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.admin)
	resp, err := c.http.Do(req)
	if err != nil {
		return inv, false, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return inv, false, false // cut mid-answer: not acknowledged
	}
	if resp.StatusCode/100 != 2 {
		return inv, false, true
	}
	if err := json.Unmarshal(b, &inv); err != nil || inv.ID == "" {
		return inv, false, true
	}
	return inv, true, true
}

// rpc runs one write over a session; as call.
func rpc(cl *client.Client, method string, params any) (inv invitations.Invitation, ok, answered bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var raw json.RawMessage
	err := cl.Call(ctx, method, params, &raw)
	var re *client.RPCError
	switch {
	case errors.As(err, &re):
		return inv, false, true
	case err != nil:
		return inv, false, false
	}
	if err := json.Unmarshal(raw, &inv); err != nil || inv.ID == "" {
		return inv, false, true
	}
	return inv, true, true
}

// worker writes until the server dies or stop is closed.
func (c *crashClients) worker(seed uint64, log *crashLog, stop <-chan struct{}) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	useRPC := seed%2 == 1
	for {
		select {
		case <-stop:
			return
		default:
		}
		var (
			inv          invitations.Invitation
			ok, answered bool
			target       invitations.Status
			id           string
		)
		pending, havePending := log.pick(r)
		if !havePending || r.IntN(3) == 0 {
			room, user := r.IntN(crashRooms), r.IntN(crashUsers)
			if useRPC {
				inv, ok, answered = rpc(c.hosts[room], "invitation.create", map[string]string{"user": crashUser(user)})
			} else {
				inv, ok, answered = c.call("POST", "/v1/rooms/"+crashRoom(room)+"/invitations", `{"user":"`+crashUser(user)+`"}`)
			}
		} else {
			id = pending.ID
			action := []string{"accept", "reject", "cancel"}[r.IntN(3)]
			target = map[string]invitations.Status{"accept": invitations.StatusAccepted, "reject": invitations.StatusRejected, "cancel": invitations.StatusCancelled}[action]
			if useRPC {
				var cl *client.Client
				if action == "cancel" {
					cl = c.hosts[nameIndex(pending.Room, "crash-r%d")]
				} else {
					cl = c.users[nameIndex(pending.User, "user%d")]
				}
				inv, ok, answered = rpc(cl, "invitation."+action, map[string]string{"id": id})
			} else {
				inv, ok, answered = c.call("POST", "/v1/invitations/"+id+"/"+action, "")
			}
		}
		switch {
		case ok:
			log.ack(inv)
		case !answered && id != "":
			log.unansweredTransition(id, target)
			return
		case !answered:
			log.unanswered.Add(1) // a create: its id is unknown
			return
		}
	}
}

// nameIndex returns i of a name made with format (crashRoom, crashUser).
func nameIndex(name, format string) int {
	var i int
	_, _ = fmt.Sscanf(name, format, &i)
	return i
}

func runInvitationCrash(t *testing.T, storeFlags []string) {
	bin := buildRelayd(t)
	args := append([]string{"--secret", restartSecret, "--listen", "127.0.0.1:0", "--udp-port", "0"}, storeFlags...)
	proc := spawnRelayd(t, bin, args...)
	tokens := signaling.NewTokens([]byte(restartSecret))
	issue := func(spec signaling.TokenSpec) string {
		spec.TTL = time.Hour
		tok, err := tokens.Issue(spec)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	c := &crashClients{
		base:  "http://" + proc.addr,
		admin: issue(signaling.TokenSpec{Identity: "admin", Admin: true}),
		http:  &http.Client{Timeout: 20 * time.Second},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(spec signaling.TokenSpec) *client.Client {
		cl, err := client.Dial(ctx, c.base, issue(spec), client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		if _, err := cl.Join(ctx); err != nil {
			t.Fatalf("%s joins: %v", spec.Identity, err)
		}
		return cl
	}
	for i := range crashRooms {
		if code, out := api(t, "POST", c.base+"/v1/rooms", fmt.Sprintf(`{"name":%q,"host":%q}`, crashRoom(i), crashHost(i))); code != 201 {
			t.Fatalf("create room: %d %v", code, out)
		}
		c.hosts = append(c.hosts, dial(signaling.TokenSpec{Identity: crashHost(i), Room: crashRoom(i), Role: "host"}))
	}
	for i := range crashUsers {
		c.users = append(c.users, dial(signaling.TokenSpec{Identity: crashUser(i)}))
	}

	log := &crashLog{acked: map[string][]invitations.Invitation{}, inFlight: map[string][]invitations.Status{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.worker(uint64(w+1), log, stop)
		}()
	}
	deadline := time.Now().Add(45 * time.Second)
	for log.n.Load() < crashKillAfter {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d writes acknowledged in 45s", log.n.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if err := proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.cmd.Wait()
	close(stop)
	wg.Wait()
	for _, cl := range append(c.hosts, c.users...) {
		_ = cl.Close()
	}
	t.Logf("killed after %d acknowledged writes, with %d cut short (%d of them transitions)",
		log.n.Load(), log.unanswered.Load(), len(log.inFlight))
	if log.unanswered.Load() == 0 {
		t.Fatal("no write was in flight when the server died: the kill missed the burst")
	}

	proc2 := spawnRelayd(t, bin, args...)
	base2 := "http://" + proc2.addr
	stored := map[string]invitations.Invitation{}
	for u := range crashUsers {
		code, out := apiRaw(t, "GET", base2+"/v1/users/"+crashUser(u)+"/invitations", "")
		var list struct{ Invitations []invitations.Invitation }
		if code != 200 || json.Unmarshal(out, &list) != nil {
			t.Fatalf("list %s after the restart: %d %s", crashUser(u), code, out)
		}
		for _, inv := range list.Invitations {
			if _, dup := stored[inv.ID]; dup {
				t.Errorf("invitation %s listed twice", inv.ID)
			}
			stored[inv.ID] = inv
		}
	}
	checkCrashStore(t, log, stored)

	// Still writable: a new room, an invitation, its acceptance.
	if code, out := api(t, "POST", base2+"/v1/rooms", `{"name":"after","host":"hana"}`); code != 201 {
		t.Fatalf("create a room after the restart: %d %v", code, out)
	}
	code, inv := api(t, "POST", base2+"/v1/rooms/after/invitations", `{"user":"ivan"}`)
	if code != 201 {
		t.Fatalf("invite after the restart: %d %v", code, inv)
	}
	if code, acc := api(t, "POST", base2+"/v1/invitations/"+inv["id"].(string)+"/accept", ""); code != 200 || acc["status"] != "accepted" {
		t.Fatalf("accept after the restart: %d %v", code, acc)
	}
}

// checkCrashStore compares the store after the restart with the log.
func checkCrashStore(t *testing.T, log *crashLog, stored map[string]invitations.Invitation) {
	t.Helper()
	same := func(a, b invitations.Invitation) bool {
		return a.ID == b.ID && a.Room == b.Room && a.Host == b.Host && a.User == b.User && a.Status == b.Status &&
			a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
	}
	transitions := 0
	for id, states := range log.acked {
		got, ok := stored[id]
		if !ok {
			t.Errorf("acknowledged invitation %s (%s) is gone", id, states[len(states)-1].Status)
			continue
		}
		// An invitation takes one transition out of pending (none of
		// the burst's goes further): the acknowledged final state, if
		// any, is the one stored.
		var final *invitations.Invitation
		for i := range states {
			if states[i].Status != invitations.StatusPending {
				if final != nil && !same(*final, states[i]) {
					t.Errorf("invitation %s acknowledged as %s and as %s", id, final.Status, states[i].Status)
				}
				final = &states[i]
			}
		}
		switch {
		case final != nil:
			transitions++
			if !same(got, *final) {
				t.Errorf("invitation %s acknowledged as %+v, stored as %+v", id, *final, got)
			}
		case same(got, states[0]):
		default:
			// Pending was acknowledged; a transition that was cut
			// short may have committed, and nothing else.
			cut := false
			for _, st := range log.inFlight[id] {
				cut = cut || st == got.Status
			}
			p := states[0]
			if !cut || got.Room != p.Room || got.User != p.User || got.Host != p.Host ||
				!got.CreatedAt.Equal(p.CreatedAt) || !got.ExpiresAt.Equal(p.ExpiresAt) || got.UpdatedAt.Before(p.UpdatedAt) {
				t.Errorf("invitation %s acknowledged as %+v (then %v sent, unanswered), stored as %+v", id, p, log.inFlight[id], got)
			}
		}
	}
	if transitions == 0 {
		t.Error("no transition was acknowledged: the burst tested creates only")
	}
	// Nothing is corrupt: every stored invitation is one the burst could
	// have made, and at most one is pending or accepted per room and user.
	open := map[string]int{}
	for id, inv := range stored {
		if !inv.Status.Valid() || !strings.HasPrefix(inv.Room, "crash-r") || inv.Host != "host"+strings.TrimPrefix(inv.Room, "crash-r") ||
			!strings.HasPrefix(inv.User, "user") || inv.CreatedAt.IsZero() || inv.UpdatedAt.Before(inv.CreatedAt) {
			t.Errorf("stored invitation %s is not one the burst could make: %+v", id, inv)
		}
		if inv.Status == invitations.StatusPending || inv.Status == invitations.StatusAccepted {
			k := inv.Room + "/" + inv.User + "/" + string(inv.Status)
			if open[k]++; open[k] > 1 {
				t.Errorf("two %s invitations of %s in %s", inv.Status, inv.User, inv.Room)
			}
		}
	}
	t.Logf("%d invitations acknowledged (%d with a transition), %d stored", len(log.acked), transitions, len(stored))
}

// apiRaw calls the HTTP API as admin and returns the raw body.
func apiRaw(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	tok, _ := signaling.NewTokens([]byte(restartSecret)).Issue(signaling.TokenSpec{Identity: "admin", Admin: true, TTL: time.Hour})
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
