package recorder

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine (the recorder's, or ebml-go's
// sorter and writer) outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
