package client

import (
	"encoding/json"
	"time"

	"github.com/pion/webrtc/v4"
)

// Objects of the wire contract (PROTOCOL.md, "Objects"). JSON tags match the
// contract exactly; times are RFC 3339 strings on the wire.

// Participant is one identity connected to one room.
type Participant struct {
	Identity string  `json:"identity"`
	Name     string  `json:"name"`
	Role     string  `json:"role"` // host, cohost, viewer, relay
	Tracks   []Track `json:"tracks"`
	// RelayFrom is set on participants with role "relay".
	RelayFrom *RelayFrom `json:"relayFrom,omitempty"`
}

// RelayFrom names the room a relay participant's stream comes from.
type RelayFrom struct {
	Room string `json:"room"`
}

// Track is a published track.
type Track struct {
	ID          string `json:"id"`
	Participant string `json:"participant"` // the publisher's identity
	Kind        string `json:"kind"`        // audio, video
	Codec       string `json:"codec"`
	Mid         string `json:"mid,omitempty"`
}

// Room is a named broadcast.
type Room struct {
	Name         string          `json:"name"`
	Host         string          `json:"host"`
	Status       string          `json:"status"` // idle, live, waiting_reconnect, ended, recorded
	Title        string          `json:"title,omitempty"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	CreatedAt    time.Time       `json:"createdAt"`
	StartedAt    *time.Time      `json:"startedAt,omitempty"`
	EndedAt      *time.Time      `json:"endedAt,omitempty"`
	Participants []Participant   `json:"participants,omitempty"`
}

// Invitation invites a user onto a room's stage.
type Invitation struct {
	ID        string    `json:"id"`
	Room      string    `json:"room"`
	Host      string    `json:"host"`
	User      string    `json:"user"`
	Status    string    `json:"status"` // pending, accepted, rejected, cancelled, expired, removed, left
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Relay is a cross-room media relay.
type Relay struct {
	ID           string             `json:"id"`
	Source       RelaySource        `json:"source"`
	State        string             `json:"state"`
	Code         int                `json:"code"`
	Error        string             `json:"error"`
	ErrorCode    int                `json:"errorCode"`
	Paused       bool               `json:"paused"`
	Destinations []RelayDestination `json:"destinations"`
}

// RelaySource is where a relay's media comes from.
type RelaySource struct {
	Room     string `json:"room"`
	Identity string `json:"identity"`
}

// RelayDestination is one destination of a relay as the server reports it.
type RelayDestination struct {
	Room      string `json:"room"`
	Identity  string `json:"identity"`
	State     string `json:"state"`
	Code      int    `json:"code"`
	Error     string `json:"error"`
	ErrorCode int    `json:"errorCode"`
}

// RelayTarget is one destination as given to relay.start / relay.update.
type RelayTarget struct {
	Room  string `json:"room"`
	Token string `json:"token"`
}

// Message is a chat message.
type Message struct {
	ID   string        `json:"id"`
	Room string        `json:"room"`
	From MessageSender `json:"from"`
	Text string        `json:"text"`
	At   time.Time     `json:"at"`
}

// MessageSender is the author of a chat message.
type MessageSender struct {
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Role     string `json:"role"`
}

// JoinResult is the result of "join". Room is nil for a user session.
type JoinResult struct {
	Participant  Participant   `json:"participant"`
	Room         *Room         `json:"room"`
	Participants []Participant `json:"participants"`
	Tracks       []Track       `json:"tracks"`
}

// SDPParams is the params and result of "offer" in both directions.
type SDPParams struct {
	SDP string `json:"sdp"`
}

// Trickle targets.
const (
	TargetPublisher  = "publisher"
	TargetSubscriber = "subscriber"
)

// TrickleParams is the params of "trickle" in both directions. A nil
// Candidate (JSON null) ends the candidates.
type TrickleParams struct {
	Target    string                   `json:"target"`
	Candidate *webrtc.ICECandidateInit `json:"candidate"`
}

// Notification params (server to client).

// ParticipantEvent is the params of participant.joined/left/updated.
type ParticipantEvent struct {
	Participant Participant `json:"participant"`
}

// TrackEvent is the params of track.published/unpublished.
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

// RelayStateEvent is the params of relay.state.
type RelayStateEvent struct {
	Relay     string `json:"relay"` // the relay id
	State     string `json:"state"`
	Code      int    `json:"code"`
	Error     string `json:"error"`
	ErrorCode int    `json:"errorCode"`
}

// RelayEvent is the params of relay.event.
type RelayEvent struct {
	Relay string `json:"relay"`
	Event string `json:"event"`
	Code  int    `json:"code"`
	Room  string `json:"room,omitempty"`
}

// ChatMessageEvent is the params of chat.message.
type ChatMessageEvent struct {
	Message Message `json:"message"`
}

// ChatDeletedEvent is the params of chat.deleted.
type ChatDeletedEvent struct {
	ID string `json:"id"`
}

// Server notification methods.
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
)

// JSON-RPC error codes of the contract.
const (
	CodeParseError      = -32700
	CodeInvalidRequest  = -32600
	CodeMethodNotFound  = -32601
	CodeInvalidParams   = -32602
	CodeInternalError   = -32603
	CodeUnauthenticated = 4001
	CodeForbidden       = 4003
	CodeNotFound        = 4004
	CodeConflict        = 4009
	CodeTooMany         = 4013
	CodeRateLimited     = 4029
)
