package signaling

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"regexp"
)

// The protocol versions a session may be served (PROTOCOL.md 1.1 §0).
const (
	v10 = "1.0"
	v11 = "1.1"
)

// versionForm is a version's form: major.minor, decimal, no sign, no
// leading zero (any length: a version too long for an int is still a
// higher one).
var versionForm = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// servedVersion is the version a join's version param is served as:
// absent (or null) "1.0"; "1.0" and "1.1" as asked; a higher version this
// server does not know, "1.1" (the newest it speaks). Anything else is
// malformed (-32602): not a major.minor string, or below 1.0.
func servedVersion(asked *string) (string, *Error) {
	if asked == nil {
		return v10, nil
	}
	m := versionForm.FindStringSubmatch(*asked)
	if m == nil {
		return "", Errorf(CodeInvalidParams, `invalid params: version must be a "major.minor" string such as "1.1"`)
	}
	switch major, minor := m[1], m[2]; {
	case major == "0":
		return "", Errorf(CodeInvalidParams, "invalid params: version %s is not served (1.0 and 1.1 are)", *asked)
	case major == "1" && minor == "0":
		return v10, nil
	}
	return v11, nil
}

// ICEServer is an RTCIceServer of a join result's iceServers (PROTOCOL.md
// 1.1 §4): TURN, once the server runs one (until then the list is empty).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// iceServers returns the ICE servers for a session of those claims: none
// unless Params.ICEServers says otherwise (never nil: it encodes as []).
func (s *Server) iceServers(c *Claims) []ICEServer {
	if s.iceFn == nil {
		return []ICEServer{}
	}
	list := s.iceFn(c)
	if list == nil {
		list = []ICEServer{}
	}
	return list
}

// newSessionID returns a session id: "SE_" and 16 hex digits (64 random
// bits).
func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "SE_" + hex.EncodeToString(b[:])
}

// newResumeToken returns an opaque resume token: "rt." and 256 random bits
// in unpadded base64url, 46 characters (the contract allows 256). Nothing
// takes it back yet: resume comes with issue 19.
func newResumeToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "rt." + base64.RawURLEncoding.EncodeToString(b[:])
}
