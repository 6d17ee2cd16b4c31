package bench

import (
	"os"
	"testing"

	"github.com/relaysfu/relayd/netlab"
)

// TestMain lets the lab tests re-execute this test binary as their
// children (the publisher and viewer groups inside namespaces).
func TestMain(m *testing.M) {
	RegisterLabChildren()
	netlab.MaybeRunChild() // a re-executed child never returns from here
	os.Exit(m.Run())
}
