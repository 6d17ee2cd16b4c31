package web_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/sfu"
)

// End-to-end tests in headless Chromium (fake camera and microphone),
// through the demo pages and the JS client, against the real stack.

// goLive opens the studio as identity in room and goes live.
func goLive(t *testing.T, b *browser, st *stack, name, identity, room string) *page {
	t.Helper()
	host := b.open(name, st.URL+"/studio?identity="+identity+"&room="+room)
	host.waitFor("the camera preview", `!document.getElementById("go-live").disabled && document.getElementById("preview").videoWidth > 0`, 10*time.Second)
	host.click("#go-live")
	host.waitFor("status LIVE", `document.getElementById("status").dataset.status === "live"`, 10*time.Second)
	return host
}

// tile is the selector of a participant's tile on the watch page.
func tile(identity, role string) string {
	return `#tiles .tile[data-identity="` + identity + `"][data-role="` + role + `"]`
}

// A host goes live from the studio, a viewer's page decodes the video, the
// lobby lists the room as live with its viewer. The host's socket drops:
// the viewer sees "host reconnecting" (waiting_reconnect), the client
// reconnects and resumes its session (protocol 1.1), and the viewer
// decodes new frames. The host ends the stream and the viewer's page
// says so.
func TestBrowserGoLiveWatchEnd(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)

	host := goLive(t, b, st, "studio", "alice", "show")
	viewer := b.open("watch", st.URL+"/watch?room=show&identity=bob")
	viewer.waitFor("alice's tile", `document.querySelector('`+tile("alice", "host")+` video')?.videoWidth > 0`, 10*time.Second)
	viewer.waitDecoding("alice", 10*time.Second)
	viewer.waitFor("status LIVE", `document.getElementById("room-status").dataset.status === "live"`, 5*time.Second)
	// Debug info: how the media travels (here, on loopback: UDP), on the
	// viewer's tiles and the studio's status badge.
	viewer.waitFor("the transport on the tile", `document.querySelector("[data-transport]")?.dataset.transport === "udp" &&
		document.querySelector('`+tile("alice", "host")+` .stat').textContent.includes("UDP")`, 5*time.Second)
	host.waitFor("the transport on the studio's badge", `document.getElementById("status").dataset.transport === "udp"`, 5*time.Second)
	// Chromium decodes what the direct send path encrypted (relayd's own
	// SRTP context, keyed from the DTLS handshake): every subscriber PC
	// on UDP is on it.
	paths := st.SFU.Metrics().SendPaths
	if d, p := testutil.ToFloat64(paths.WithLabelValues("direct")), testutil.ToFloat64(paths.WithLabelValues("pion")); d < 1 || p != 0 {
		t.Errorf("subscriber PCs on the direct send path %v, on pion's %v: want all direct", d, p)
	}

	lobby := b.open("lobby", st.URL+"/")
	lobby.waitFor("the room's LIVE card with 1 viewer",
		`(() => { const c = document.querySelector('.card[data-room="show"]');
		  return c && c.querySelector('.badge.live') && c.querySelector('.viewers').dataset.viewers === "1" })()`, 5*time.Second)
	viewer.snapshot("watch-live")
	lobby.snapshot("lobby-live")

	// Lose the host's socket without a leave, as a network drop would.
	viewer.must(`app.statuses = []; app.client.on("room.status", e => app.statuses.push(e.status))`)
	host.must(`app.client._ws.close(4000, "test: socket lost")`)
	viewer.waitFor("waiting_reconnect then live again", `app.statuses.includes("waiting_reconnect") && app.client.room.status === "live"`, 15*time.Second)
	host.waitFor("the studio live again", `app.client.connectionState === "connected" && document.getElementById("status").dataset.status === "live"`, 10*time.Second)
	viewer.waitFor("alice's tile", `document.querySelector('`+tile("alice", "host")+` video')?.videoWidth > 0`, 10*time.Second)
	// A 1.1 host resumes its session (the same tile; its media comes back
	// once ICE has restarted); a 1.0 one joins and publishes again: new
	// frames either way.
	atResume := viewer.framesDecoded("alice")
	viewer.waitFor("new frames of alice", `await (async () => (await app.client.videoStats()).filter(x => x.participant === "alice").reduce((a, x) => a + x.framesDecoded, 0) > `+itoa(&atResume)+` + 10)()`, 15*time.Second)
	viewer.waitDecoding("alice", 10*time.Second)

	host.click("#end-stream")
	viewer.waitFor(`"Stream ended"`, `!document.getElementById("ended").hidden && document.getElementById("ended").textContent.includes("Stream ended")`, 5*time.Second)
	host.waitFor("the studio's ended state", `!document.getElementById("ended").hidden && document.getElementById("status").dataset.status === "ended"`, 5*time.Second)
	if r := st.SFU.Room("show"); r == nil || r.Status() != sfu.StatusEnded {
		t.Fatalf("room show: want ended on the server")
	}
	viewer.waitFor("the video tile to go", `!document.querySelector('`+tile("alice", "host")+`')`, 5*time.Second)
	lobby.waitFor("the ended room to leave the lobby", `!document.querySelector('.card[data-room="show"]')`, 5*time.Second)
}

