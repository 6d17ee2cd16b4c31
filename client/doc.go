// Package client is a Go client for relayd's wire contract (docs: PROTOCOL.md,
// "Signaling: JSON-RPC 2.0 over WebSocket"). The server's integration tests,
// the load tester and other tools use it to behave like a browser would.
//
// A Client is one WebSocket session (Dial) with up to two PeerConnections:
//
//   - the publisher PC, created by Publish: the client offers, the server
//     answers ("offer" request, result {sdp});
//   - the subscriber PC, created when the server sends its first "offer"
//     request: the server offers, the client answers with the request's result.
//
// Candidates are trickled in both directions with target "publisher" or
// "subscriber" (always naming the client's PC). Local candidates are held back
// until the offer (publisher) or the answer (subscriber) has been written;
// remote candidates are queued until that PC has a remote description.
//
// Every remote track is read by a goroutine that counts packets, detects
// keyframes and measures end-to-end latency from the send timestamp that
// SyntheticPublisher embeds in every payload (see RemoteTrack).
//
// Loopback only: by default every PeerConnection uses LoopbackSettingEngine,
// which gathers only loopback UDP4 host candidates, ignores remote candidates
// that are not loopback and disables mDNS, so no media leaves the machine.
//
// Files: rpc.go (JSON-RPC over WebSocket), client.go (Dial, Close, the
// session), peer.go (PeerConnections, trickle, subscriber offers),
// publish.go (Publish, Unpublish), api.go (webrtc.API, codecs,
// SettingEngine), drop.go (the receive-drop interceptor), receiver.go
// (RemoteTrack), latency.go (latency histogram), media.go
// (SyntheticPublisher), methods.go (typed wrappers of the contract's
// methods), types.go (contract objects).
package client
