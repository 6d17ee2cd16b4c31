package webhooks

import (
	"crypto/rand"
	"encoding/json"
	"time"
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

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newEventID returns "EV_" and 16 random base62 characters: 95 bits, so
// ids never collide and receivers can dedupe on them alone.
func newEventID() string {
	var out [16]byte
	var buf [32]byte
	for n := 0; n < len(out); {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails (Go 1.24+)
		for _, b := range buf {
			// 248 = 4*62: only bytes below it, so every character
			// is equally likely (no modulo bias).
			if b >= 248 {
				continue
			}
			out[n] = base62[b%62]
			n++
			if n == len(out) {
				break
			}
		}
	}
	return "EV_" + string(out[:])
}
