package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// scrape returns the text exposition of m's handler.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: status %d", rec.Code)
	}
	body, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return string(body)
}

func TestNewTwice(t *testing.T) {
	// Each New has its own registry: a second call must not panic with
	// "duplicate metrics collector registration".
	a, b := New(), New()
	a.WSConnections.Inc()
	if strings.Contains(scrape(t, b), "relayd_ws_connections 1") {
		t.Errorf("second Metrics sees the first one's gauge")
	}
	if !strings.Contains(scrape(t, a), "relayd_ws_connections 1") {
		t.Errorf("first Metrics lost its gauge")
	}
}

func TestScrapeHasEveryMetric(t *testing.T) {
	m := New()
	// RPCRequests has no pre-created children, so it is only exposed
	// once used.
	m.RPCRequests.WithLabelValues("join", "0").Inc()
	m.ForwardLatency.Observe(30e-6)
	m.JoinLatency.Observe(0.02)
	body := scrape(t, m)

	for _, name := range []string{
		"relayd_rooms",
		"relayd_participants",
		"relayd_tracks",
		"relayd_packets_in_total",
		"relayd_bytes_in_total",
		"relayd_packets_out_total",
		"relayd_bytes_out_total",
		"relayd_nacks_total",
		"relayd_retransmits_total",
		"relayd_plis_total",
		"relayd_packets_dropped_total",
		"relayd_forward_latency_seconds",
		"relayd_join_latency_seconds",
		"relayd_ws_connections",
		"relayd_rpc_requests_total",
		"relayd_invitations_total",
		"relayd_invitation_accept_seconds",
		"go_goroutines",
		"process_start_time_seconds",
	} {
		if !strings.Contains(body, "\n# TYPE "+name+" ") {
			t.Errorf("scrape lacks %s", name)
		}
	}
}

func TestPrecreatedSeries(t *testing.T) {
	body := scrape(t, New())
	for _, series := range []string{
		`relayd_rooms{status="waiting_reconnect"} 0`,
		`relayd_participants{role="user"} 0`,
		`relayd_tracks{kind="audio"} 0`,
		`relayd_packets_out_total{kind="video"} 0`,
		`relayd_nacks_total{direction="from_subscriber"} 0`,
		`relayd_retransmits_total{result="miss"} 0`,
		`relayd_plis_total{direction="to_publisher"} 0`,
		`relayd_packets_dropped_total{kind="audio",reason="stale"} 0`,
		`relayd_packets_dropped_total{kind="video",reason="wait_keyframe"} 0`,
		`relayd_forward_latency_seconds_bucket{le="0.1024"} 0`,
		`relayd_join_latency_seconds_bucket{le="5"} 0`,
		`relayd_invitations_total{status="pending"} 0`,
		`relayd_invitations_total{status="left"} 0`,
		`relayd_invitation_accept_seconds_bucket{le="1800"} 0`,
	} {
		if !strings.Contains(body, "\n"+series+"\n") {
			t.Errorf("scrape lacks %s", series)
		}
	}
}
