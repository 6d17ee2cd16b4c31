package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaysfu/relayd/signaling"
)

// adminPost POSTs body to the stack's HTTP API with an admin token and
// returns the status.
func adminPost(t *testing.T, st *stack, path, body string) int {
	t.Helper()
	tok, err := st.Tokens.Issue(signaling.TokenSpec{Identity: "ops", Admin: true, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", st.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// endedSays is a JS condition: the watch page's "Stream ended" overlay is
// shown and its detail contains words.
func endedSays(words string) string {
	return `!document.getElementById("ended").hidden && document.getElementById("ended-detail").textContent.includes(` + jsString(words) + `)`
}

// A viewer is told why a stream ended, in words: the host ended it (room
// .stop), or an operator stopped it (POST /v1/rooms/{room}/stop); the
// studio says it from the host's side. The watcher count follows joins
// ("2 watching"), and after the end no count is left ("2 watching" stayed
// before), and the overlay is opaque (the
// waiting text showed through it). A viewer who comes after the end is
// told the same reason.
func TestBrowserEndReason(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)

	host := goLive(t, b, st, "studio", "alice", "show")
	viewer := b.open("watch", st.URL+"/watch?room=show&identity=bob")
	viewer.waitFor("status LIVE", `document.getElementById("room-status").dataset.status === "live"`, 10*time.Second)
	// A second viewer: the room.updated "ended" counts 2 viewers (the page
	// showed "2 watching" on an ended stream).
	b.open("watch-2", st.URL+"/watch?room=show&identity=carl").waitFor("status LIVE", `document.getElementById("room-status").dataset.status === "live"`, 10*time.Second)
	viewer.waitFor("the count kept live: 2 watching", `document.getElementById("room-viewers").textContent === "2 watching"`, 5*time.Second)

	host.click("#end-stream")
	viewer.waitFor(`"host ended"`, endedSays("host ended"), 5*time.Second)
	host.waitFor("the studio's reason", `!document.getElementById("ended").hidden && document.getElementById("ended-detail").textContent.includes("You ended the stream")`, 5*time.Second)
	viewer.waitFor("no watcher count after the end", `document.getElementById("room-viewers").textContent === "" && document.getElementById("room-status").dataset.status === "ended"`, 2*time.Second)
	viewer.must(`const bg = getComputedStyle(document.getElementById("ended")).backgroundColor;
		if (!/^rgb\(\d+, \d+, \d+\)$/.test(bg)) throw new Error("the overlay is not opaque: " + bg)`)
	viewer.snapshot("watch-ended-host")

	// Late: the room has ended before this page joins (4009).
	late := b.open("watch-late", st.URL+"/watch?room=show&identity=dora")
	late.waitFor(`"host ended" for a late viewer`, endedSays("host ended"), 10*time.Second)

	// An operator stops the next stream.
	host2 := goLive(t, b, st, "studio-second", "bea", "second")
	viewer2 := b.open("watch-second", st.URL+"/watch?room=second&identity=dan")
	viewer2.waitDecoding("bea", 10*time.Second)
	if code := adminPost(t, st, "/v1/rooms/second/stop", ""); code != http.StatusOK {
		t.Fatalf("POST /v1/rooms/second/stop: %d", code)
	}
	viewer2.waitFor(`"stopped by an operator"`, endedSays("stopped by an operator"), 5*time.Second)
	host2.waitFor("the studio's reason", `!document.getElementById("ended").hidden && document.getElementById("ended-detail").textContent.includes("An operator stopped your stream")`, 5*time.Second)
	viewer2.snapshot("watch-ended-admin")
}
