package web_test

import (
	"net/http"
	"testing"
	"time"
)

// framesStop checks that p decodes no new frame of identity's video for a
// while (what was in flight decoded first).
func framesStop(t *testing.T, p *page, identity string) {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	before := p.framesDecoded(identity)
	time.Sleep(time.Second)
	if after := p.framesDecoded(identity); after != before {
		t.Fatalf("%s: %d frames of %s decoded while it should be stopped", p.name, after-before, identity)
	}
}

// A paused relay shown as paused in the destination's watch page, for
// real (protocol 1.1 §8): alice relays her studio into "second" (bea
// invited her), where dan watches; alice clicks Pause in her relay panel:
// dan's relay tile says "Paused by the host" and its video stops; she
// clicks Resume: the tile plays again.
func TestBrowserRelayPaused(t *testing.T) {
	st := newStack(t)
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

	host.waitFor("room second in the relay panel", `document.querySelector('#dest-list input[value="second"]')`, 6*time.Second)
	host.click(`#dest-list input[value="second"]`)
	host.click("#relay-start")
	host.waitFor("relay running", `document.getElementById("relay-state").dataset.status === "running"`, 10*time.Second)
	relayTile := `document.querySelector('` + tile("alice", "relay") + `')`
	viewer.waitFor("alice's relay tile", relayTile+`?.querySelector("video").videoWidth > 0`, 30*time.Second) // 15 s was not enough on a loaded CI machine once
	viewer.waitDecoding("alice", 10*time.Second)
	if paused, _ := eval[bool](viewer, relayTile+`.dataset.paused !== undefined`); paused {
		t.Fatal("the relay tile says paused before any pause")
	}

	host.waitFor("Pause enabled", `!document.getElementById("relay-pause").disabled`, 5*time.Second)
	host.click("#relay-pause")
	viewer.waitFor(`"Paused by the host" on the relay tile`, `(() => { const t = `+relayTile+`;
		return t.dataset.paused === "relay_paused" && !t.querySelector(".paused").hidden && t.querySelector(".paused").textContent === "Paused by the host" })()`, 3*time.Second)
	viewer.snapshot("watch-second-paused")
	framesStop(t, viewer, "alice")

	host.waitFor("Resume enabled", `!document.getElementById("relay-resume").disabled`, 5*time.Second)
	host.click("#relay-resume")
	viewer.waitFor("the relay tile playing again", `(() => { const t = `+relayTile+`;
		return t.dataset.paused === undefined && t.querySelector(".paused").hidden })()`, 5*time.Second)
	viewer.waitDecoding("alice", 10*time.Second)
	viewer.snapshot("watch-second-resumed")
}

// Mute from the studio (protocol 1.1 track.mute): alice turns her camera
// off: bob's tile says "Camera off" and its video stops; she turns it on:
// it plays again; she mutes her microphone: "Mic off" by her name. An
// operator mutes her camera over HTTP: her studio says so and offers to
// turn it back on.
func TestBrowserMute(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)
	host := goLive(t, b, st, "studio", "alice", "show")
	viewer := b.open("watch", st.URL+"/watch?room=show&identity=bob")
	viewer.waitDecoding("alice", 10*time.Second)
	hostTile := `document.querySelector('` + tile("alice", "host") + `')`

	host.waitFor("the mute buttons", `!document.getElementById("mute-video").disabled && !document.getElementById("mute-audio").disabled`, 5*time.Second)
	host.click("#mute-video")
	host.waitFor(`"Turn camera on"`, `document.getElementById("mute-video").dataset.muted === "true" && document.getElementById("mute-video").textContent === "Turn camera on"`, 3*time.Second)
	viewer.waitFor(`"Camera off" on alice's tile`, `(() => { const t = `+hostTile+`;
		return t.dataset.muted === "video" && !t.querySelector(".cam-off").hidden && t.querySelector(".cam-off").textContent === "Camera off" })()`, 3*time.Second)
	viewer.snapshot("watch-camera-off")
	framesStop(t, viewer, "alice")

	host.click("#mute-video")
	viewer.waitFor("alice's tile without Camera off", hostTile+`.dataset.muted === undefined && `+hostTile+`.querySelector(".cam-off").hidden`, 3*time.Second)
	viewer.waitDecoding("alice", 10*time.Second)

	host.waitFor("Mute mic enabled", `!document.getElementById("mute-audio").disabled`, 3*time.Second)
	host.click("#mute-audio")
	viewer.waitFor(`"Mic off" by alice's name`, `(() => { const t = `+hostTile+`;
		return t.dataset.muted === "audio" && !t.querySelector(".badge.mute").hidden && t.querySelector(".badge.mute").textContent === "Mic off" })()`, 3*time.Second)
	host.click("#mute-audio")
	viewer.waitFor("alice's tile unmuted", hostTile+`.dataset.muted === undefined`, 3*time.Second)

	if code := adminPost(t, st, "/v1/rooms/show/participants/alice/mute", `{"kind":"video"}`); code != http.StatusOK {
		t.Fatalf("admin mute: %d", code)
	}
	host.waitFor("the operator's mute said in the studio", `document.getElementById("mute-note").textContent.includes("An operator muted your camera") &&
		document.getElementById("mute-video").textContent === "Turn camera on"`, 3*time.Second)
	viewer.waitFor(`"Camera off" after the operator's mute`, hostTile+`.dataset.muted === "video"`, 3*time.Second)
	host.snapshot("studio-muted-by-operator")
	host.click("#mute-video")
	viewer.waitFor("alice's camera back", hostTile+`.dataset.muted === undefined`, 3*time.Second)
	viewer.waitDecoding("alice", 10*time.Second)
}
