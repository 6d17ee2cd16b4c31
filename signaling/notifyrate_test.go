package signaling

import (
	"fmt"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Client notifications have a budget of their own, the requests' size (50
// a second, bursts of 100): one beyond it is dropped without an answer (a
// notification has none) and counted as 4029 in relayd_rpc_requests_total,
// so a client cannot flood the server with them; and a flood of them
// never uses up the requests' budget (PROTOCOL.md: 50 *requests* a second),
// so the request right after it is served.
func TestNotificationsRateLimited(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dialRaw(t, ts.token(t, "alice", "r1", "host"))
	if r := c.send(`{"jsonrpc":"2.0","id":1,"method":"join"}`); r.Error != nil {
		t.Fatal(r.Error)
	}
	const flood = 3 * requestBurst
	for range flood {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","method":"chat.history","params":{}}`)); err != nil {
			t.Fatal(err)
		}
	}
	// Served in order: the flood is through by the time this comes.
	if r := c.send(`{"jsonrpc":"2.0","id":2,"method":"chat.history","params":{}}`); r.Error != nil {
		t.Fatalf("the request after a flood of notifications: %+v", r.Error)
	}
	dropped := testutil.ToFloat64(ts.Metrics.RPCRequests.WithLabelValues("chat.history", fmt.Sprint(CodeRateLimited)))
	served := testutil.ToFloat64(ts.Metrics.RPCRequests.WithLabelValues("chat.history", "0"))
	if dropped < flood-2*requestBurst || served+dropped != flood+1 {
		t.Fatalf("%v served and %v rate limited of %d notifications and 1 request", served, dropped, flood)
	}
}
