package client

import (
	"encoding/json"
	"time"

	"github.com/pion/webrtc/v4"
)

// Objects of the wire contract (docs/protocol.md §7). JSON tags match the
// contract exactly; times are RFC 3339 strings on the wire. The server may
// add fields: decoding ignores those these types do not know.

// Participant is one identity connected to one room (§7.1).
type Participant struct {
	Identity string  `json:"identity"` // the token's sub
	Name     string  `json:"name"`     // the token's name claim ("" when none)
	Role     string  `json:"role"`     // host, cohost, viewer, relay
	Tracks   []Track `json:"tracks"`   // its published tracks
	// RelayFrom is set on participants with role "relay".
	RelayFrom *RelayFrom `json:"relayFrom,omitempty"`
}

// RelayFrom names the room a relay participant's stream comes from.
type RelayFrom struct {
	Room string `json:"room"`
}

// Track is a published track (§7.2). On the subscriber PC its msid is
// "<Participant> <ID>": RemoteTrack.StreamID and RemoteTrack.TrackID.
type Track struct {
	ID          string `json:"id"`            // TR_ and 12 base62 characters, given by the server
	Participant string `json:"participant"`   // the publisher's identity (a relayed track: the relay's)
	Kind        string `json:"kind"`          // audio, video
	Codec       string `json:"codec"`         // opus, VP8, VP9, H264
	Mid         string `json:"mid,omitempty"` // optional; relayd leaves it empty (match by msid)
	// Muted: nothing of the track is forwarded (§8.14); track.muted tells
	// a 1.1 session when it changes.
	Muted bool `json:"muted"`
	// Layers are a simulcast video track's layers, lowest first (§8.10;
	// simulcast.go); none for other tracks. track.updated tells a 1.1
	// session when they change.
	Layers []Layer `json:"layers,omitempty"`
}

// Room is a named live show (§7.3). Its status, times, host and end
// reason are those of its current broadcast (§8.9): a room's name is
// reused by its broadcasts.
type Room struct {
	Name string `json:"name"`
	// BroadcastID names the room's current broadcast: BC_ and 16 hex
	// digits.
	BroadcastID string          `json:"broadcastId,omitempty"`
	Host        string          `json:"host"`               // the host's identity
	Status      string          `json:"status"`             // idle, live, waiting_reconnect, ended, recorded
	Title       string          `json:"title,omitempty"`    // as given to Admin.CreateRoom
	Metadata    json.RawMessage `json:"metadata,omitempty"` // as given to Admin.CreateRoom
	CreatedAt   time.Time       `json:"createdAt"`
	StartedAt   *time.Time      `json:"startedAt,omitempty"` // when it first went live
	EndedAt     *time.Time      `json:"endedAt,omitempty"`
	// EndReason says why an ended (or recorded) room ended: host_left,
	// host_timeout, stopped_by_admin, server_shutdown, node_lost (§8.5).
	EndReason string `json:"endReason,omitempty"`
	// Participants is filled by Admin.Room only.
	Participants []Participant `json:"participants,omitempty"`
	// NumParticipants counts the participants connected now (relays
	// included); Viewers those with role viewer.
	NumParticipants int `json:"numParticipants"`
	Viewers         int `json:"viewers"`
	// Recording: the current broadcast records (room.updated tells a
	// change); never while ended.
	Recording bool `json:"recording"`
	// Recordings are the current broadcast's finished recordings: filled
	// by Admin.Room (GET /v1/rooms/{room}) only.
	Recordings []Recording `json:"recordings,omitempty"`
}

// Broadcast is one go-live of a room (§7.4), as Admin.Broadcasts lists
// them. Host is the identity that hosted it (a room's host may change from
// one broadcast to the next).
type Broadcast struct {
	ID        string     `json:"id"` // BC_ and 16 hex digits
	Room      string     `json:"room"`
	Host      string     `json:"host"`
	Status    string     `json:"status"` // as the room's: idle, live, waiting_reconnect, ended, recorded
	CreatedAt time.Time  `json:"createdAt"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
	EndReason string     `json:"endReason,omitempty"`
}

// Invitation invites a user onto a room's stage (§7.5, §8.6).
type Invitation struct {
	ID        string    `json:"id"` // IN_ and 12 base62 characters
	Room      string    `json:"room"`
	Host      string    `json:"host"`   // the room's host, who invited
	User      string    `json:"user"`   // the invitee
	Status    string    `json:"status"` // pending, accepted, rejected, cancelled, expired, removed, left
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"` // the last status change
	ExpiresAt time.Time `json:"expiresAt"` // when a pending invitation expires
	// BroadcastID is the room's broadcast it was made in.
	BroadcastID string `json:"broadcastId,omitempty"`
}

