// Package relay relays a publisher's tracks from its room into up to N other
// rooms (PROTOCOL.md "Relay"), with the states, errors and events of Agora's
// channel media relay so its users can port their callbacks.
//
// Its decisions are one pure function (decide.go); a Relay applies them
// (relay.go). A relay is a Sink plus a Source and nothing else: in each
// destination, each source track gets an sfu.NewRelayedUpTrack (sharing
// the source track's cache and keyframe throttle) published by a
// participant of role relay, and an egress Sink on the source track feeds
// it. The source track's reader is
// the only forwarding loop.
//
// In cluster mode a destination room may live on another node
// (Config.Remote, remote.go): the relayed up track is then sent to that
// node over the one SRTP pipe between the two nodes (Links, links.go,
// pipe*.go), and published there by a relay participant fed by an
// ingress. States, events and errors are those of a local destination,
// plus server_connection_lost when the other node is lost.
package relay

// State is a relay's (or a destination's) state.
type State int

// States, numbered as Agora's CHANNEL_MEDIA_RELAY_STATE.
const (
	StateIdle State = iota
	StateConnecting
	StateRunning
	StateFailure
)

var stateWords = [...]string{"idle", "connecting", "running", "failure"}

func (s State) String() string {
	if int(s) < len(stateWords) {
		return stateWords[s]
	}
	return "unknown"
}

// Error is a relay error, numbered as Agora's CHANNEL_MEDIA_RELAY_ERROR.
type Error int

// Errors.
const (
	ErrNone Error = iota
	ErrServerErrorResponse
	ErrServerNoResponse
	ErrNoResourceAvailable
	ErrFailedJoinSrc
	ErrFailedJoinDest
	ErrFailedPacketReceivedFromSrc
	ErrFailedPacketSentToDest
	ErrServerConnectionLost
	ErrInternal
	ErrSrcTokenExpired
	ErrDestTokenExpired
)

var errorWords = [...]string{
	"none", "server_error_response", "server_no_response", "no_resource_available",
	"failed_join_src", "failed_join_dest", "failed_packet_received_from_src",
	"failed_packet_sent_to_dest", "server_connection_lost", "internal_error",
	"src_token_expired", "dest_token_expired",
}

func (e Error) String() string {
	if int(e) < len(errorWords) {
		return errorWords[e]
	}
	return "unknown"
}

// Event is a relay event, numbered as Agora's CHANNEL_MEDIA_RELAY_EVENT.
type Event int

// Events.
const (
	EventDisconnect Event = iota
	EventConnected
	EventJoinedSrcChannel
	EventJoinedDestChannel
	EventSentToDestChannel
	EventReceivedVideoPacketFromSrc
	EventReceivedAudioPacketFromSrc
	EventUpdateDestChannel
	EventUpdateDestChannelRefused
	EventUpdateDestChannelNotChange
	EventUpdateDestChannelIsNil
	EventVideoProfileUpdate
	EventPauseSuccess
	EventPauseFailed
	EventResumeSuccess
	EventResumeFailed
)

var eventWords = [...]string{
	"disconnect", "connected", "joined_src_channel", "joined_dest_channel",
	"sent_to_dest_channel", "received_video_packet_from_src", "received_audio_packet_from_src",
	"update_dest_channel", "update_dest_channel_refused", "update_dest_channel_not_change",
	"update_dest_channel_is_nil", "video_profile_update",
	"pause_send_packet_to_dest_channel_success", "pause_send_packet_to_dest_channel_failed",
	"resume_send_packet_to_dest_channel_success", "resume_send_packet_to_dest_channel_failed",
}

func (e Event) String() string {
	if int(e) < len(eventWords) {
		return eventWords[e]
	}
	return "unknown"
}
