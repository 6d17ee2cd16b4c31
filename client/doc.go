// Package client is a Go client of relayd, the WebRTC SFU of this module:
// what a browser does with the JS SDK (/sdk/relay-client.js), a Go program
// does with this package. It implements version 1.0 of the wire protocol,
// which docs/protocol.md describes in full, and of version 1.1 the opt-in
// with its seq numbers, reusable rooms (broadcasts), mute and operators'
// kick and mute, and a paused relay's track.stream; the sections named
// below (§) are that page's.
//
// It has two halves:
//
//   - Client is one participant's session: a WebSocket carrying JSON-RPC 2.0
//     (GET /v1/ws?token=…) and up to two WebRTC PeerConnections. Join a
//     room, publish, receive, chat, take part in invitations, relay.
//   - Admin is the admin HTTP API (/v1/…, §10), for an application's back
//     end: mint tokens, create, list and stop rooms, list, kick and mute
//     participants, act on invitations on users' behalf, run relays, switch
//     recording.
//
// The server's end-to-end tests and the load tester (package bench) use it
// too, which is why it can also drop received packets on purpose
// (Options.ReceiveDrop), send malformed frames (SendRaw) and measure
// latency (RemoteTrack.Latency).
//
// # Rooms, roles and tokens
//
// A room is a named live show with one host (§1.1). Its participants are
// the host, co-hosts (viewers whose invitation to the stage was accepted),
// viewers, and relays (a stream relayed in from another room). The host and
// co-hosts publish; everyone but relays receives every track of the room
// (§1.2, §1.3).
//
// Every session starts from a token: an HS256 JWT signed with the server's
// secret whose claims name the identity (sub), the room and the role, host
// or viewer (§2). An application's back end mints them (with any JWT
// library, or with Admin.CreateToken); `relayd token` mints them on the
// command line and `relayd --dev` prints a few. A token without a room
// opens a user session, which joins no room and may only use the
// invitation methods. A bad token is refused at the upgrade: Dial returns
// an *HTTPError (401, code 4001).
//
// # Two PeerConnections
//
// Like ion-sfu and LiveKit, relayd gives each participant two
// PeerConnections (§1.4):
//
//   - the publisher PC carries what the client sends. The client offers,
//     with the "offer" request, and the server's answer is the result.
//     Publish creates it on its first call and renegotiates it for every
//     track added (Publish) or removed (Unpublish). Viewers never have one.
//   - the subscriber PC carries what the client receives. The server offers,
//     with an "offer" request of its own, whenever the room's tracks change,
//     and the client answers with the result. Client answers these by
//     itself, creating the PC on the first.
//
// ICE candidates are trickled both ways with "trickle", whose target always
// names the client's PC ("publisher" or "subscriber"). The Client holds its
// own candidates back until its offer or answer is on the wire, and queues
// the server's until the PC has its remote description (§8.3).
//
// Each received track's msid is "<publisher identity> <track id>":
// RemoteTrack.StreamID is the identity of the Track's Participant and
// RemoteTrack.TrackID its ID, which is how a received track is matched to
// the Track of the join result or of a track.published notification. The
// server does not transcode: a track arrives in the codec its publisher
// sends (§1.4).
//
// # Quick start
//
// Join a room as its host, publish, and let a viewer receive:
//
//	admin := &client.Admin{BaseURL: "http://127.0.0.1:8800", Token: adminToken}
//	token, err := admin.CreateToken(ctx, client.TokenRequest{Identity: "alice", Room: "show", Role: "host"})
//	...
//	host, err := client.Dial(ctx, admin.BaseURL, token, client.Options{})
//	...
//	defer host.Close()
//	if _, err := host.Join(ctx); err != nil { ... }
//
//	src, err := client.NewSyntheticPublisher(client.PublisherOptions{}) // or any webrtc.TrackLocal
//	...
//	defer src.Stop()
//	if err := host.Publish(ctx, src.Tracks()...); err != nil { ... }
//	src.Start()
//
//	// A viewer, dialed and joined the same way with a viewer token:
//	video, err := viewer.WaitTrack(ctx, "video", nil)
//	// video.Packets(), video.Keyframes(), video.Latency(), or read
//	// video.Remote() yourself with Options.TrackReader.
//
// The examples run each step against a real server.
//
// # Requests, notifications and errors
//
// The typed methods (Join, Publish, CreateInvitation, StartRelay, SendChat,
// Kick, ...) are the contract's requests (§5); Call sends any request,
// Notify any notification. A refused request returns an *RPCError: act on
// its code (ErrorCode, the Code* constants, §9.1); the session stays usable.
// An error never closes the socket, except a frame over 64 KiB.
//
// The server's notifications (§6) arrive in order on two independent views:
// the Notifications channel, and WaitNotification, which waits for one of
// a method (and, optionally, matching params) among all those received so
// far, so tests and simple programs can wait for events in any order.
// Decode a Notification's params into the type its method names
// (NotifyRoomUpdated: RoomEvent, NotifyTrackPublished: TrackEvent, ...), or
// let WaitEvent wait and decode:
//
//	ev, err := client.WaitEvent[client.RoomEvent](ctx, c, client.NotifyRoomUpdated, nil)
//
// Notifications may reach the caller before or after the result of the
// request that caused them (§4.3), with one exception: the join result
// comes before anything else of the session (the first subscriber offer
// and every notification follow it).
//
// When the server closes the socket, Closed is closed, pending calls fail
// with an error wrapping ErrClosed, and CloseCode tells why (§3.6): 1000
// after leave, when the room ended (a room.updated with status "ended"
// comes first) or when a newer session of the same identity replaced this
// one; 1001 when the server shut down; 4003 when the host kicked this
// participant; 4009 when the socket did not join within the server's join
// deadline (10 s). Only 1001, and 1006 (the connection dropped without a close
// frame), call for reconnecting (§9.2); the Client never reconnects by
// itself.
//
// # Invitations, relays and chat
//
// The host invites a viewer onto the stage (CreateInvitation); the invitee
// is told with invitation.updated on every session it has, accepts or
// rejects (AcceptInvitation, RejectInvitation) and, accepted, becomes a
// co-host at once (participant.updated) who may Publish. The host takes a
// co-host off the stage with RemoveCohost; a co-host leaves with
// LeaveStage (§8.6).
//
// The host or a co-host relays its own tracks into other rooms (up to the
// server's --max-relay-destinations, 4 by default) with StartRelay, each destination given as a room and a token for it
// whose identity is that room's host or a co-host there (§8.7). The relay's
// progress comes as relay.state and relay.event notifications, numbered
// like Agora's channel media relay; UpdateRelay replaces the destination
// set, PauseRelay and ResumeRelay halt and restart the media, StopRelay
// ends it. In a destination room the relay is a participant with role
// "relay" whose tracks everyone there receives.
//
// SendChat, ChatHistory and DeleteChat are the room's chat (§8.8); a chat
// text is delivered exactly as sent, so display it as text.
//
// # Version 1.1, broadcasts and recording
//
// Join opens a 1.0 session; JoinWith(ctx, JoinParams{Version: "1.1"}) opts
// in to 1.1 (§4.4). The result then says so (JoinResult.Version) and has
// the session's SessionID and ResumeToken; every notification but trickle
// carries a seq, 1 after the join result and +1 each (Notification.Seq,
// LastSeq), which is what a resume presents.
//
// # Resume, ICE restart and token refresh (1.1)
//
// A 1.1 session whose socket drops is held by the server for its grace
// (§8.12): Resume comes back as the same participant on a new socket,
// with the newest token (Token: token.refresh, TokenRefreshEvent,
// replaces the one given to Dial) and resume token (ResumeToken). The
// notifications missed are replayed (those already received are dropped
// by seq), the server's offer restarts ICE on the subscriber PC, and
// Resume restarts the publisher PC's ICE (RestartICE) without publishing
// again; a resume that resumed nothing (JoinResult.Resumed false) closes
// both PeerConnections, and the caller publishes again. RestartICE alone
// serves a network change with the socket still up. Before each ICE
// restart the client reads the machine's network interfaces again, so a
// new address is gathered. DropSocket closes the socket as a lost network
// does (tests and the bench's resume lab).
//
// A room's name is reusable (§8.9): each go-live is a broadcast with its
// own id (Room.BroadcastID). A 1.1 host's join into its ended room starts
// the next broadcast (a 1.0 host, or a viewer, gets 4009); so does
// Admin.CreateRoom with an ended room's name. Invitations, messages and
// recordings carry their broadcast's id; ChatHistory and the host's
// ListInvitations cover the current broadcast, and Admin.Broadcasts,
// Admin.Chat, Admin.BroadcastRecordings and Admin.BroadcastInvitations
// read past ones.
//
// The host turns recording of its room on or off with SetRecording
// (room.record, §5.21); an operator with Admin.SetRecording. Room.Recording
// says whether the room records (a room.updated tells every participant
// when it changes). Admin.Room lists the current broadcast's finished
// recordings with their URLs (Room.Recordings).
//
// # Mute, operators and paused streams (1.1)
//
// A publisher mutes one of its own tracks with MuteTrack (track.mute,
// §5.20): the server forwards nothing of it (to relays and recordings
// neither) until it is unmuted, then resumes from a keyframe. A 1.1
// session learns its own tracks' ids from the track.published the server
// sends it for them (an extension of relayd's, §6.4; a 1.0 session gets
// none). Track.Muted says whether a track is muted, in every track object;
// 1.1 sessions are told changes with track.muted (TrackMutedEvent), which
// also reaches the relay destinations with the copies' ids.
//
// An operator lists a room's participants (Admin.Participants), kicks one
// (Admin.KickParticipant: the host too) and mutes tracks
// (Admin.MuteParticipant, §10.8); the publisher is told of an admin mute
// and may unmute itself.
//
// A 1.1 session is told track.stream (TrackStreamEvent) when a track it
// receives pauses and when media flows again: when the relay carrying it
// is paused and resumed at its source (§8.15), and when its downlink
// carries not even a video track's lowest layer (reason "bandwidth",
// §8.10).
//
// # Simulcast and per-track settings (1.1)
//
// NewSimulcastTrack makes a video track sent as 1-3 layers (rids q, h, f,
// lowest first, §8.10); Publish(ctx, st.Tracks()...) sends them as the
// encodings of one sender (a=rid, a=simulcast), each layer fed its own
// encoded stream through its LayerTrack, whose own RTCP sets
// KeyframeWanted. A 1.1 publisher is told with publisher.layers which
// layers some viewer needs (PublisherLayersEvent); the Client applies it
// itself: LayerTrack.Active turns false and the layer's packets are
// dropped until it is needed again. Track.Layers lists a simulcast track's
// layers (TrackUpdatedEvent when they change).
//
// A 1.1 subscriber asks for less of a track with TrackSettings (a quality,
// a size limit, or paused), and is told the layer it gets with track.layer
// (TrackLayerEvent) and a pause for bandwidth with track.stream. Its
// PeerConnections send transport-wide congestion control feedback (pion's
// TWCC interceptor, part of NewAPI), from which the server estimates each
// viewer's bandwidth.
//
// # Media
//
// Publish takes any webrtc.TrackLocal. SyntheticPublisher is a VP8 and
// Opus source that behaves like an encoder (frame sizes, keyframes on a
// timer and on PLI or FIR) and stamps its send time in every packet, from
// which RemoteTrack measures end-to-end latency.
//
// Every received track is read by a goroutine of the Client, which counts
// packets, bytes, retransmissions and keyframes (RemoteTrack). Set
// Options.TrackReader to read tracks yourself instead.
//
// By default the Client is loopback only: NewAPI builds its PeerConnections
// on LoopbackSettingEngine, which gathers loopback candidates only, so no
// media leaves the machine (the tests and the load tester want exactly
// that). To reach a server on another machine, set Options.SettingEngine
// (a zero webrtc.SettingEngine gathers every interface) or Options.API.
// RegisterCodecs registers the codecs the server accepts, for an API of
// your own; their payload types differ from the server's on purpose.
//
// The join result's ICE servers (the server's TURN, when it runs one) are
// not used unless asked: Options.ICEServers picks them (AllICEServers, or
// FilterICEServers to keep some URLs), and Options.ICETransportPolicy
// relay forces the PeerConnections through TURN. A SettingEngine with TCP
// network types only (webrtc.NetworkTypeTCP4) connects over the server's
// ICE-TCP port instead of UDP.
//
// Methods of Client, RemoteTrack, SyntheticPublisher and Admin are safe for
// concurrent use. Close ends a Client and waits for all its goroutines.
//
// # Not in this package
//
// Per-track subscription, which the protocol does not have.
//
// # Files
//
// rpc.go (JSON-RPC over WebSocket), client.go (Dial, Close, the session),
// peer.go (PeerConnections, trickle, subscriber offers), publish.go
// (Publish, Unpublish), resume.go (Resume, RestartICE, token refresh),
// methods.go (typed wrappers of the contract's
// methods), types.go (the contract's objects), admin.go (the HTTP API),
// api.go (webrtc.API, codecs, SettingEngine), drop.go (the receive-drop
// interceptor), receiver.go (RemoteTrack), latency.go (latency
// histogram), media.go (SyntheticPublisher), simulcast.go (SimulcastTrack,
// publisher.layers), settings.go (TrackSettings).
package client
