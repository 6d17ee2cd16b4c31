package webhooks

import (
	"encoding/json"
	"time"

	"github.com/relaysfu/relayd/internal/ids"
)

// The event types.
const (
	TypeRoomStarted        = "room.started"
	TypeRoomEnded          = "room.ended"
	TypeRecordingCompleted = "recording.completed"
	TypeInvitationUpdated  = "invitation.updated"
	TypeRelayState         = "relay.state"
	TypeParticipantJoined  = "participant.joined"
	TypeParticipantLeft    = "participant.left"
)

var knownTypes = map[string]bool{
	TypeRoomStarted: true, TypeRoomEnded: true, TypeRecordingCompleted: true,
	TypeInvitationUpdated: true, TypeRelayState: true,
	TypeParticipantJoined: true, TypeParticipantLeft: true,
}

// Event is what a receiver gets: the body of the POST.
type Event struct {
	ID   string          `json:"id"`   // "EV_" + random; unique, used by receivers to dedupe (at-least-once)
	Type string          `json:"type"` // one of the Type constants
	Room string          `json:"room,omitempty"`
	At   time.Time       `json:"at"`   // when it happened (Emit), UTC
	Data json.RawMessage `json:"data"` // depends on Type
}

// newEventID returns "EV_" and 16 random base62 characters: 95 bits, so
// ids never collide and receivers can dedupe on them alone.
func newEventID() string { return ids.New("EV_", 16) }
