package web_test

import (
	"encoding/json"
	"testing"
	"time"
)

// chatItem is the selector of the chat messages from identity on a page.
func chatItem(identity string) string {
	return `#chat-panel .chat-list li[data-from="` + identity + `"]`
}

// Chat through the pages. The host says hello before anyone watches; a
// viewer joins late and sees it (history). The viewer types a message with
// markup in it: the studio shows it as text, with its sender. The host
// clicks "Invite to stage" on that message and the viewer's page shows the
// invitation banner (host and room) at once; the viewer accepts, goes on
// stage, and the studio shows its video. The host deletes the message (it
// goes from the viewer's page too), then kicks and bans the viewer from its
// next message: the viewer's page says it was removed, does not reconnect,
// and a reload is refused.
func TestBrowserChatInvite(t *testing.T) {
	st := newStack(t)
	b := newBrowser(t)

	host := goLive(t, b, st, "studio", "alice", "show")
	host.waitFor("the chat open", `!document.getElementById("chat-input").disabled`, 5*time.Second)
	host.fill("#chat-input", "Welcome, everyone!")
	host.click("#chat-send")
	host.waitFor("the host's own message", `document.querySelector('`+chatItem("alice")+` .chat-text')?.textContent === "Welcome, everyone!"`, 5*time.Second)

	viewer := b.open("watch", st.URL+"/watch?room=show&identity=bob")
	viewer.waitFor("the history (the host's message)", `document.querySelector('`+chatItem("alice")+` .chat-text')?.textContent === "Welcome, everyone!"`, 10*time.Second)
	viewer.waitFor("the chat open", `!document.getElementById("chat-input").disabled`, 5*time.Second)

	// Text is sent and shown as typed: markup stays characters.
	const text = `Hi <b>alice</b>, can I join? <img src=x onerror="window.pwned=1">`
	viewer.fill("#chat-input", text)
	viewer.click("#chat-send")
	viewer.waitFor("its own message, input cleared", `document.querySelector('`+chatItem("bob")+`.self') && document.getElementById("chat-input").value === ""`, 5*time.Second)

	host.waitFor("bob's message with its sender",
		`(() => { const li = document.querySelector('`+chatItem("bob")+`');
		  return li && li.querySelector(".from").textContent === "bob" && li.dataset.role === "viewer" &&
		    li.querySelector(".chat-text").textContent === `+jsString(text)+` })()`, 5*time.Second)
	host.must(`const li = document.querySelector('` + chatItem("bob") + `');
		if (li.querySelector("b, img")) throw new Error("the message text was parsed as markup");
		if (window.pwned) throw new Error("the message text ran")`)

	// Invite to stage, from the message.
	host.click(chatItem("bob") + ` [data-invite="bob"]`)
	host.waitFor("bob's pending invitation, the button now says Invited",
		`document.querySelector('#invitations li[data-user="bob"][data-status="pending"]') &&
		 document.querySelector('`+chatItem("bob")+` [data-invite="bob"]').textContent === "Invited"`, 5*time.Second)
	viewer.waitFor("the invitation banner (host alice, room show)",
		`(() => { const b = document.querySelector('#invites .banner[data-status="pending"][data-room="show"][data-host="alice"]');
		  return b && b.textContent.includes("alice") && b.textContent.includes("show") && b.querySelector("[data-accept]") && b.querySelector("[data-reject]") })()`, 5*time.Second)
	viewer.snapshot("watch-invited")
	host.snapshot("studio-chat")

	// Accept, go on stage: the studio shows bob's video.
	viewer.click(`#invites .banner[data-status="pending"] [data-accept]`)
	viewer.waitFor("the Go on stage button", `document.querySelector('#invites .banner[data-status="accepted"] [data-go-on-stage]') && app.client.participant.role === "cohost"`, 5*time.Second)
	viewer.click(`#invites [data-go-on-stage]`)
	viewer.waitFor("its camera on stage", `!document.getElementById("self-wrap").hidden && document.querySelector("#invites [data-leave-stage]")`, 10*time.Second)
	// The stage is below the fold of the 1280x860 window: a tile off
	// screen asks the server to pause its video (track.settings), so the
	// host scrolls to it, as a person would, and its video starts.
	host.must(`document.getElementById("stage").scrollIntoView()`)
	host.waitFor("bob's video on the studio's stage", `document.querySelector('#stage .tile[data-identity="bob"][data-role="cohost"] video')?.videoWidth > 0`, 10*time.Second)
	host.waitFor("bob's invitation accepted", `document.querySelector('#invitations li[data-user="bob"][data-status="accepted"]')`, 5*time.Second)

	// Delete: gone on both pages.
	viewer.fill("#chat-input", "I'm on!")
	viewer.click("#chat-send")
	host.waitFor("bob's second message", `document.querySelectorAll('`+chatItem("bob")+`').length === 2`, 5*time.Second)
	host.click(chatItem("bob") + ` [data-delete]`)
	host.waitFor("the first message deleted", `document.querySelectorAll('`+chatItem("bob")+`').length === 1`, 5*time.Second)
	viewer.waitFor("the first message gone", `(() => { const l = document.querySelectorAll('`+chatItem("bob")+` .chat-text');
		  return l.length === 1 && l[0].textContent === "I'm on!" })()`, 5*time.Second)

	// Kick and ban, from the second message (with a confirmation).
	host.click(chatItem("bob") + ` [data-kick="bob"]`)
	host.click(chatItem("bob") + ` [data-ban="bob"]`)
	viewer.waitFor(`"You were removed from this room"`,
		`!document.getElementById("kicked").hidden && document.getElementById("kicked").textContent.includes("You were removed from this room") &&
		 app.client.kicked && app.client.connectionState === "disconnected" && document.getElementById("chat-input").disabled`, 5*time.Second)
	host.waitFor("bob off the stage", `!document.querySelector('#stage .tile[data-identity="bob"]') &&
		document.querySelector('#invitations li[data-user="bob"][data-status="removed"]')`, 5*time.Second)
	time.Sleep(700 * time.Millisecond) // a reconnect would start after 0.25-0.5 s
	viewer.waitFor("no reconnect", `app.client.connectionState === "disconnected" && !document.querySelector("#tiles .tile[data-identity]")`, time.Second)
	viewer.snapshot("watch-kicked")

	// Banned: a reload is refused, and said so.
	viewer.must(`setTimeout(() => location.reload(), 0)`)
	time.Sleep(300 * time.Millisecond)
	viewer.waitFor("the ban on reload", `!document.getElementById("kicked").hidden && document.getElementById("kicked-detail").textContent.includes("when it ends")`, 10*time.Second)
}

// jsString quotes s as a JavaScript string literal (JSON is one).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
