package client

// Typed wrappers of the contract's client-to-server methods. Each is a Call
// with the contract's params and result; errors are *RPCError as from Call.

import "context"

// StopRoom calls "room.stop" (host only).
func (c *Client) StopRoom(ctx context.Context) error {
	return c.Call(ctx, "room.stop", struct{}{}, nil)
}

// SetRecording calls "room.record" {on} (host only) and returns the room,
// whose Recording says whether its broadcast records. On records the
// tracks published already too; off finalizes the recordings so far. A
// server that records nothing answers -32601.
func (c *Client) SetRecording(ctx context.Context, on bool) (*Room, error) {
	var room Room
	if err := c.Call(ctx, "room.record", map[string]bool{"on": on}, &room); err != nil {
		return nil, err
	}
	return &room, nil
}

// CreateInvitation calls "invitation.create" {user} (host only).
func (c *Client) CreateInvitation(ctx context.Context, user string) (*Invitation, error) {
	var inv Invitation
	if err := c.Call(ctx, "invitation.create", map[string]string{"user": user}, &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// ListInvitations calls "invitation.list" {status?} ("" = any status).
func (c *Client) ListInvitations(ctx context.Context, status string) ([]Invitation, error) {
	params := map[string]string{}
	if status != "" {
		params["status"] = status
	}
	var r struct {
		Invitations []Invitation `json:"invitations"`
	}
	if err := c.Call(ctx, "invitation.list", params, &r); err != nil {
		return nil, err
	}
	return r.Invitations, nil
}

func (c *Client) invitationByID(ctx context.Context, method, id string) (*Invitation, error) {
	var inv Invitation
	if err := c.Call(ctx, method, map[string]string{"id": id}, &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// AcceptInvitation calls "invitation.accept" {id} (invitee only).
func (c *Client) AcceptInvitation(ctx context.Context, id string) (*Invitation, error) {
	return c.invitationByID(ctx, "invitation.accept", id)
}

// RejectInvitation calls "invitation.reject" {id} (invitee only).
func (c *Client) RejectInvitation(ctx context.Context, id string) (*Invitation, error) {
	return c.invitationByID(ctx, "invitation.reject", id)
}

// CancelInvitation calls "invitation.cancel" {id} (host only).
func (c *Client) CancelInvitation(ctx context.Context, id string) (*Invitation, error) {
	return c.invitationByID(ctx, "invitation.cancel", id)
}

// RemoveCohost calls "cohost.remove" {user} (host only).
func (c *Client) RemoveCohost(ctx context.Context, user string) error {
	return c.Call(ctx, "cohost.remove", map[string]string{"user": user}, nil)
}

// LeaveStage calls "stage.leave" (co-host only).
func (c *Client) LeaveStage(ctx context.Context) error {
	return c.Call(ctx, "stage.leave", struct{}{}, nil)
}

func (c *Client) relayCall(ctx context.Context, method string, params any) (*Relay, error) {
	var r Relay
	if err := c.Call(ctx, method, params, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

type relayParams struct {
	Destinations []RelayTarget `json:"destinations"`
}

// StartRelay calls "relay.start" {destinations}.
func (c *Client) StartRelay(ctx context.Context, destinations []RelayTarget) (*Relay, error) {
	return c.relayCall(ctx, "relay.start", relayParams{Destinations: destinations})
}

// UpdateRelay calls "relay.update" {destinations} (the full new set).
func (c *Client) UpdateRelay(ctx context.Context, destinations []RelayTarget) (*Relay, error) {
	return c.relayCall(ctx, "relay.update", relayParams{Destinations: destinations})
}

// StopRelay calls "relay.stop".
func (c *Client) StopRelay(ctx context.Context) (*Relay, error) {
	return c.relayCall(ctx, "relay.stop", struct{}{})
}

// PauseRelay calls "relay.pause".
func (c *Client) PauseRelay(ctx context.Context) (*Relay, error) {
	return c.relayCall(ctx, "relay.pause", struct{}{})
}

// ResumeRelay calls "relay.resume".
func (c *Client) ResumeRelay(ctx context.Context) (*Relay, error) {
	return c.relayCall(ctx, "relay.resume", struct{}{})
}

// SendChat calls "chat.send" {text} and returns the message.
func (c *Client) SendChat(ctx context.Context, text string) (*Message, error) {
	var m Message
	if err := c.Call(ctx, "chat.send", map[string]string{"text": text}, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ChatHistory calls "chat.history" {before?, limit?} ("" and 0 are left
// out) and returns the messages, newest last.
func (c *Client) ChatHistory(ctx context.Context, before string, limit int) ([]Message, error) {
	params := map[string]any{}
	if before != "" {
		params["before"] = before
	}
	if limit != 0 {
		params["limit"] = limit
	}
	var r struct {
		Messages []Message `json:"messages"`
	}
	if err := c.Call(ctx, "chat.history", params, &r); err != nil {
		return nil, err
	}
	return r.Messages, nil
}

// DeleteChat calls "chat.delete" {id} (host only).
func (c *Client) DeleteChat(ctx context.Context, id string) error {
	return c.Call(ctx, "chat.delete", map[string]string{"id": id}, nil)
}

// Kick calls "participant.kick" {identity, ban} (host only).
func (c *Client) Kick(ctx context.Context, identity string, ban bool) error {
	return c.Call(ctx, "participant.kick", map[string]any{"identity": identity, "ban": ban}, nil)
}

// MuteTrack calls "track.mute" {trackId, muted} on one of the caller's own
// tracks and returns the track object. While muted the server forwards
// nothing of it (to relays neither); unmuting asks the publisher for a
// keyframe. A 1.1 session learns its own tracks' ids from track.published
// (an extension: §6.4); an unknown track is 4004, another's 4003.
func (c *Client) MuteTrack(ctx context.Context, trackID string, muted bool) (*Track, error) {
	var t Track
	if err := c.Call(ctx, "track.mute", map[string]any{"trackId": trackID, "muted": muted}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
