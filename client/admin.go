package client

// Admin: a typed client of the admin HTTP API (docs/protocol.md §10).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// adminReadLimit bounds a success answer (a list of every room or
	// invitation); an error answer is read up to adminErrorLimit.
	adminReadLimit  = 16 << 20
	adminErrorLimit = 64 << 10
)

// Admin is a client of the server's admin HTTP API (docs/protocol.md §10):
// what an application's back end uses to mint tokens, create, inspect and
// stop rooms, act on invitations on users' behalf, and run relays. Set
// BaseURL and Token; the methods are safe for concurrent use.
//
// A refused request returns an error wrapping *HTTPError, whose code
// ErrorCode reads (4004 for an unknown room, 4009 for a conflict, ...).
type Admin struct {
	// BaseURL is the server's address, http(s)://host:port, as for Dial.
	BaseURL string
	// Token is an admin token: any valid token with "admin": true
	// (`relayd token --admin`; `relayd --dev` prints one).
	Token string
	// HTTPClient sends the requests; nil: http.DefaultClient.
	HTTPClient *http.Client
}

// TokenRequest describes a token to mint with Admin.CreateToken (POST /v1/tokens).
type TokenRequest struct {
	Identity string        // the token's sub; required
	Room     string        // the room it joins; "": a user session (invitations only)
	Role     string        // "host" or "viewer"; the server's default with a Room is "viewer"
	Name     string        // display name
	TTL      time.Duration // lifetime; 0: the server's default (one hour)
}

// CreateRoomRequest describes a room to create with Admin.CreateRoom
// (POST /v1/rooms).
type CreateRoomRequest struct {
	Name     string          `json:"name"`               // the room's name; required
	Host     string          `json:"host"`               // the host's identity; required
	Title    string          `json:"title,omitempty"`    // given back in the room object
	Metadata json.RawMessage `json:"metadata,omitempty"` // any JSON, given back as is
	Record   bool            `json:"record,omitempty"`   // record this room
}

// AdminRelayTarget is one destination of a relay started or changed over
// HTTP: a room, and the identity the stream takes there. It needs no token
// (the admin token vouches), but the identity must still pass the
// destination's publishing gate: that room's host, or a co-host there.
type AdminRelayTarget struct {
	Room     string `json:"room"`
	Identity string `json:"identity"`
}

// Recording is one finished recording file (docs/protocol.md §7.8): the
// audio and video of one publishing participant.
type Recording struct {
	Name        string    `json:"name"`                  // file name, <identity>-<unix ms>.webm
	Participant string    `json:"participant"`           // the identity (with ".relay" for a relay participant)
	BroadcastID string    `json:"broadcastId,omitempty"` // the room's broadcast it recorded
	Size        int64     `json:"size"`                  // bytes
	Duration    float64   `json:"duration"`              // seconds
	Tracks      []string  `json:"tracks"`                // MIME types, e.g. "audio/opus", "video/VP8"
	StartedAt   time.Time `json:"startedAt"`             // first media written
	URL         string    `json:"url"`                   // the download path, /v1/rooms/{room}/recordings/{name}
	// Cut: the server was killed while recording and repaired the file at
	// its next start; it ends a few seconds before the kill.
	Cut bool `json:"cut"`
}

// CreateToken mints a token for a participant or a user session (never an admin
// token: mint those with `relayd token --admin`).
func (a *Admin) CreateToken(ctx context.Context, r TokenRequest) (string, error) {
	body := map[string]any{"identity": r.Identity}
	for k, v := range map[string]string{"room": r.Room, "role": r.Role, "name": r.Name} {
		if v != "" {
			body[k] = v
		}
	}
	if r.TTL != 0 {
		body["ttl"] = r.TTL.String()
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := a.do(ctx, http.MethodPost, "/v1/tokens", nil, body, &out); err != nil {
		return "", err
	}
	return out.Token, nil
}

// CreateRoom creates an idle room. A name in use by a room that has not
// ended is 4009; the name of an ended room starts that room's next
// broadcast (§8.9), whose host may be another.
func (a *Admin) CreateRoom(ctx context.Context, r CreateRoomRequest) (*Room, error) {
	var room Room
	if err := a.do(ctx, http.MethodPost, "/v1/rooms", nil, r, &room); err != nil {
		return nil, err
	}
	return &room, nil
}

// Rooms lists every room the server knows, ended ones included, sorted by
// name, without participants. status ("idle", "live", ...; "" for all)
// filters.
func (a *Admin) Rooms(ctx context.Context, status string) ([]Room, error) {
	var out struct {
		Rooms []Room `json:"rooms"`
	}
	if err := a.do(ctx, http.MethodGet, "/v1/rooms", statusQuery(status), nil, &out); err != nil {
		return nil, err
	}
	return out.Rooms, nil
}

// Room returns a room (its current broadcast) with its participants and
// the broadcast's finished recordings (4004 when unknown).
func (a *Admin) Room(ctx context.Context, name string) (*Room, error) {
	var room Room
	if err := a.do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(name), nil, nil, &room); err != nil {
		return nil, err
	}
	return &room, nil
}