// The host invites carol from the studio; carol accepts on the co-host
// page and joins the stage; the viewer sees a second tile and decodes it;
// the host removes carol and her tile goes away.
func TestBrowserCohost(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)

	host := goLive(t, b, st, "studio", "alice", "show")
	viewer := b.open("watch", st.URL+"/watch?room=show&identity=bob")
	viewer.waitDecoding("alice", 10*time.Second)

	cohost := b.open("cohost", st.URL+"/cohost?identity=carol")
	cohost.waitFor("the inbox", `document.getElementById("status").dataset.status === "connected"`, 5*time.Second)

	host.fill("#invite-user", "carol")
	host.click("#invite-btn")
	host.waitFor("carol's pending invitation", `document.querySelector('#invitations li[data-user="carol"][data-status="pending"]')`, 5*time.Second)

	cohost.waitFor("the invitation banner", `document.querySelector('.banner[data-status="pending"][data-room="show"]')?.textContent.includes("alice")`, 5*time.Second)
	cohost.click(`.banner[data-status="pending"][data-room="show"] [data-accept]`)
	host.waitFor("carol's invitation accepted", `document.querySelector('#invitations li[data-user="carol"][data-status="accepted"]')`, 5*time.Second)
	cohost.waitFor("the join-stage button", `document.querySelector('.banner[data-status="accepted"] [data-join="show"]')`, 5*time.Second)
	cohost.click(`.banner[data-status="accepted"] [data-join="show"]`)
	cohost.waitFor("role co-host and the camera on", `document.getElementById("role").dataset.status === "cohost" && !document.getElementById("self-wrap").hidden`, 10*time.Second)

	viewer.waitFor("a second tile (carol)", `document.querySelectorAll("#tiles .tile[data-identity]").length === 2 && document.querySelector('`+tile("carol", "cohost")+` video')?.videoWidth > 0`, 10*time.Second)
	viewer.waitDecoding("carol", 10*time.Second)
	host.waitFor("carol on the studio's stage", `document.querySelector('#stage .tile[data-identity="carol"]')`, 10*time.Second)
	viewer.snapshot("watch-two-tiles")

	// Leave the stage: back to viewer, tile gone.
	cohost.click("#leave-stage")
	cohost.waitFor("role viewer", `document.getElementById("role").dataset.status === "viewer"`, 5*time.Second)
	viewer.waitFor("carol's tile to go", `!document.querySelector('`+tile("carol", "cohost")+`')`, 10*time.Second)
	host.waitFor("carol's invitation left", `document.querySelector('#invitations li[data-user="carol"][data-status="left"]')`, 5*time.Second)
}

// Bea hosts room "second" and invites alice (cross-room co-hosting); alice
// relays her stream from "show" into "second"; a viewer of "second"
// decodes alice's video on a relay tile; stop: the tile goes away.
func TestBrowserRelay(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)

	host := goLive(t, b, st, "studio", "alice", "show")
	second := goLive(t, b, st, "studio-second", "bea", "second")
	// The destination host invites alice, and alice accepts from her inbox:
	// the relayed identity needs an accepted invitation there.
	second.fill("#invite-user", "alice")
	second.click("#invite-btn")
	inbox := b.open("cohost", st.URL+"/cohost?identity=alice")
	inbox.waitFor("the invitation banner", `document.querySelector('.banner[data-status="pending"][data-room="second"]')`, 5*time.Second)
	inbox.click(`.banner[data-status="pending"][data-room="second"] [data-accept]`)
	second.waitFor("alice's invitation accepted", `document.querySelector('#invitations li[data-user="alice"][data-status="accepted"]')`, 5*time.Second)

	viewer := b.open("watch-second", st.URL+"/watch?room=second&identity=dan")
	viewer.waitDecoding("bea", 10*time.Second)

	host.waitFor("room second in the relay panel", `document.querySelector('#dest-list input[value="second"]')`, 6*time.Second)
	host.click(`#dest-list input[value="second"]`)
	host.click("#relay-start")
	host.waitFor("relay running", `document.getElementById("relay-state").dataset.status === "running"`, 10*time.Second)
	host.waitFor("events 3 and 4 for room second in the log",
		`(() => { const t = document.getElementById("relay-log").textContent;
		  return t.includes("joined_dest_channel (3) · room second") && t.includes("sent_to_dest_channel (4) · room second") })()`, 10*time.Second)

	viewer.waitFor("alice's relay tile", `document.querySelector('`+tile("alice", "relay")+` video')?.videoWidth > 0`, 10*time.Second)
	viewer.waitDecoding("alice", 10*time.Second)
	viewer.snapshot("watch-second-relayed")

	host.click("#relay-pause")
	host.waitFor("pause event 12", `document.getElementById("relay-log").textContent.includes("(12)")`, 5*time.Second)
	host.click("#relay-resume")
	host.waitFor("resume event 14", `document.getElementById("relay-log").textContent.includes("(14)")`, 5*time.Second)

	host.click("#relay-stop")
	host.waitFor("relay idle", `document.getElementById("relay-state").dataset.status === "idle"`, 5*time.Second)
	viewer.waitFor("the relay tile to go", `!document.querySelector('`+tile("alice", "relay")+`')`, 10*time.Second)
	viewer.waitFor("bea's tile still there", `document.querySelector('`+tile("bea", "host")+`')`, 2*time.Second)
}
