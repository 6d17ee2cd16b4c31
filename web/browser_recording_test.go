package web_test

import (
	"testing"
	"time"
)

// A recorded stream: the host ticks "Record" and goes live (room.record),
// and the studio shows REC; a viewer watching sees REC too (the room
// object says recording). After the end the viewer gets "Watch the
// recording", which lists the recordings with its room token (GET
// /v1/rooms/{room}/recordings) and plays the host's WebM in the page.
func TestBrowserRecordingPlays(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)

	host := b.open("studio", st.URL+"/studio?identity=alice&room=rec")
	host.waitFor("the camera preview", `!document.getElementById("go-live").disabled && document.getElementById("preview").videoWidth > 0`, 10*time.Second)
	host.click("#record")
	host.click("#go-live")
	host.waitFor("status LIVE", `document.getElementById("status").dataset.status === "live"`, 10*time.Second)
	host.waitFor("REC in the studio, the switch on",
		`!document.getElementById("rec-badge").hidden && document.getElementById("record").checked &&
		 !document.getElementById("record").disabled && app.client.room.recording === true`, 5*time.Second)
	host.snapshot("studio-recording")

	viewer := b.open("watch", st.URL+"/watch?room=rec&identity=bob")
	viewer.waitDecoding("alice", 10*time.Second)
	viewer.waitFor("REC for the viewer", `!document.getElementById("rec-badge").hidden && app.client.room.recording === true`, 5*time.Second)
	time.Sleep(2 * time.Second) // a couple of seconds of media in the file
	host.click("#end-stream")
	viewer.waitFor(`"host ended"`, endedSays("host ended"), 5*time.Second)
	viewer.waitFor("no REC after the end", `document.getElementById("rec-badge").hidden`, time.Second)
	viewer.waitFor(`"Watch the recording"`, `!document.getElementById("watch-recording").hidden`, 20*time.Second)
	viewer.snapshot("watch-ended-recorded")

	viewer.click("#watch-recording")
	viewer.waitFor("the host's recording playing in the page",
		`(() => { const v = document.getElementById("playback-video");
		  return !document.getElementById("playback").hidden && document.getElementById("ended").hidden &&
		    v.src.includes("/v1/rooms/rec/recordings/alice-") && v.src.includes("token=") &&
		    v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0.5 })()`, 15*time.Second)
	viewer.snapshot("watch-recording-playing")
}

// A host goes live, ends, reloads the studio and goes live again in the
// same room: its next broadcast (a new broadcastId), which a viewer
// watches; then once more with the studio's "Go live again".
func TestBrowserGoLiveAgainInTheSameRoom(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)
	host := goLive(t, b, st, "studio", "alice", "again")
	first, _ := eval[string](host, `app.client.room.broadcastId`)
	viewer := b.open("watch", st.URL+"/watch?room=again&identity=bob")
	viewer.waitDecoding("alice", 10*time.Second)
	host.click("#end-stream")
	host.waitFor("the end", `!document.getElementById("ended").hidden`, 5*time.Second)
	viewer.waitFor(`"host ended"`, endedSays("host ended"), 5*time.Second)

	// Reload the studio and go live again.
	host.must(`location.reload()`)
	host.waitFor("the camera preview", `!document.getElementById("go-live").disabled && document.getElementById("preview").videoWidth > 0`, 10*time.Second)
	host.click("#go-live")
	host.waitFor("live again in the same room",
		`document.getElementById("status").dataset.status === "live" && app.client.room.name === "again" &&
		 app.client.version === "1.1" && document.getElementById("ended").hidden`, 10*time.Second)
	second, _ := eval[string](host, `app.client.room.broadcastId`)
	if second == "" || second == first {
		t.Fatalf("broadcast %q after %q: want a new one", second, first)
	}
	viewer2 := b.open("watch", st.URL+"/watch?room=again&identity=carol")
	viewer2.waitDecoding("alice", 10*time.Second)
	viewer2.waitFor("the new broadcast, live", `app.client.room.broadcastId === "`+second+`" && app.client.room.status === "live"`, 5*time.Second)
	host.snapshot("studio-live-again")

	// Once more, with the button.
	host.click("#end-stream")
	host.waitFor("the end", `!document.getElementById("ended").hidden`, 5*time.Second)
	host.click("#go-live-again")
	host.waitFor("live a third time",
		`document.getElementById("status").dataset.status === "live" && app.client.room.name === "again" &&
		 app.client.room.broadcastId !== "`+second+`" && document.getElementById("ended").hidden`, 15*time.Second)
	viewer3 := b.open("watch", st.URL+"/watch?room=again&identity=dan")
	viewer3.waitDecoding("alice", 10*time.Second)
}
