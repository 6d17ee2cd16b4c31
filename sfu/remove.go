package sfu

// Remove takes the participant out of its room as Leave does (its tracks
// unpublished on every subscriber, then participant.left; a host leaving
// puts the room in waiting_reconnect), then tells its EventSink
// SessionEnded{code, reason}, the last event it gets: a session closes its
// socket with code, a relay drops that destination. It is how the layer
// owning the rooms' rules takes someone out: a kick, or a relay whose
// identity lost the publish gate. It returns once the sink has been told.
func (p *Participant) Remove(code int, reason string) {
	p.leave(true)
	p.inbox.post(SessionEnded{Code: code, Reason: reason})
	p.inbox.flush() // told when Remove returns; never call it from p's own Notify
}
