package web_test

import (
	"regexp"
	"testing"
	"time"
)

// A studio reloaded mid-broadcast resumes (protocol 1.1 §5): alice is
// live, bob watches; alice's tab reloads; her studio says "Reconnecting…
// (N s left)" and goes live again by itself with its kept session
// (resumed: true, the same session id); bob's page sees no
// participant.left, keeps alice's tile, and decodes new frames after it.
func TestBrowserStudioReloadResumes(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)
	host := goLive(t, b, st, "studio", "alice", "show")
	viewer := b.open("watch", st.URL+"/watch?room=show&identity=bob")
	viewer.waitDecoding("alice", 10*time.Second)
	viewer.must(`app.left = []; app.client.on("participant.left", (e) => app.left.push(e.participant.identity));
		app.tileBefore = document.querySelector('` + tile("alice", "host") + `')`)
	session, err := eval[string](host, `app.client.sessionId`)
	if err != nil || session == "" {
		t.Fatalf("the studio's session id: %q, %v", session, err)
	}

	host.must(`location.reload()`)
	// The page starts over: it finds its kept session and says so while it resumes.
	host.waitFor(`"Reconnecting… (N s left)"`, `/^Reconnecting… \(\d+ s left\)$/.test(document.getElementById("notice").textContent) || (window.app && app.client && app.client.resumed)`, 10*time.Second)
	host.waitFor("the studio live again", `app.resumeFellBack || (app.client && app.client.resumed === true && app.client.connectionState === "connected" &&
		document.getElementById("status").dataset.status === "live" && !document.getElementById("end-stream").disabled)`, 15*time.Second)
	if fell, _ := eval[string](host, `app.resumeFellBack || ""`); fell != "" {
		// The server takes the reloaded page's new PeerConnections for
		// the held session: a fresh join is a failure.
		t.Fatalf("the reloaded studio fell back to a fresh join: %s", fell)
	}
	if got, _ := eval[string](host, `app.client.sessionId`); got != session {
		t.Errorf("after the reload the session is %q, want %q (resumed)", got, session)
	}
	host.waitFor("the reconnect notice gone", `document.getElementById("notice").hidden`, 5*time.Second)

	before := viewer.framesDecoded("alice")
	viewer.waitFor("new frames of alice after the reload", `await (async () => {
		const s = await app.client.videoStats();
		return s.filter(x => x.participant === "alice").reduce((a, x) => a + x.framesDecoded, 0) > `+itoa(&before)+` + 20 })()`, 15*time.Second)
	viewer.waitDecoding("alice", 5*time.Second)
	if left, _ := eval[[]string](viewer, `app.left`); len(left) != 0 {
		t.Errorf("the viewer saw participant.left for %v during the reload", left)
	}
	if same, _ := eval[bool](viewer, `document.querySelector('`+tile("alice", "host")+`') === app.tileBefore`); !same {
		t.Errorf("the viewer's tile of alice was replaced during the reload")
	}
	viewer.snapshot("watch-after-reload")
}

// A viewer's reload never leaves it without video: its page resumes the
// session it kept (protocol 1.1), or, when the media does not come back
// to the reloaded page's new PeerConnection in time, starts afresh; either
// way alice's video plays again within seconds.
func TestBrowserWatchReload(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)
	goLive(t, b, st, "studio", "alice", "show")
	viewer := b.open("watch", st.URL+"/watch?room=show&identity=bob")
	viewer.waitDecoding("alice", 10*time.Second)
	session, _ := eval[string](viewer, `app.client.sessionId`)
	viewer.must(`location.reload()`)
	time.Sleep(500 * time.Millisecond)
	viewer.waitFor("alice's video after the reload", `document.querySelector('`+tile("alice", "host")+` video')?.videoWidth > 0`, 15*time.Second)
	viewer.waitDecoding("alice", 15*time.Second)
	how, _ := eval[string](viewer, `JSON.stringify({ resumed: app.client.resumed, sessionId: app.client.sessionId })`)
	t.Logf("after the reload (session before: %s): %s", session, how)
	viewer.waitFor("no reconnect notice left", `!document.getElementById("notice").dataset.reconnecting`, 5*time.Second)
}

// A studio whose socket is lost resumes its session (protocol 1.1 §5):
// "Reconnecting… (N s left)" while the server holds it, then the same
// session on a new socket with the same publisher PeerConnection (an ICE
// restart, no republish); the viewer sees no participant.left, keeps the
// tile and the same track, and decodes on.
func TestBrowserStudioResumesAfterSocketLoss(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)
	host := goLive(t, b, st, "studio", "alice", "show")
	viewer := b.open("watch", st.URL+"/watch?room=show&identity=bob")
	viewer.waitDecoding("alice", 10*time.Second)
	viewer.must(`app.left = []; app.client.on("participant.left", (e) => app.left.push(e.participant.identity));
		app.tileBefore = document.querySelector('` + tile("alice", "host") + `');
		app.videoBefore = [...app.client.tracks.values()].find(t => t.kind === "video").id`)
	host.must(`app.pcBefore = app.client._pub; app.sessionBefore = app.client.sessionId; app.notices = [];
		new MutationObserver(() => app.notices.push(document.getElementById("notice").textContent)).observe(document.getElementById("notice"), { childList: true, characterData: true, subtree: true })`)

	// The network drops the socket (no close frame reaches the server in
	// time; the server holds the session).
	host.must(`app.client._ws.close(4000, "test: socket lost")`)
	host.waitFor("the studio resumed", `app.client.connectionState === "connected" && app.client.resumed === true`, 15*time.Second)
	if notices, _ := eval[[]string](host, `app.notices`); !containsMatch(notices, `^Reconnecting… \(\d+ s left\)$`) {
		t.Errorf("the studio's notices during the loss: %q; want \"Reconnecting… (N s left)\"", notices)
	}
	if same, _ := eval[bool](host, `app.client._pub === app.pcBefore && app.client.sessionId === app.sessionBefore`); !same {
		t.Errorf("after the resume the studio has another publisher PeerConnection or session")
	}
	host.waitFor("status LIVE", `document.getElementById("status").dataset.status === "live" && document.getElementById("notice").hidden`, 10*time.Second)
	before := viewer.framesDecoded("alice")
	viewer.waitFor("frames after the resume", `await (async () => (await app.client.videoStats()).filter(x => x.participant === "alice").reduce((a, x) => a + x.framesDecoded, 0) > `+itoa(&before)+` + 20)()`, 15*time.Second)
	if left, _ := eval[[]string](viewer, `app.left`); len(left) != 0 {
		t.Errorf("the viewer saw participant.left for %v", left)
	}
	if same, _ := eval[bool](viewer, `document.querySelector('`+tile("alice", "host")+`') === app.tileBefore && app.client.tracks.has(app.videoBefore)`); !same {
		t.Errorf("the viewer's tile or alice's track changed across the resume")
	}
}

func containsMatch(list []string, re string) bool {
	r := regexp.MustCompile(re)
	for _, s := range list {
		if r.MatchString(s) {
			return true
		}
	}
	return false
}
