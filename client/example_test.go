package client_test

// Each example runs against a real relayd started in this process. The
// helpers are in relayd_test.go: start (a server, its Admin and a context),
// connect (what Example shows: a token, Dial, Join) and publish (what
// ExampleClient_Publish shows).

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"time"

	"github.com/relaysfu/relayd/client"
)

// A host joins a room. The admin API mints the token here; in an
// application, its back end mints it for a user it has authenticated.
func Example() {
	baseURL, adminToken, stop := runRelayd()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin := &client.Admin{BaseURL: baseURL, Token: adminToken}
	token, err := admin.CreateToken(ctx, client.TokenRequest{Identity: "alice", Room: "show", Role: "host", Name: "Alice"})
	if err != nil {
		log.Fatal(err)
	}
	// Options{} keeps media on loopback; to reach another machine, set
	// Options.SettingEngine (e.g. to &webrtc.SettingEngine{}).
	c, err := client.Dial(ctx, baseURL, token, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	joined, err := c.Join(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%s) joined %s as %s; the room is %s\n", joined.Participant.Identity,
		joined.Participant.Name, joined.Room.Name, joined.Participant.Role, joined.Room.Status)
	// Output:
	// alice (Alice) joined show as host; the room is idle
}

// A host publishes a synthetic VP8 and Opus source on its publisher
// PeerConnection; its first track takes the room live.
func ExampleClient_Publish() {
	ctx, admin, stop := start()
	defer stop()
	host, _ := connect(ctx, admin, "alice", "show", "host")
	defer host.Close()

	src, err := client.NewSyntheticPublisher(client.PublisherOptions{}) // or any webrtc.TrackLocal
	if err != nil {
		log.Fatal(err)
	}
	defer src.Stop()
	if err := host.Publish(ctx, src.Tracks()...); err != nil {
		log.Fatal(err)
	}
	src.Start()

	ev, err := client.WaitEvent[client.RoomEvent](ctx, host, client.NotifyRoomUpdated, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("room", ev.Room.Name, "is", ev.Room.Status)
	// Output:
	// room show is live
}

// A viewer receives what the host publishes: the server offers its
// subscriber PeerConnection the room's tracks, the client answers, and each
// track arrives as a RemoteTrack whose msid names its publisher and its
// track id.
func ExampleClient_WaitTrack() {
	ctx, admin, stop := start()
	defer stop()
	host, _ := connect(ctx, admin, "alice", "show", "host")
	defer host.Close()
	defer publish(ctx, host, client.PublisherOptions{NoAudio: true}).Stop()
	if _, err := host.WaitNotification(ctx, client.NotifyRoomUpdated, nil); err != nil { // live: the track is in
		log.Fatal(err)
	}

	// The room's tracks come with the join result; those published later,
	// with track.published notifications.
	viewer, joined := connect(ctx, admin, "bob", "show", "viewer")
	defer viewer.Close()
	video, err := viewer.WaitTrack(ctx, "video", nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := waitUntil(ctx, "a keyframe", func() bool { return video.Keyframes() > 0 }); err != nil {
		log.Fatal(err)
	}
	for _, t := range joined.Tracks {
		if t.ID == video.TrackID {
			fmt.Printf("bob receives %s's %s track (%s)\n", video.StreamID, t.Kind, t.Codec)
		}
	}
	fmt.Println("starting at a keyframe:", video.FirstFrameKeyframe())
	// Output:
	// bob receives alice's video track (VP8)
	// starting at a keyframe: true
}

// A host invites a viewer onto the stage; the viewer accepts and becomes a
// co-host, who may publish.
func ExampleClient_CreateInvitation() {
	ctx, admin, stop := start()
	defer stop()
	host, _ := connect(ctx, admin, "alice", "show", "host")
	defer host.Close()
	bob, _ := connect(ctx, admin, "bob", "show", "viewer")
	defer bob.Close()

	inv, err := host.CreateInvitation(ctx, "bob")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice invites", inv.User+":", inv.Status)

	// Every session of the invitee is told, in this room or elsewhere.
	ev, err := client.WaitEvent[client.InvitationEvent](ctx, bob, client.NotifyInvitationUpdated, nil)
	if err != nil {
		log.Fatal(err)
	}
	if inv, err = bob.AcceptInvitation(ctx, ev.Invitation.ID); err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob answers:", inv.Status)

	pe, err := client.WaitEvent[client.ParticipantEvent](ctx, host, client.NotifyParticipantUpdated, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pe.Participant.Identity, "is now a", pe.Participant.Role)

	defer publish(ctx, bob, client.PublisherOptions{NoAudio: true}).Stop()
	te, err := client.WaitEvent[client.TrackEvent](ctx, host, client.NotifyTrackPublished, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("alice sees %s's %s track\n", te.Track.Participant, te.Track.Kind)
	// Output:
	// alice invites bob: pending
	// bob answers: accepted
	// bob is now a cohost
	// alice sees bob's video track
}

// A host relays its stream into another room it hosts, adds a second
// destination, and stops. Viewers there see the relay as a participant with
// role "relay".
func ExampleClient_StartRelay() {
	ctx, admin, stop := start()
	defer stop()
	createRooms(ctx, admin, "alice", "studio", "lounge") // alice hosts both: the relay passes their gate
	host, _ := connect(ctx, admin, "alice", "show", "host")
	defer host.Close()
	defer publish(ctx, host, client.PublisherOptions{}).Stop()
	dave, _ := connect(ctx, admin, "dave", "studio", "viewer")
	defer dave.Close()

	// A destination's token names the identity the stream takes there,
	// which must be that room's host or a co-host there.
	target := func(room string) client.RelayTarget {
		tok, err := admin.CreateToken(ctx, client.TokenRequest{Identity: "alice", Room: room, Role: "host"})
		if err != nil {
			log.Fatal(err)
		}
		return client.RelayTarget{Room: room, Token: tok}
	}
	r, err := host.StartRelay(ctx, []client.RelayTarget{target("studio")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("relay:", r.State)
	running := func(ev client.RelayStateEvent) bool { return ev.State == "running" }
	if _, err := client.WaitEvent(ctx, host, client.NotifyRelayState, running); err != nil {
		log.Fatal(err)
	}
	fmt.Println("relay: running")

	pe, err := client.WaitEvent[client.ParticipantEvent](ctx, dave, client.NotifyParticipantJoined, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dave sees %s, role %s, from %s\n", pe.Participant.Identity, pe.Participant.Role, pe.Participant.RelayFrom.Room)
	if _, err := dave.WaitTrack(ctx, "video", nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println("dave receives the video")

	if r, err = host.UpdateRelay(ctx, []client.RelayTarget{target("studio"), target("lounge")}); err != nil {
		log.Fatal(err)
	}
	for _, d := range r.Destinations {
		fmt.Println("destination", d.Room+":", d.State)
	}
	if r, err = host.StopRelay(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("relay:", r.State)
	// Output:
	// relay: connecting
	// relay: running
	// dave sees alice, role relay, from show
	// dave receives the video
	// destination studio: running
	// destination lounge: running
	// relay: idle
}

// The admin HTTP API: rooms, tokens and invitations, on behalf of an
// application's users.
func ExampleAdmin() {
	ctx, admin, stop := start() // admin is &client.Admin{BaseURL: ..., Token: <an admin token>}
	defer stop()

	room, err := admin.CreateRoom(ctx, client.CreateRoomRequest{
		Name: "show", Host: "alice", Title: "Friday show", Metadata: json.RawMessage(`{"tier":"gold"}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created", room.Name, room.Status, room.Title, string(room.Metadata))

	alice, _ := connect(ctx, admin, "alice", "show", "host") // CreateToken, Dial, Join
	defer alice.Close()
	if room, err = admin.Room(ctx, "show"); err != nil {
		log.Fatal(err)
	}
	for _, p := range room.Participants {
		fmt.Println("in", room.Name+":", p.Identity, p.Role)
	}

	inv, err := admin.CreateInvitation(ctx, "show", "bob") // on alice's behalf
	if err != nil {
		log.Fatal(err)
	}
	pending, err := admin.UserInvitations(ctx, "bob", "pending")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob has", len(pending), "pending invitation, to", pending[0].Room)
	if inv, err = admin.AcceptInvitation(ctx, inv.ID); err != nil { // on bob's behalf
		log.Fatal(err)
	}
	fmt.Println("bob's invitation:", inv.Status)

	if room, err = admin.StopRoom(ctx, "show"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("stopped:", room.Status, room.EndReason)
	invs, err := admin.RoomInvitations(ctx, "show", "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob's invitation after the end:", invs[0].Status)

	_, err = admin.Room(ctx, "nowhere")
	fmt.Println("an unknown room:", client.ErrorCode(err) == client.CodeNotFound)
	// Output:
	// created show idle Friday show {"tier":"gold"}
	// in show: alice host
	// bob has 1 pending invitation, to show
	// bob's invitation: accepted
	// stopped: ended stopped_by_admin
	// bob's invitation after the end: removed
	// an unknown room: true
}

// Relays over HTTP: an operator relays a connected host into another room;
// the host's session gets the relay's notifications as if it had called
// relay.start itself.
func ExampleAdmin_StartRelay() {
	ctx, admin, stop := start()
	defer stop()
	createRooms(ctx, admin, "alice", "studio", "lounge") // alice hosts both: the relay passes their gate
	alice, _ := connect(ctx, admin, "alice", "show", "host")
	defer alice.Close()

	r, err := admin.StartRelay(ctx, client.RelaySource{Room: "show", Identity: "alice"},
		[]client.AdminRelayTarget{{Room: "studio", Identity: "alice"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("relaying", r.Source.Identity, "from", r.Source.Room, "to", r.Destinations[0].Room)
	running := func(ev client.RelayStateEvent) bool { return ev.State == "running" }
	if _, err := client.WaitEvent(ctx, alice, client.NotifyRelayState, running); err != nil {
		log.Fatal(err)
	}
	relays, err := admin.Relays(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(relays), "relay:", relays[0].State)

	r, err = admin.UpdateRelay(ctx, r.ID, []client.AdminRelayTarget{{Room: "studio", Identity: "alice"}, {Room: "lounge", Identity: "alice"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("destinations:", len(r.Destinations))
	if r, err = admin.StopRelay(ctx, r.ID); err != nil {
		log.Fatal(err)
	}
	fmt.Println("stopped:", r.State)
	// Output:
	// relaying alice from show to studio
	// 1 relay: running
	// destinations: 2
	// stopped: idle
}

// A 1.1 session, and a room used again: the host ends its stream, joins
// again and starts the room's next broadcast; the operator lists both.
func ExampleClient_JoinWith() {
	ctx, admin, stop := start()
	defer stop()
	token, err := admin.CreateToken(ctx, client.TokenRequest{Identity: "alice", Room: "show", Role: "host"})
	if err != nil {
		log.Fatal(err)
	}
	goLive := func() *client.JoinResult {
		host, err := client.Dial(ctx, admin.BaseURL, token, client.Options{})
		if err != nil {
			log.Fatal(err)
		}
		defer host.Close()
		joined, err := host.JoinWith(ctx, client.JoinParams{Version: "1.1"})
		if err != nil {
			log.Fatal(err)
		}
		if err := host.StopRoom(ctx); err != nil { // the end of this broadcast
			log.Fatal(err)
		}
		<-host.Closed()
		return joined
	}
	first := goLive()
	fmt.Println("version", first.Version, "session", first.SessionID[:3], "resumed", first.Resumed)
	next := goLive()
	fmt.Println("same room, next broadcast:", next.Room.Name, next.Room.BroadcastID != first.Room.BroadcastID)
	list, err := admin.Broadcasts(ctx, "show")
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range list {
		fmt.Println(b.Status, b.EndReason)
	}
	// Output:
	// version 1.1 session SE_ resumed false
	// same room, next broadcast: show true
	// ended host_left
	// ended host_left
}

// A 1.1 publisher learns its own track ids from track.published, mutes its
// video (viewers stop receiving it and 1.1 ones are told), and an operator
// mutes its audio, which the publisher is told too.
func ExampleClient_MuteTrack() {
	ctx, admin, stop := start()
	defer stop()
	join11 := func(identity, role string) *client.Client {
		token, err := admin.CreateToken(ctx, client.TokenRequest{Identity: identity, Room: "show", Role: role})
		if err != nil {
			log.Fatal(err)
		}
		c, err := client.Dial(ctx, admin.BaseURL, token, client.Options{})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.JoinWith(ctx, client.JoinParams{Version: "1.1"}); err != nil {
			log.Fatal(err)
		}
		return c
	}
	host := join11("alice", "host")
	defer host.Close()
	viewer := join11("bob", "viewer")
	defer viewer.Close()
	defer publish(ctx, host, client.PublisherOptions{}).Stop()

	own, err := client.WaitEvent(ctx, host, client.NotifyTrackPublished, func(ev client.TrackEvent) bool {
		return ev.Track.Kind == "video"
	})
	if err != nil {
		log.Fatal(err)
	}
	track, err := host.MuteTrack(ctx, own.Track.ID, true)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice's", track.Kind, "muted:", track.Muted)
	ev, err := client.WaitEvent[client.TrackMutedEvent](ctx, viewer, client.NotifyTrackMuted, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob is told: muted", ev.Muted, "by", ev.By)

	tracks, err := admin.MuteParticipant(ctx, "show", "alice", client.MuteRequest{Kind: "audio"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the operator muted", len(tracks), tracks[0].Kind, "track")
	ev, err = client.WaitEvent[client.TrackMutedEvent](ctx, host, client.NotifyTrackMuted, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice is told: muted", ev.Muted, "by", ev.By)
	// Output:
	// alice's video muted: true
	// bob is told: muted true by publisher
	// the operator muted 1 audio track
	// alice is told: muted true by admin
}

// A 1.1 host whose network drops comes back with Resume: the same
// session, its missed notifications replayed, ICE restarted on both
// PeerConnections, nothing published again; its viewer is told the
// track paused, then active.
func ExampleClient_Resume() {
	ctx, admin, stop := start()
	defer stop()
	join11 := func(identity, role string) *client.Client {
		token, err := admin.CreateToken(ctx, client.TokenRequest{Identity: identity, Room: "show", Role: role})
		if err != nil {
			log.Fatal(err)
		}
		c, err := client.Dial(ctx, admin.BaseURL, token, client.Options{})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.JoinWith(ctx, client.JoinParams{Version: "1.1"}); err != nil {
			log.Fatal(err)
		}
		return c
	}
	host := join11("alice", "host")
	defer host.Close()
	defer publish(ctx, host, client.PublisherOptions{}).Stop()
	viewer := join11("bob", "viewer")
	defer viewer.Close()
	if _, err := viewer.WaitTrack(ctx, "video", nil); err != nil {
		log.Fatal(err)
	}

	host.DropSocket() // the network goes
	held := func(state string) func(client.TrackStreamEvent) bool {
		return func(ev client.TrackStreamEvent) bool {
			return ev.State == state && ev.Reason == "publisher_reconnecting"
		}
	}
	ev, err := client.WaitEvent(ctx, viewer, client.NotifyTrackStream, held("paused"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob is told:", ev.State, ev.Reason)

	res, err := host.Resume(ctx, client.ResumeOptions{}) // and comes back
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice resumed:", res.Resumed, "as", res.Participant.Role)
	ev, err = client.WaitEvent(ctx, viewer, client.NotifyTrackStream, held("active"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob is told:", ev.State, ev.Reason)
	// Output:
	// bob is told: paused publisher_reconnecting
	// alice resumed: true as host
	// bob is told: active publisher_reconnecting
}
