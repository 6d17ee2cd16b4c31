package sfu

import "testing"

// Every PC's "ice" logger is the same one; a scope of its own gets its own.
func TestPionLoggersSharedPerScope(t *testing.T) {
	f := newPionLoggers()
	if f.NewLogger("ice") != f.NewLogger("ice") {
		t.Error("two loggers for scope ice")
	}
	if f.NewLogger("ice") == f.NewLogger("dtls") {
		t.Error("scopes ice and dtls share a logger")
	}
}
