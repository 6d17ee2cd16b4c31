package sfu

import (
	"encoding/json"
	"time"

	"github.com/pion/webrtc/v4"
)

// Role is a participant's role in a room (PROTOCOL.md "Words").
type Role string

// Roles.
const (
	RoleHost   Role = "host"
	RoleCohost Role = "cohost"
	RoleViewer Role = "viewer"
	RoleRelay  Role = "relay"
)

// RoomStatus is a room's lifecycle state (PROTOCOL.md "Room lifecycle").
type RoomStatus string

// Room statuses.
const (
	StatusIdle             RoomStatus = "idle"
	StatusLive             RoomStatus = "live"
	StatusWaitingReconnect RoomStatus = "waiting_reconnect"
	StatusEnded            RoomStatus = "ended"
	StatusRecorded         RoomStatus = "recorded" // ended, and its recordings are final
)

// Ended reports whether the room is over (ended or recorded).
func (s RoomStatus) Ended() bool { return s == StatusEnded || s == StatusRecorded }

// Target names one of a participant's two PeerConnections, always from the
// client's point of view (PROTOCOL.md "Negotiation").
type Target string

// Targets.
const (
	TargetPublisher  Target = "publisher"
	TargetSubscriber Target = "subscriber"
)

// TrackInfo is the contract's track object.
type TrackInfo struct {
	ID          string `json:"id"`
	Participant string `json:"participant"`
	Kind        string `json:"kind"`
	Codec       string `json:"codec"`
	Mid         string `json:"mid,omitempty"`
	// Muted: nothing of the track is forwarded (PROTOCOL.md 1.1 §7); in
	// every track object, 1.0 sessions' too.
	Muted bool `json:"muted"`
	// Layers: a simulcast track's layers, lowest first (1.1 §1).
	Layers []LayerInfo `json:"layers,omitempty"`
}

// RelayFrom names the room a relay participant's stream comes from.
type RelayFrom struct {
	Room string `json:"room"`
}

// ParticipantInfo is the contract's participant object.
type ParticipantInfo struct {
	Identity  string      `json:"identity"`
	Name      string      `json:"name"`
	Role      Role        `json:"role"`
	Tracks    []TrackInfo `json:"tracks"`
	RelayFrom *RelayFrom  `json:"relayFrom,omitempty"`
}

// RoomInfo is the contract's room object. Participants is filled only
// where a caller asks for the list (GET /v1/rooms/{room}); Viewers,
// NumParticipants and Recording are extensions (docs/protocol.md §7.3).
// BroadcastID names the room's current broadcast (1.1 §1a: a Room is one
// broadcast of its name), BroadcastCreatedAt when it began.
type RoomInfo struct {
	Name            string            `json:"name"`
	BroadcastID     string            `json:"broadcastId,omitempty"`
	Host            string            `json:"host"`
	Status          RoomStatus        `json:"status"`
	Title           string            `json:"title,omitempty"`
	Metadata        json.RawMessage   `json:"metadata,omitempty"`
	CreatedAt       time.Time         `json:"createdAt"`
	StartedAt       *time.Time        `json:"startedAt,omitempty"`
	EndedAt         *time.Time        `json:"endedAt,omitempty"`
	EndReason       EndReason         `json:"endReason,omitempty"` // while ended or recorded
	Participants    []ParticipantInfo `json:"participants,omitempty"`
	NumParticipants int               `json:"numParticipants"`
	Viewers         int               `json:"viewers"`
	// Recording: the broadcast records (set by SetRecording; never while
	// ended).
	Recording          bool      `json:"recording"`
	BroadcastCreatedAt time.Time `json:"-"`
}

// Event is something the room tells one participant's session. The
// concrete types below are all there is.
type Event interface{ event() }

// EventSink receives a participant's events. Notify is called with no sfu
// lock held, from the participant's delivery goroutine (mailbox.go), one
// event at a time in the order they were posted: every participant of a
// room gets the room's changes in the same order. Notify may call back
// into the sfu, but should return soon (the participant's later events
// wait for it), and must not end its own room (Room.End, SFU.Close) or
// make its identity join again (Room.Join): those wait until the events
// they post have been delivered.
type EventSink interface {
	Notify(Event)
}

// SubscriberOffer is the server's offer on the subscriber PC; the session
// sends it as an "offer" request and passes the client's answer to
// Participant.SetSubscriberAnswer.
type SubscriberOffer struct{ SDP string }

// ICECandidate is a server candidate for one of the participant's PCs; nil
// Candidate ends the candidates.
type ICECandidate struct {
	Target    Target
	Candidate *webrtc.ICECandidateInit
}

// ParticipantJoined and its siblings tell the room's changes.
type (
	ParticipantJoined  struct{ Participant ParticipantInfo }
	ParticipantLeft    struct{ Participant ParticipantInfo }
	ParticipantUpdated struct{ Participant ParticipantInfo }
	TrackPublished     struct{ Track TrackInfo }
	TrackUnpublished   struct{ Track TrackInfo }
	RoomUpdated        struct{ Room RoomInfo }
	// TrackMuted: a track of the room was muted or unmuted (Track.Muted
	// says which) by By, "publisher" or "admin" (Room.TellMuted).
	TrackMuted struct {
		Track TrackInfo
		By    string
	}
	// TrackUpdated: a track's layers changed (track.updated, 1.1).
	TrackUpdated struct{ Track TrackInfo }
	// PublisherLayers: the layers of one of its tracks the publisher
	// is to send (publisher.layers, 1.1: dynacast.go).
	PublisherLayers struct {
		TrackID string
		Active  []string
	}
)

// SessionEnded tells the session to close its socket with Code: the room
// ended (1000), or a newer session of the same identity replaced it.
type SessionEnded struct {
	Code   int
	Reason string
}

func (SubscriberOffer) event()    {}
func (ICECandidate) event()       {}
func (ParticipantJoined) event()  {}
func (ParticipantLeft) event()    {}
func (ParticipantUpdated) event() {}
func (TrackPublished) event()     {}
func (TrackUnpublished) event()   {}
func (RoomUpdated) event()        {}
func (TrackMuted) event()         {}
func (TrackUpdated) event()       {}
func (PublisherLayers) event()    {}
func (SessionEnded) event()       {}
