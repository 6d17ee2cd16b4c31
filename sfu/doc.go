// Package sfu is the media plane and the room registry: rooms, participants
// and their two PeerConnections, up tracks (one per published track, with one
// shared packet cache) and down tracks (one per subscriber, with per-subscriber
// SSRC, sequence-number and timestamp rewriting).
//
// It imports nothing from signaling, relay, invitations or bench: those layers
// drive it through plain methods and receive its events through the small
// EventSink interface.
package sfu
