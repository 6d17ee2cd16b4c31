package rooms

import (
	"fmt"
	"strings"
	"testing"

	"github.com/relaysfu/relayd/invitations"
)

// The invitations Manager's messages end in their sentinel; the client's
// message says each kind's word once (bugs.md 12: inviting yourself said
// "invalid params: user: the host cannot invite themselves: invalid
// params").
func TestInvitationErrorsSayTheirWordOnce(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("user: the host cannot invite themselves: %w", invitations.ErrInvalid),
			"invalid params: user: the host cannot invite themselves"},
		{fmt.Errorf("only the host of show may invite: %w", invitations.ErrForbidden),
			"forbidden: only the host of show may invite"},
		{fmt.Errorf("only the invitee may accept invitation IN_1: %w", invitations.ErrForbidden),
			"forbidden: only the invitee may accept invitation IN_1"},
		{fmt.Errorf("the stage is full (8 co-hosts): %w", invitations.ErrStageFull),
			"stage full: the stage is full (8 co-hosts)"},
		{fmt.Errorf("invitation IN_1 is accepted, not pending: %w", invitations.ErrConflict),
			"conflict: invitation IN_1 is accepted, not pending"},
		{fmt.Errorf("invitation IN_1: %w", invitations.ErrNotFound), "invitation IN_1: not found"},
		{fmt.Errorf("bob is not a co-host of show: %w", invitations.ErrNotFound), "bob is not a co-host of show: not found"},
		{invitations.ErrInvalid, "invalid params"},
		{invitations.ErrStageFull, "stage full"},
		{invitations.ErrNotFound, "not found"},
		// A message already starting with the word keeps it once.
		{fmt.Errorf("forbidden here: %w", invitations.ErrForbidden), "forbidden here"},
	} {
		got := fromInvitations(tc.err).Error()
		if got != tc.want {
			t.Errorf("%q: message %q, want %q", tc.err, got, tc.want)
		}
		for _, word := range []string{"invalid params", "forbidden", "stage full", "conflict"} {
			if n := strings.Count(got, word); n > 1 {
				t.Errorf("%q says %q %d times", got, word, n)
			}
		}
	}
}
