// Package webhooks tells outside systems what happens in relayd: it POSTs
// signed JSON events to the configured URLs, at least once and in order per
// room, surviving restarts.
//
// Emit writes the event into an outbox, a bbolt file (<Dir>/webhooks.db)
// whose transactions are fsync'd before Emit returns. Run delivers from the
// outbox: one lane per (destination URL, room), each lane strictly in
// order, one request in flight per lane, so a failing room never holds up
// another room, and a failing URL never holds up another URL. A lane's
// failed head is retried with exponential backoff and jitter; later events
// of that room wait behind it. An event leaves a URL's outbox when that URL
// answered 2xx; a crash between the answer and that removal sends it again
// (same event id: receivers dedupe on it).
//
// Goroutines: Run owns a fixed pool of workers (perURL per URL) and stops
// them before returning; there is no goroutine per event.
//
// The wire format and how to verify a request are in docs/webhooks.md.
package webhooks
