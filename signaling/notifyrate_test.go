package signaling

import (
	"fmt"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Client notifications count against the connection's 50 messages a
// second (bursts of 100) like requests: one beyond the rate is dropped
// without an answer (a notification has none) and counted as 4029 in
// relayd_rpc_requests_total; a request right after a flood of them is
// refused. (Before: notifications were never limited, so a client could
// flood the server with them.)
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
	// Served in order: the bucket is empty by the time this comes.
	wantError(t, c.send(`{"jsonrpc":"2.0","id":2,"method":"chat.history","params":{}}`), CodeRateLimited, "2")
	dropped := testutil.ToFloat64(ts.Metrics.RPCRequests.WithLabelValues("chat.history", fmt.Sprint(CodeRateLimited)))
	served := testutil.ToFloat64(ts.Metrics.RPCRequests.WithLabelValues("chat.history", "0"))
	if dropped < 2 || served+dropped != flood+1 {
		t.Fatalf("%v served and %v rate limited of %d notifications and 1 request", served, dropped, flood)
	}
}
