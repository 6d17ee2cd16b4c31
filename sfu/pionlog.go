package sfu

import (
	"sync"

	"github.com/pion/logging"
)

// pionLoggers is the one pion LoggerFactory of all the server's
// PeerConnections (both APIs), handing out one logger per scope ("pc",
// "ice", "dtls", "srtp", ...) instead of a new one per call. pion asks
// its factory for a logger per component of every PC (a dozen per PC),
// and the default factory builds each time a DefaultLeveledLogger with
// five log.Loggers: ~8 KiB per subscriber PC that only ever says the
// same as its neighbours'. The loggers are pion's default ones (stderr,
// levels from PION_LOG_*), which are safe for concurrent use; the scopes
// are constant strings in pion, so the map stays small.
type pionLoggers struct {
	base logging.LoggerFactory

	mu      sync.Mutex
	byScope map[string]logging.LeveledLogger // guarded by mu
}

func newPionLoggers() *pionLoggers {
	return &pionLoggers{base: logging.NewDefaultLoggerFactory(), byScope: map[string]logging.LeveledLogger{}}
}

// NewLogger implements logging.LoggerFactory.
func (f *pionLoggers) NewLogger(scope string) logging.LeveledLogger {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.byScope[scope]
	if !ok {
		l = f.base.NewLogger(scope)
		f.byScope[scope] = l
	}
	return l
}
