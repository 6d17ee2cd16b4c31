package relay

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test shuts its nodes down: no goroutine of theirs may be left.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
