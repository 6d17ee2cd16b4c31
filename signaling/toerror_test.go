package signaling

import (
	"errors"
	"fmt"
	"testing"

	"github.com/relaysfu/relayd/rooms"
)

// toError is the one mapping of rooms' refusals to protocol codes; the
// message is rooms', and anything that is not a refusal is -32603 without
// its text.
func TestToError(t *testing.T) {
	refusal := func(kind error) error { return &rooms.Error{Kind: kind, Msg: "the message"} }
	for _, tc := range []struct {
		err  error
		code int
		msg  string
	}{
		{refusal(rooms.ErrInvalid), CodeInvalidParams, "the message"},
		{refusal(rooms.ErrForbidden), CodeForbidden, "the message"},
		{refusal(rooms.ErrNotFound), CodeNotFound, "the message"},
		{refusal(rooms.ErrConflict), CodeConflict, "the message"},
		{refusal(rooms.ErrTooMany), CodeTooMany, "the message"},
		{refusal(rooms.ErrRateLimited), CodeRateLimited, "the message"},
		{fmt.Errorf("wrapped: %w", refusal(rooms.ErrNotFound)), CodeNotFound, "the message"},
		{refusal(errors.New("a kind rooms does not have")), CodeInternal, "internal error"},
		{errors.New("bbolt: disk full at /var/lib/relayd"), CodeInternal, "internal error"},
		{Errorf(CodeConflict, "already joined"), CodeConflict, "already joined"},
	} {
		got := toError(tc.err)
		if got.Code != tc.code || got.Message != tc.msg {
			t.Errorf("toError(%v) = %d %q, want %d %q", tc.err, got.Code, got.Message, tc.code, tc.msg)
		}
	}
}
