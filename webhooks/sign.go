package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// The request headers.
const (
	HeaderEvent     = "X-Relayd-Event"     // the event type
	HeaderDelivery  = "X-Relayd-Delivery"  // the event id (the same on every retry)
	HeaderSignature = "X-Relayd-Signature" // "sha256=" + hex HMAC-SHA256(secret, body)
	HeaderTimestamp = "X-Relayd-Timestamp" // unix seconds when this attempt was sent (not signed)
)

const signaturePrefix = "sha256="

// Signature returns the X-Relayd-Signature value of body.
func Signature(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return signaturePrefix + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is body's valid X-Relayd-Signature, in
// constant time.
func Verify(secret, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok {
		return false
	}
	mac, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(mac, m.Sum(nil))
}
