package client

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestNetDialContext: Options.NetDialContext opens the WebSocket's
// connection (the lab binds each viewer's to its own address with it).
func TestNetDialContext(t *testing.T) {
	_, fs := startMiniSFU(t)
	var calls atomic.Int32
	var d net.Dialer
	c := dialTest(t, fs.URL, Options{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		calls.Add(1)
		return d.DialContext(ctx, network, addr)
	}})
	if _, err := c.Join(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Errorf("NetDialContext called %d times, want 1", calls.Load())
	}
}
