package rooms

import (
	"errors"
	"fmt"
	"strings"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/invitations"
	"github.com/relaysfu/relayd/relay"
	"github.com/relaysfu/relayd/sfu"
)

// The kinds of refusal rooms answers with. Every error a method of this
// package returns is an *Error of one of these kinds (errors.Is finds the
// kind), or anything else for a failure of the server itself (a store that
// cannot be written): the transport maps each kind to its protocol code in
// one place (signaling's toError) and anything else to an internal error.
var (
	ErrInvalid     = errors.New("invalid")      // the request names something impossible (-32602)
	ErrForbidden   = errors.New("forbidden")    // the caller's role may not do this (4003)
	ErrNotFound    = errors.New("not found")    // no such room, invitation, relay, message (4004)
	ErrConflict    = errors.New("conflict")     // the state does not allow it (4009)
	ErrTooMany     = errors.New("too many")     // a limit: stage full, destinations (4013)
	ErrRateLimited = errors.New("rate limited") // too many creations or messages (4029)
)

// Error is a refusal: its kind, and the message for the client (which names
// no Go type and leaks nothing of the server).
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is find the kind.
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// fromSFU turns the sfu's errors into rooms' kinds, with the messages the
// contract's clients have always seen.
func fromSFU(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sfu.ErrBadSDP), errors.Is(err, sfu.ErrBadCandidate):
		return errorf(ErrInvalid, "%v", err)
	case errors.Is(err, sfu.ErrForbidden):
		return errorf(ErrForbidden, "not allowed to publish in this room")
	case errors.Is(err, sfu.ErrRoomNotFound):
		return errorf(ErrNotFound, "room not found")
	case errors.Is(err, sfu.ErrRoomEnded):
		return errorf(ErrConflict, "room has ended")
	case errors.Is(err, sfu.ErrWrongState), errors.Is(err, sfu.ErrClosed), errors.Is(err, sfu.ErrRoomExists):
		return errorf(ErrConflict, "%v", err)
	}
	return err
}

// fromInvitations turns the invitations Manager's errors into rooms' kinds.
// The Manager's messages end in their sentinel (": invalid params"); each
// message here says its kind's word once, in front.
func fromInvitations(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, invitations.ErrNotFound):
		return errorf(ErrNotFound, "%s", once("", err, invitations.ErrNotFound))
	case errors.Is(err, invitations.ErrForbidden):
		return errorf(ErrForbidden, "%s", once("forbidden", err, invitations.ErrForbidden))
	case errors.Is(err, invitations.ErrConflict):
		return errorf(ErrConflict, "%s", once("conflict", err, invitations.ErrConflict))
	case errors.Is(err, invitations.ErrStageFull):
		return errorf(ErrTooMany, "%s", once("stage full", err, invitations.ErrStageFull))
	case errors.Is(err, invitations.ErrInvalid):
		return errorf(ErrInvalid, "%s", once("invalid params", err, invitations.ErrInvalid))
	}
	return err
}

// once is err's message with its sentinel kind's words said once: the
// trailing ": <kind>" the wrapping added is cut, and word (the kind's word
// for a client) is put in front unless the message starts with it already;
// a bare sentinel says just word. With word "" the message is left as it is
// (ErrNotFound's "...: not found" says its word once already).
func once(word string, err, kind error) string {
	if word == "" {
		return err.Error() // its kind's words are its own ("...: not found")
	}
	msg := strings.TrimSuffix(err.Error(), ": "+kind.Error())
	if msg == kind.Error() {
		return word
	}
	if strings.HasPrefix(msg, word) {
		return msg
	}
	return word + ": " + msg
}

// fromRelay turns the relay Manager's errors into rooms' kinds.
func fromRelay(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, relay.ErrNotFound):
		return errorf(ErrNotFound, "%v", err)
	case errors.Is(err, relay.ErrConflict):
		return errorf(ErrConflict, "%v", err)
	case errors.Is(err, relay.ErrTooMany):
		return errorf(ErrTooMany, "%v", err)
	case errors.Is(err, relay.ErrInvalid):
		return errorf(ErrInvalid, "invalid params: %v", err)
	case errors.Is(err, relay.ErrForbidden):
		return errorf(ErrForbidden, "forbidden: %v", err)
	}
	return err
}

// fromChat turns the chat store's errors into rooms' kinds.
func fromChat(err error, id string) error {
	if errors.Is(err, chat.ErrNotFound) {
		return errorf(ErrNotFound, "message %s not found", id)
	}
	return err
}
