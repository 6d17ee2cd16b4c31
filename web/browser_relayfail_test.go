package web_test

import (
	"net/http"
	"testing"
	"time"
)

// destRow is a JS expression: the relay panel's row of a destination room.
func destRow(room string) string {
	return `document.querySelector('#relay-dests tbody tr[data-room="` + room + `"]')`
}

// rowSays is a JS condition: room's row has that state, and the reason
// shown under it contains words ("": no reason shown).
func rowSays(room, state, words string) string {
	r := destRow(room)
	reason := `document.querySelector('#relay-dests tbody tr[data-reason-for="` + room + `"] .reason')`
	if words == "" {
		return `(` + r + `?.dataset.state === "` + state + `" && !` + reason + `)`
	}
	return `(` + r + `?.dataset.state === "` + state + `" && (` + reason + `?.textContent || "").includes(` + jsString(words) + `))`
}

// The relay panel says why a destination failed, next to its code, and
// its rows stay true: alice relays into four rooms, of which only
// "second" takes her (bea invited her, she accepted). "nowhere" does not
// exist, "over" has ended, and in "third" nobody invited her: each row
// says failure (3), failed_join_dest (5) and why in words, none is left
// "connecting" while the relay runs into "second", nor after the stop.
// In "second" the relayed tile shows "Paused by the host" on a track.stream
// paused (protocol 1.1 §8), given to the page as the server sends it
// (TestBrowserRelayPaused has the server send it, for a real relay.pause).
func TestBrowserRelayFailure(t *testing.T) {
	st := newStack(t)
	if code := adminPost(t, st, "/v1/rooms", `{"name":"third","host":"carl"}`); code != http.StatusCreated {
		t.Fatalf("POST /v1/rooms third: %d", code)
	}
	if code := adminPost(t, st, "/v1/rooms", `{"name":"over","host":"dave"}`); code != http.StatusCreated {
		t.Fatalf("POST /v1/rooms over: %d", code)
	}
	if code := adminPost(t, st, "/v1/rooms/over/stop", ""); code != http.StatusOK {
		t.Fatalf("POST /v1/rooms/over/stop: %d", code)
	}
	b := newBrowser(t)

	host := goLive(t, b, st, "studio", "alice", "show")
	second := goLive(t, b, st, "studio-second", "bea", "second")
	second.fill("#invite-user", "alice")
	second.click("#invite-btn")
	inbox := b.open("cohost", st.URL+"/cohost?identity=alice")
	inbox.waitFor("the invitation banner", `document.querySelector('.banner[data-status="pending"][data-room="second"]')`, 5*time.Second)
	inbox.click(`.banner[data-status="pending"][data-room="second"] [data-accept]`)
	second.waitFor("alice's invitation accepted", `document.querySelector('#invitations li[data-user="alice"][data-status="accepted"]')`, 5*time.Second)
	viewer := b.open("watch-second", st.URL+"/watch?room=second&identity=dan")

	host.waitFor("rooms second and third in the relay panel", `document.querySelector('#dest-list input[value="second"]') && document.querySelector('#dest-list input[value="third"]')`, 6*time.Second)
	host.click(`#dest-list input[value="second"]`)
	host.click(`#dest-list input[value="third"]`)
	for _, name := range []string{"nowhere", "over"} {
		host.fill("#dest-custom", name)
		host.click("#dest-add")
	}
	host.waitFor("four destinations picked", `document.querySelectorAll('#dest-list input:checked').length === 4`, 2*time.Second)
	host.click("#relay-start")
	host.waitFor("relay running", `document.getElementById("relay-state").dataset.status === "running"`, 10*time.Second)
	host.waitFor("each row true, with its reason in words",
		rowSays("second", "running", "")+` && `+
			rowSays("nowhere", "failure", "no such room")+` && `+
			rowSays("over", "failure", "room over has ended")+` && `+
			rowSays("third", "failure", "no accepted invitation: carl, the host of third, must invite alice")+` && `+
			destRow("third")+`.textContent.includes("failed_join_dest (5)")`, 10*time.Second)
	host.waitFor("the reasons in the log too", `document.getElementById("relay-log").textContent.includes("room nowhere: failed_join_dest (5): no such room")`, 2*time.Second)
	host.snapshot("studio-relay-failures")

	viewer.waitFor("alice's relay tile", `document.querySelector('`+tile("alice", "relay")+` video')?.videoWidth > 0`, 15*time.Second)
	viewer.waitDecoding("alice", 10*time.Second)

	// A paused relay, as a 1.1 server tells the destination's viewers.
	viewer.must(`const e = [...app.client.remoteTracks.values()].find((e) => e.participant.role === "relay" && e.mediaTrack.kind === "video");
		app.client._onNotification("track.stream", { trackId: e.trackId, state: "paused", reason: "relay_paused", seq: 9 })`)
	viewer.waitFor(`"Paused by the host" on the relay tile`, `(() => { const t = document.querySelector('`+tile("alice", "relay")+`');
		return t.dataset.paused === "relay_paused" && !t.querySelector(".paused").hidden && t.querySelector(".paused").textContent === "Paused by the host" })()`, 2*time.Second)
	viewer.snapshot("watch-second-paused")
	viewer.must(`const e = [...app.client.remoteTracks.values()].find((e) => e.participant.role === "relay" && e.mediaTrack.kind === "video");
		app.client._onNotification("track.stream", { trackId: e.trackId, state: "active", reason: "relay_paused", seq: 10 })`)
	viewer.waitFor("the tile active again", `(() => { const t = document.querySelector('`+tile("alice", "relay")+`');
		return !t.dataset.paused && t.querySelector(".paused").hidden })()`, 2*time.Second)

	host.click("#relay-stop")
	host.waitFor("relay idle, no row connecting, the failures still said",
		`document.getElementById("relay-state").dataset.status === "idle" &&
		 ![...document.querySelectorAll("#relay-dests tbody tr")].some((r) => r.dataset.state === "connecting") &&
		 `+rowSays("second", "idle", "")+` && `+rowSays("nowhere", "failure", "no such room"), 5*time.Second)
	viewer.waitFor("the relay tile to go", `!document.querySelector('`+tile("alice", "relay")+`')`, 10*time.Second)
	host.snapshot("studio-relay-stopped")
}
