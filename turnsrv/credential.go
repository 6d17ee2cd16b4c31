package turnsrv

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST scheme is HMAC-SHA1 (browsers and coturn use it)
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// The TURN REST API scheme (draft-uberti-behave-turn-rest, as coturn's
// use-auth-secret): the username is "<unix expiry>:<identity>" and the
// password ("credential" in an RTCIceServer) is
// base64(HMAC-SHA1(secret, username)). Anyone holding the secret can mint
// them, so the TURN server keeps no user list: it recomputes the HMAC.

// Refusal reasons of a credential (the reason label of
// relayd_turn_refusals_total).
const (
	reasonMalformed = "malformed" // not "<unix expiry>:<identity>"
	reasonExpired   = "expired"   // past its expiry
	reasonForged    = "forged"    // MESSAGE-INTEGRITY does not match the secret's HMAC
)

// maxUsername bounds a username (STUN allows 513 bytes); longer ones are
// refused before any HMAC is computed.
const maxUsername = 513

// Credential returns the TURN username and credential (password) of
// identity, valid until expiry (rounded up to the second, so that the
// credential outlives expiry by less than one second rather than falling
// short of it).
func Credential(secret []byte, identity string, expiry time.Time) (username, credential string) {
	exp := expiry.Unix()
	if expiry.After(time.Unix(exp, 0)) {
		exp++
	}
	username = strconv.FormatInt(exp, 10) + ":" + identity
	return username, password(secret, username)
}

// password is base64(HMAC-SHA1(secret, username)).
func password(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// checkUsername decides on a username presented at now: its password
// (what the client must have keyed MESSAGE-INTEGRITY with) and "", or the
// reason it is refused. A username is valid through its expiry second.
// Whether the client really holds the password is pion's check of
// MESSAGE-INTEGRITY, with the key made from it.
func checkUsername(secret []byte, username string, now time.Time) (pass, reason string) {
	if len(username) > maxUsername {
		return "", reasonMalformed
	}
	expS, identity, ok := strings.Cut(username, ":")
	if !ok || identity == "" || expS == "" || expS[0] == '+' || expS[0] == '-' {
		return "", reasonMalformed
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil {
		return "", reasonMalformed
	}
	if now.Unix() > exp {
		return "", reasonExpired
	}
	return password(secret, username), ""
}
