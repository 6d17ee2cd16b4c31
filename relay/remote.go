package relay

import "github.com/relaysfu/relayd/sfu"

// Remote reaches destination rooms that live on other nodes. nil on a
// single node. Links (links.go) implements it over one SRTP pipe per node
// pair.
type Remote interface {
	// Join asks the node holding room to admit identity as a relay
	// participant (role relay, RelayFrom srcRoom, gate
	// Room.MayPublishAs(identity, sfu.RoleRelay) checked THERE). It
	// returns ErrNone, or the failure: ErrFailedJoinDest (room
	// missing/ended/gate), ErrServerConnectionLost (node unreachable).
	// ended is called at most once, later, from any goroutine: with
	// ErrNone when the destination room ended / the relay participant was
	// removed there, with ErrServerConnectionLost when the link or the
	// node died.
	Join(room, identity, name, srcRoom string, ended func(Error)) (RemoteDest, Error)
	// Has reports whether room lives on another node (so the manager uses
	// Join instead of the local SFU).
	Has(room string) bool
}

// RemoteDest is one relay participant in a room of another node.
type RemoteDest interface {
	// Publish sends dst, a relayed up track (sfu.NewRelayedUpTrack of the
	// source) fed by the relay's egress, into the destination room.
	Publish(dst *sfu.UpTrack) error
	// Unpublish ends dst there (and closes it, as
	// sfu.Participant.UnpublishTrack does for a local destination).
	Unpublish(dst *sfu.UpTrack)
	// Leave takes the relay participant out of the destination room.
	Leave()
	// SetHeld tells the destination's node that the source is held
	// (true) or resumed (false), SetPaused that the relay is paused or
	// resumed, SetMuted that dst's source track was muted or unmuted by
	// "publisher" or "admin" (copystate.go). They never block.
	SetHeld(held bool)
	SetPaused(paused bool)
	SetMuted(dst *sfu.UpTrack, muted bool, by string)
}