// Relay is a cross-room media relay (§7.6, §8.7). State and Code are the
// relay's state (idle 0, connecting 1, running 2, failure 3); Error and
// ErrorCode its error (none 0 when all is well, failed_join_dest 5, ...).
type Relay struct {
	ID           string             `json:"id"` // RL_ and 12 base62 characters
	Source       RelaySource        `json:"source"`
	State        string             `json:"state"`
	Code         int                `json:"code"`
	Error        string             `json:"error"`
	ErrorCode    int                `json:"errorCode"`
	Paused       bool               `json:"paused"`
	Destinations []RelayDestination `json:"destinations"`
}

// RelaySource is the participant a relay's media comes from.
type RelaySource struct {
	Room     string `json:"room"`
	Identity string `json:"identity"`
}

// RelayDestination is one destination of a relay as the server reports it:
// its own state and error, numbered as the relay's. Identity is the
// destination token's sub once the token was checked ("" before, and when
// it was refused).
type RelayDestination struct {
	Room      string `json:"room"`
	Identity  string `json:"identity"`
	State     string `json:"state"`
	Code      int    `json:"code"`
	Error     string `json:"error"`
	ErrorCode int    `json:"errorCode"`
}

// RelayTarget is one destination as given to Client.StartRelay and
// Client.UpdateRelay: a room and a token for it, whose sub is the identity
// the stream takes there (it must be that room's host, or a co-host there).
type RelayTarget struct {
	Room  string `json:"room"`
	Token string `json:"token"`
}

// Message is a chat message (§7.7).
type Message struct {
	ID          string        `json:"id"` // MS_ and 16 hex digits; increases in the room's order, across its broadcasts
	Room        string        `json:"room"`
	BroadcastID string        `json:"broadcastId,omitempty"` // the room's broadcast it was sent in
	From        MessageSender `json:"from"`
	Text        string        `json:"text"` // exactly as sent: display it as text, never as markup
	At          time.Time     `json:"at"`
}

// MessageSender is the author of a chat message, with its role when it
// sent it.
type MessageSender struct {
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Role     string `json:"role"`
}

// JoinParams are the params of "join" (§5.1). The zero value is a 1.0
// join.
type JoinParams struct {
	// Version is "1.1" to opt in to version 1.1 (§4.4); "" sends none
	// (1.0).
	Version string `json:"version,omitempty"`
	// LastSeq is a resume's last processed seq (§8.12); nil sends none.
	// Without a session to resume the join is a fresh one (Resumed false).
	LastSeq *uint64 `json:"lastSeq,omitempty"`
}

// JoinResult is the result of "join" (§5.1).
type JoinResult struct {
	// Participant is the caller (its role may already be cohost).
	Participant Participant `json:"participant"`
	// Room is the room, counting the caller; nil for a user session.
	Room *Room `json:"room"`
	// Participants are the others, with their tracks.
	Participants []Participant `json:"participants"`
	// Tracks are every track published in the room now.
	Tracks []Track `json:"tracks"`
	// Version is the version the session is served: "1.0" or "1.1" ("" from
	// a server older than the opt-in).
	Version string `json:"version,omitempty"`
	// ICEServers are the ICE servers (TURN) to give the PeerConnections
	// (§8.11); empty while the server runs none.
	ICEServers []ICEServer `json:"iceServers,omitempty"`

	// The resume fields of a 1.1 session (§8.12).
	SessionID   string `json:"sessionId,omitempty"`   // SE_ and 16 hex digits
	ResumeToken string `json:"resumeToken,omitempty"` // opaque, at most 256 characters
	Resumed     bool   `json:"resumed,omitempty"`     // false: a fresh session
	Seq         uint64 `json:"seq,omitempty"`         // the last seq sent (0 when fresh)
	Gap         bool   `json:"gap,omitempty"`         // a resume missed notifications
}

// ICEServer is an RTCIceServer of the join result (§7.9).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// SDPParams is the params and result of "offer" in both directions.
type SDPParams struct {
	SDP string `json:"sdp"`
}

// Trickle targets: they always name the client's PeerConnection, in both
// directions.
const (
	TargetPublisher  = "publisher"  // the PC the client offers on
	TargetSubscriber = "subscriber" // the PC the server offers on
)

// TrickleParams is the params of "trickle" in both directions.
type TrickleParams struct {
	// Target is TargetPublisher or TargetSubscriber.
	Target string `json:"target"`
	// Candidate is one ICE candidate; nil (JSON null) ends the candidates.
	Candidate *webrtc.ICECandidateInit `json:"candidate"`
}

