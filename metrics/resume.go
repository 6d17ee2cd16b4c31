package metrics

import "github.com/prometheus/client_golang/prometheus"

// Resume holds the instruments of session resume and ICE restarts
// (PROTOCOL.md 1.1 §5): how often a dropped session comes back, how long
// it was held, and how the ICE restarts that bring its media back end.
type Resume struct {
	// Holds counts 1.1 sessions held after their socket was lost.
	Holds prometheus.Counter
	// Outcomes counts how holds and resume attempts end, by outcome:
	// resumed (a held or open session taken over), expired (the grace
	// ran out: the v1 leave), ended (a kick, the room's end or a fresh
	// join ended it while held), refused (a resume= join that resumed
	// nothing: unknown, used, expired or another's token: a fresh join),
	// bad_seq (lastSeq past the session's seq: -32602, still held).
	Outcomes *prometheus.CounterVec
	// HoldSeconds is how long a session was held, by how the hold ended:
	// resumed|expired|ended.
	HoldSeconds *prometheus.HistogramVec
	// ICERestarts counts ICE restarts by PeerConnection (publisher: the
	// client's restart offer; subscriber: the server's restart offer at
	// a resume) and outcome: connected (the PC connected again) or
	// failed (it failed or closed first).
	ICERestarts *prometheus.CounterVec
	// ICERestartSeconds is the time from an ICE restart to the PC being
	// connected again, by PeerConnection.
	ICERestartSeconds *prometheus.HistogramVec
	// TokenRefreshes counts token.refresh notifications sent.
	TokenRefreshes prometheus.Counter
	// PCReplaced counts a resumed session's PeerConnections replaced by
	// new ones (a reloaded page's), by PeerConnection.
	PCReplaced *prometheus.CounterVec
}

// The fixed label values of Resume.
var (
	resumeOutcomes = []string{"resumed", "expired", "ended", "refused", "bad_seq"}
	holdOutcomes   = []string{"resumed", "expired", "ended"}
	icePCs         = []string{"publisher", "subscriber"}
	iceOutcomes    = []string{"connected", "failed"}
)

func newResume(reg *prometheus.Registry) *Resume {
	r := &Resume{
		Holds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relayd_session_holds_total",
			Help: "1.1 sessions held after losing their socket (without leave, kick or room end).",
		}),
		Outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_session_resumes_total",
			Help: "Ends of holds and resume attempts by outcome: resumed, expired, ended, refused, bad_seq.",
		}, []string{"outcome"}),
		HoldSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "relayd_session_hold_seconds",
			Help: "How long a session was held, by how the hold ended.",
			// 100 ms to ~51 s: a reload comes back in about a second, a
			// network change in a few; the default grace (30 s) caps it.
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 10),
		}, []string{"outcome"}),
		ICERestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_ice_restarts_total",
			Help: "ICE restarts by PeerConnection and outcome (connected, failed).",
		}, []string{"pc", "outcome"}),
		ICERestartSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "relayd_ice_restart_seconds",
			Help: "Time from an ICE restart to its PeerConnection connected again.",
			// 10 ms to ~10 s: checks over a working path take a few round
			// trips; past 10 s the restart has as good as failed.
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 11),
		}, []string{"pc"}),
		TokenRefreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relayd_token_refreshes_total",
			Help: "token.refresh notifications sent (PROTOCOL.md 1.1 §6).",
		}),
		PCReplaced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relayd_pc_replaced_total",
			Help: "A resumed session's PeerConnections replaced by a reloaded page's new ones, by PeerConnection.",
		}, []string{"pc"}),
	}
	reg.MustRegister(r.Holds, r.Outcomes, r.HoldSeconds, r.ICERestarts, r.ICERestartSeconds, r.TokenRefreshes, r.PCReplaced)
	precreate(r.Outcomes, resumeOutcomes)
	for _, o := range holdOutcomes {
		r.HoldSeconds.WithLabelValues(o)
	}
	for _, pc := range icePCs {
		r.PCReplaced.WithLabelValues(pc)
		r.ICERestartSeconds.WithLabelValues(pc)
		for _, o := range iceOutcomes {
			r.ICERestarts.WithLabelValues(pc, o)
		}
	}
	return r
}
