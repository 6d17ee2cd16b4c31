package webhooks

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a worker or scheduler goroutine outlives
// the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
