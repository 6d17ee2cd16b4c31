package relay

import "testing"

// The words and numbers of PROTOCOL.md's relay tables (Agora's), exactly.
func TestCodesMatchTheContract(t *testing.T) {
	states := []string{"idle", "connecting", "running", "failure"}
	for i, w := range states {
		if got := State(i).String(); got != w {
			t.Errorf("state %d = %q, want %q", i, got, w)
		}
	}
	errs := []string{"none", "server_error_response", "server_no_response", "no_resource_available",
		"failed_join_src", "failed_join_dest", "failed_packet_received_from_src", "failed_packet_sent_to_dest",
		"server_connection_lost", "internal_error", "src_token_expired", "dest_token_expired"}
	for i, w := range errs {
		if got := Error(i).String(); got != w {
			t.Errorf("error %d = %q, want %q", i, got, w)
		}
	}
	events := map[Event]string{
		EventDisconnect: "disconnect", EventConnected: "connected", EventJoinedSrcChannel: "joined_src_channel",
		EventJoinedDestChannel: "joined_dest_channel", EventSentToDestChannel: "sent_to_dest_channel",
		EventReceivedVideoPacketFromSrc: "received_video_packet_from_src",
		EventReceivedAudioPacketFromSrc: "received_audio_packet_from_src",
		EventUpdateDestChannel:          "update_dest_channel", EventUpdateDestChannelRefused: "update_dest_channel_refused",
		EventUpdateDestChannelNotChange: "update_dest_channel_not_change", EventUpdateDestChannelIsNil: "update_dest_channel_is_nil",
		EventVideoProfileUpdate: "video_profile_update",
		EventPauseSuccess:       "pause_send_packet_to_dest_channel_success", EventPauseFailed: "pause_send_packet_to_dest_channel_failed",
		EventResumeSuccess: "resume_send_packet_to_dest_channel_success", EventResumeFailed: "resume_send_packet_to_dest_channel_failed",
	}
	for code, w := range map[Event]int{EventSentToDestChannel: 4, EventUpdateDestChannelRefused: 8, EventPauseSuccess: 12, EventResumeFailed: 15} {
		if int(code) != w {
			t.Errorf("%s = %d, want %d", code, int(code), w)
		}
	}
	for e, w := range events {
		if e.String() != w {
			t.Errorf("event %d = %q, want %q", int(e), e.String(), w)
		}
	}
	if int(ErrDestTokenExpired) != 11 || int(ErrFailedJoinDest) != 5 || int(ErrServerConnectionLost) != 8 {
		t.Error("error numbers differ from the contract")
	}
	if State(9).String() != "unknown" || Error(99).String() != "unknown" || Event(99).String() != "unknown" {
		t.Error("out-of-range values must not panic")
	}
}
