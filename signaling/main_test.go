package signaling

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its server and clients; no goroutine may survive them
// (sessions, participants, up and down tracks, pion's own).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