// StopRoom ends a room as its host's room.stop does, and returns it, now
// ended (a room already ended is returned as it is).
func (a *Admin) StopRoom(ctx context.Context, name string) (*Room, error) {
	var room Room
	if err := a.do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(name)+"/stop", nil, nil, &room); err != nil {
		return nil, err
	}
	return &room, nil
}

// SetRecording turns recording of a room's current broadcast on (the
// tracks published already too) or off (its files so far are finalized).
// An ended room is 4009.
func (a *Admin) SetRecording(ctx context.Context, room string, on bool) error {
	return a.do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(room)+"/record", nil, map[string]bool{"on": on}, nil)
}

// Recordings lists a room's finished recordings, every broadcast's,
// oldest first.
func (a *Admin) Recordings(ctx context.Context, room string) ([]Recording, error) {
	return a.BroadcastRecordings(ctx, room, "")
}

// BroadcastRecordings lists the finished recordings of one broadcast of a
// room ("": every broadcast's), oldest first; an unknown broadcast is 404.
func (a *Admin) BroadcastRecordings(ctx context.Context, room, broadcast string) ([]Recording, error) {
	var out struct {
		Recordings []Recording `json:"recordings"`
	}
	if err := a.do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(room)+"/recordings", broadcastQuery(broadcast), nil, &out); err != nil {
		return nil, err
	}
	return out.Recordings, nil
}

// Broadcasts lists a room's broadcasts, oldest first (§10.9).
func (a *Admin) Broadcasts(ctx context.Context, room string) ([]Broadcast, error) {
	var out struct {
		Broadcasts []Broadcast `json:"broadcasts"`
	}
	if err := a.do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(room)+"/broadcasts", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Broadcasts, nil
}

// ChatQuery selects a page of a room's chat for Admin.Chat.
type ChatQuery struct {
	Broadcast string // "": the current broadcast
	Before    string // a message id: the page before it ("" the newest)
	Limit     int    // 0: the server's default (50); at most 200
}

