package invitations

import (
	"context"
	"time"
)

// sweepInterval is how often Run looks for due invitations. Accept,
// Reject, Cancel, Get and List expire a due invitation themselves, so the
// sweep only decides how soon the host and the invitee are told
// (OnChange, then invitation.updated). A second late is unnoticeable
// against a TTL of minutes, and a sweep costs one read of the pending
// index.
const sweepInterval = time.Second

// Run expires due pending invitations (OnChange for each), once at once
// (those that expired while the server was down) and then every
// sweepInterval, until ctx is done. The owner runs it in a goroutine and
// waits for it to return before closing the store.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		m.sweep()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep expires every due pending invitation.
func (m *Manager) sweep() {
	expired, err := m.expireDue(Filter{Status: StatusPending})
	if err != nil {
		m.log.Error("invitations: sweep failed", "err", err)
	}
	if len(expired) > 0 {
		m.log.Debug("invitations: swept", "expired", len(expired))
	}
}