// Notification params (server to client, §6). Decode a Notification's
// params into the one its method names (Notification.Decode).

// ParticipantEvent is the params of participant.joined, participant.left
// and participant.updated.
type ParticipantEvent struct {
	Participant Participant `json:"participant"`
}

// TrackEvent is the params of track.published and track.unpublished.
type TrackEvent struct {
	Track Track `json:"track"`
}

// RoomEvent is the params of room.updated.
type RoomEvent struct {
	Room Room `json:"room"`
}

// InvitationEvent is the params of invitation.updated.
type InvitationEvent struct {
	Invitation Invitation `json:"invitation"`
}

// RelayStateEvent is the params of relay.state: the relay's new state and
// error, as in Relay.
type RelayStateEvent struct {
	Relay     string `json:"relay"` // the relay id
	State     string `json:"state"`
	Code      int    `json:"code"`
	Error     string `json:"error"`
	ErrorCode int    `json:"errorCode"`
	// Destinations are the relay's destinations as they stand when the
	// notification is sent, each with its own state and error (a relayd
	// extension, §6.7): why one failed, without asking for the relay.
	Destinations []RelayDestination `json:"destinations,omitempty"`
}

// RelayEvent is the params of relay.event (the events of §8.7, numbered
// like Agora's channel media relay).
type RelayEvent struct {
	Relay string `json:"relay"`          // the relay id ("" for a refused start)
	Event string `json:"event"`          // e.g. joined_dest_channel
	Code  int    `json:"code"`           // e.g. 3
	Room  string `json:"room,omitempty"` // the destination it concerns, if any
}

// ChatMessageEvent is the params of chat.message.
type ChatMessageEvent struct {
	Message Message `json:"message"`
}

// ChatDeletedEvent is the params of chat.deleted.
type ChatDeletedEvent struct {
	ID string `json:"id"` // the deleted message's id
}

// TrackMutedEvent is the params of track.muted (1.1 sessions, §8.14): a
// track was muted or unmuted, by its publisher or an operator.
type TrackMutedEvent struct {
	TrackID string `json:"trackId"`
	Muted   bool   `json:"muted"`
	By      string `json:"by"` // "publisher" or "admin"
}

// TrackStreamEvent is the params of track.stream (1.1 sessions, §8.10,
// §8.15): a track this session receives is paused, or active again.
// Transitions only.
type TrackStreamEvent struct {
	TrackID string `json:"trackId"`
	State   string `json:"state"`  // "paused" or "active"
	Reason  string `json:"reason"` // relay_paused, publisher_reconnecting, bandwidth
}

// DrainingEvent is the params of server.draining: the server has begun a
// graceful shutdown and ends the rooms still open at Deadline at the latest.
type DrainingEvent struct {
	Deadline time.Time `json:"deadline"`
}

// Server notification methods (§6).
const (
	NotifyTrickle            = "trickle"
	NotifyParticipantJoined  = "participant.joined"
	NotifyParticipantLeft    = "participant.left"
	NotifyParticipantUpdated = "participant.updated"
	NotifyTrackPublished     = "track.published"
	NotifyTrackUnpublished   = "track.unpublished"
	NotifyRoomUpdated        = "room.updated"
	NotifyInvitationUpdated  = "invitation.updated"
	NotifyRelayState         = "relay.state"
	NotifyRelayEvent         = "relay.event"
	NotifyChatMessage        = "chat.message"
	NotifyChatDeleted        = "chat.deleted"
	NotifyServerDraining     = "server.draining"
	NotifyTrackMuted         = "track.muted"   // 1.1: TrackMutedEvent
	NotifyTrackStream        = "track.stream"  // 1.1: TrackStreamEvent
	NotifyTokenRefresh       = "token.refresh" // 1.1: TokenRefreshEvent
)

// Error codes of the contract (§9.1): JSON-RPC's own, then relayd's, which
// the HTTP API's error bodies carry too.
const (
	CodeParseError      = -32700 // the frame is not JSON
	CodeInvalidRequest  = -32600 // not a JSON-RPC request
	CodeMethodNotFound  = -32601 // unknown method
	CodeInvalidParams   = -32602 // params missing, of the wrong type or out of range
	CodeInternalError   = -32603 // a server fault; retrying may help
	CodeUnauthenticated = 4001   // no valid token
	CodeForbidden       = 4003   // the caller's role may not do this
	CodeNotFound        = 4004   // the thing named does not exist
	CodeConflict        = 4009   // the current state does not allow it
	CodeTooMany         = 4013   // a limit is reached
	CodeRateLimited     = 4029   // too fast
)
