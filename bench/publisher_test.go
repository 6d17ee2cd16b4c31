package bench

import (
	"errors"
	"fmt"
	"testing"

	"github.com/relaysfu/relayd/client"
)

func TestUnsupported(t *testing.T) {
	err := unsupported(fmt.Errorf("call: %w", &client.RPCError{Code: client.CodeMethodNotFound, Message: "method not found"}), "relays", "relay.start")
	var ue *UnsupportedError
	if !errors.As(err, &ue) || ue.Feature != "relays" {
		t.Fatalf("got %v", err)
	}
	if want := "server does not support relays yet (relay.start answered -32601)"; err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
	if err := unsupported(&client.RPCError{Code: client.CodeForbidden}, "relays", "relay.start"); errors.As(err, &ue) {
		t.Errorf("4003 reported as unsupported: %v", err)
	}
}