// Chat returns a page of one broadcast's chat of a room, oldest first, as
// chat.history pages it (§10.9).
func (a *Admin) Chat(ctx context.Context, room string, q ChatQuery) ([]Message, error) {
	v := broadcastQuery(q.Broadcast)
	if v == nil {
		v = url.Values{}
	}
	if q.Before != "" {
		v.Set("before", q.Before)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out struct {
		Messages []Message `json:"messages"`
	}
	if err := a.do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(room)+"/chat", v, nil, &out); err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// Participants lists the participants connected to a room (relays
// included, with role "relay"), with their tracks (§10.8, an extension).
func (a *Admin) Participants(ctx context.Context, room string) ([]Participant, error) {
	var out struct {
		Participants []Participant `json:"participants"`
	}
	if err := a.do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(room)+"/participants", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Participants, nil
}

// KickParticipant takes identity out of a room, as the host's
// participant.kick does (§10.8), the host included: its socket closes with
// 4003 and the room waits for it (waiting_reconnect). With ban its joins
// are refused until the broadcast ends, and banning the host ends the room
// (stopped_by_admin). An identity not in the room, without ban, is 4004.
func (a *Admin) KickParticipant(ctx context.Context, room, identity string, ban bool) error {
	return a.do(ctx, http.MethodPost, a.participantPath(room, identity, "kick"), nil, map[string]bool{"ban": ban}, nil)
}

// MuteRequest selects what Admin.MuteParticipant mutes: one track, every
// track of a kind, or (both empty) every track of the participant.
type MuteRequest struct {
	TrackID string `json:"trackId,omitempty"`
	Kind    string `json:"kind,omitempty"` // "audio" or "video"
}

// MuteParticipant mutes a participant's tracks (§10.8) and returns them,
// now muted. Everyone in the room is told (track.muted, by "admin"), the
// publisher too, which may unmute itself. No such track or none of that
// kind is 4004; a bad kind HTTP 400 with code -32602.
func (a *Admin) MuteParticipant(ctx context.Context, room, identity string, r MuteRequest) ([]Track, error) {
	var out struct {
		Tracks []Track `json:"tracks"`
	}
	if err := a.do(ctx, http.MethodPost, a.participantPath(room, identity, "mute"), nil, r, &out); err != nil {
		return nil, err
	}
	return out.Tracks, nil
}

func (a *Admin) participantPath(room, identity, action string) string {
	return "/v1/rooms/" + url.PathEscape(room) + "/participants/" + url.PathEscape(identity) + "/" + action
}

// CreateInvitation invites user onto a room's stage on its host's behalf,
// with the rules of invitation.create: an existing pending or accepted
// invitation of user in that room is returned as it is.
func (a *Admin) CreateInvitation(ctx context.Context, room, user string) (*Invitation, error) {
	var inv Invitation
	if err := a.do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(room)+"/invitations", nil, map[string]string{"user": user}, &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// RoomInvitations lists a room's invitations, every broadcast's, oldest
// first; status ("pending", "accepted", ...; "" for all) filters.
func (a *Admin) RoomInvitations(ctx context.Context, room, status string) ([]Invitation, error) {
	return a.BroadcastInvitations(ctx, room, "", status)
}

// BroadcastInvitations lists the invitations made in one broadcast of a
// room ("": every broadcast's), oldest first; status filters. An unknown
// broadcast is 404.
func (a *Admin) BroadcastInvitations(ctx context.Context, room, broadcast, status string) ([]Invitation, error) {
	q := statusQuery(status)
	if broadcast != "" {
		if q == nil {
			q = url.Values{}
		}
		q.Set("broadcast", broadcast)
	}
	var out struct {
		Invitations []Invitation `json:"invitations"`
	}
	if err := a.do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(room)+"/invitations", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Invitations, nil
}

// UserInvitations lists a user's invitations in every room; status filters.
func (a *Admin) UserInvitations(ctx context.Context, user, status string) ([]Invitation, error) {
	return a.invitations(ctx, "/v1/users/"+url.PathEscape(user)+"/invitations", status)
}

func (a *Admin) invitations(ctx context.Context, path, status string) ([]Invitation, error) {
	var out struct {
		Invitations []Invitation `json:"invitations"`
	}
	if err := a.do(ctx, http.MethodGet, path, statusQuery(status), nil, &out); err != nil {
		return nil, err
	}
	return out.Invitations, nil
}

// AcceptInvitation accepts a pending invitation as its invitee would.
func (a *Admin) AcceptInvitation(ctx context.Context, id string) (*Invitation, error) {
	return a.actOnInvitation(ctx, id, "accept")
}

// RejectInvitation rejects a pending invitation as its invitee would.
func (a *Admin) RejectInvitation(ctx context.Context, id string) (*Invitation, error) {
	return a.actOnInvitation(ctx, id, "reject")
}

// CancelInvitation withdraws a pending invitation as its host would.
func (a *Admin) CancelInvitation(ctx context.Context, id string) (*Invitation, error) {
	return a.actOnInvitation(ctx, id, "cancel")
}

func (a *Admin) actOnInvitation(ctx context.Context, id, action string) (*Invitation, error) {
	var inv Invitation
	if err := a.do(ctx, http.MethodPost, "/v1/invitations/"+url.PathEscape(id)+"/"+action, nil, nil, &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// Relays lists the running relays.
func (a *Admin) Relays(ctx context.Context) ([]Relay, error) {
	var out struct {
		Relays []Relay `json:"relays"`
	}
	if err := a.do(ctx, http.MethodGet, "/v1/relays", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Relays, nil
}

// StartRelay relays the tracks of a participant connected to its room into
// the destinations, as if it had called relay.start: its session gets the
// relay's notifications. The relay is returned connecting; a destination
// that cannot be joined fails alone (see Relay.Destinations).
func (a *Admin) StartRelay(ctx context.Context, source RelaySource, destinations []AdminRelayTarget) (*Relay, error) {
	body := struct {
		Source       RelaySource        `json:"source"`
		Destinations []AdminRelayTarget `json:"destinations"`
	}{source, destinations}
	return a.relay(ctx, http.MethodPost, "/v1/relays", body)
}

// UpdateRelay replaces a relay's destinations with a new full set, as
// relay.update does.
func (a *Admin) UpdateRelay(ctx context.Context, id string, destinations []AdminRelayTarget) (*Relay, error) {
	body := struct {
		Destinations []AdminRelayTarget `json:"destinations"`
	}{destinations}
	return a.relay(ctx, http.MethodPut, "/v1/relays/"+url.PathEscape(id), body)
}

// StopRelay stops a relay, as relay.stop does; it is returned idle.
func (a *Admin) StopRelay(ctx context.Context, id string) (*Relay, error) {
	return a.relay(ctx, http.MethodDelete, "/v1/relays/"+url.PathEscape(id), nil)
}

func (a *Admin) relay(ctx context.Context, method, path string, body any) (*Relay, error) {
	var r Relay
	if err := a.do(ctx, method, path, nil, body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func broadcastQuery(broadcast string) url.Values {
	if broadcast == "" {
		return nil
	}
	return url.Values{"broadcast": {broadcast}}
}

func statusQuery(status string) url.Values {
	if status == "" {
		return nil
	}
	return url.Values{"status": {status}}
}

// do sends one request (body, when not nil, as JSON) and decodes a 2xx
// answer into out (when not nil). Anything else is an *HTTPError.
func (a *Admin) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	op := method + " " + path
	u, err := url.Parse(strings.TrimSuffix(a.BaseURL, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("client: bad base URL %q: want http(s)://host:port", a.BaseURL)
	}
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("client: %s: encoding the body: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("client: %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := a.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, adminErrorLimit))
		return newHTTPError(op, resp.StatusCode, b)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, adminReadLimit+1))
	if err != nil {
		return fmt.Errorf("client: %s: reading the answer: %w", op, err)
	}
	if len(b) > adminReadLimit {
		return fmt.Errorf("client: %s: answer over %d bytes", op, adminReadLimit)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("client: %s: decoding the answer: %w", op, err)
	}
	return nil
}
