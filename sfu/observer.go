package sfu

// Observer is told of every change of every room: its status, participants
// joining and leaving, tracks published and unpublished. The layer that owns
// the rooms' rules (persistence, invitations, relays, recording, webhooks)
// is the one Observer; the sfu has no other way out besides each
// participant's EventSink.
//
// RoomChanged is called after the change is made, without any sfu lock
// held, in the goroutine that made it. Changes of one participant reach it
// in the order they happened; it may call back into the sfu.
type Observer interface {
	RoomChanged(RoomChange)
}

// RoomChange is one of RoomStatusChanged, ParticipantChanged and
// TrackChanged.
type RoomChange interface{ roomChange() }

type (
	// RoomStatusChanged: the room's status changed to Info.Status.
	RoomStatusChanged struct {
		Room *Room
		Info RoomInfo
	}
	// ParticipantChanged: a participant joined (Joined) or left.
	ParticipantChanged struct {
		Room        *Room
		Participant *Participant
		Info        ParticipantInfo
		Joined      bool
	}
	// TrackChanged: one of Participant's tracks was published (Published)
	// or unpublished.
	TrackChanged struct {
		Room        *Room
		Participant *Participant
		Track       *UpTrack
		Published   bool
	}
)

func (RoomStatusChanged) roomChange()  {}
func (ParticipantChanged) roomChange() {}
func (TrackChanged) roomChange()       {}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(RoomChange)

// RoomChanged calls f.
func (f ObserverFunc) RoomChanged(c RoomChange) { f(c) }

// observe tells the observer, if there is one.
func (s *SFU) observe(c RoomChange) {
	if o := s.cfg.Observer; o != nil {
		o.RoomChanged(c)
	}
}
