package sfu

import (
	"fmt"
	"unicode/utf8"

	"github.com/pion/sdp/v3"
)

// Structural limits of the SDP a client sends: its publisher offer and its
// answer to a subscriber offer. They are far above what a real client
// sends, and small enough that the answer pion writes to the largest offer
// allowed fits one 64 KiB signaling frame with room to spare
// (signaling's TestLargestOfferAnswerFits builds that offer).
//
// What a real publisher sends, for scale: a browser publishing camera and
// microphone plus a screen share with its audio offers 4 m-lines. Chrome's
// offer for that, with a 3-layer simulcast camera, is ~10 KB and lists 62
// payload types (8 per audio m-line, 23 per video m-line: every codec
// variant and its RTX). Simulcast adds a=rid lines, not m-lines. The JS
// client (web/sdk) adds one m-line per track it publishes.
//
// Why each limit exists: pion's answer has one section per offered m-line
// (~250 bytes each, even for a 40-byte m-line), repeats every accepted
// format with its rtpmap, fmtp and feedback lines (a single
// "a=rtcp-fb:* ..." line in the offer becomes one line per format in the
// answer, up to ~100 bytes per format), and echoes mids and rids (twice:
// a=mid and the BUNDLE group, a=rid and a=simulcast). Everything else it
// echoes costs the offer as much as the answer.
const (
	// MaxOfferBytes bounds an offer's size as it travels in a JSON frame
	// (escapes counted: see jsonLen): 3x the ~10.5 KB of Chrome's 4
	// m-line simulcast offer. The answer echoes at most this much of it.
	MaxOfferBytes = 32 << 10
	// MaxMediaSections bounds the m-lines of an offer: 4x a browser
	// publisher's 4. Each costs a transceiver (and its goroutines) and an
	// answer section: 500 m-lines made a 119 KB answer.
	MaxMediaSections = 16
	// MaxFormats bounds the payload types listed on all m-lines of an
	// offer together: 2x Chrome's 62. Each accepted one costs up to ~100
	// bytes of feedback lines in the answer, whatever the offer spent.
	MaxFormats = 128
	// maxTagLen bounds a mid or rid: twice the 16 bytes the one-byte RTP
	// header extension carrying them holds (RFC 8285). Browsers use 1-3
	// characters.
	maxTagLen = 32
	// maxRIDs bounds the a=rid lines of one m-line: the contract's
	// simulcast has 1-3 layers, and browsers send that many.
	maxRIDs = 8
	// maxSDPCandidates bounds the a=candidate lines of one description,
	// as maxQueuedCandidates bounds trickled ones: each is an address the
	// server sends connectivity checks to. Browsers put none or a handful
	// in a description.
	maxSDPCandidates = maxQueuedCandidates
)

// sdpLimits are the structural limits one kind of description must meet.
type sdpLimits struct {
	maxBytes    int // JSON-escaped size; 0: no limit beyond the frame's
	minMedia    int
	maxMedia    int
	maxFormats  int // 0: no limit
	wantMLineOf int // >0: exactly this many m-lines (an answer: its offer's)
}

// offerLimits are a publisher offer's limits.
var offerLimits = sdpLimits{maxBytes: MaxOfferBytes, minMedia: 1, maxMedia: MaxMediaSections, maxFormats: MaxFormats}

// ValidateSDP reports whether s is an acceptable publisher offer: it
// parses (the contract's "bad SDP") and is within the limits above, once
// the simulcast streams it asks to receive are taken out (recvrids.go). It
// changes nothing, so callers check it before any state changes. The
// error wraps ErrBadSDP.
func ValidateSDP(s string) error {
	return checkSDP(withoutRecvRIDs(s), offerLimits)
}

// ValidateAnswer reports whether s is an acceptable answer to an offer of
// offerMedia m-lines: it parses, and has exactly as many m-lines as its
// offer (RFC 3264 section 6). Its size is bounded by the frame; the
// server's offer bounds its m-lines. The error wraps ErrBadSDP.
func ValidateAnswer(s string, offerMedia int) error {
	return checkSDP(s, sdpLimits{minMedia: 1, maxMedia: offerMedia, wantMLineOf: offerMedia})
}

// checkSDP parses s and checks it against lim. It is a pure function.
func checkSDP(s string, lim sdpLimits) error {
	if lim.maxBytes > 0 {
		// Checked before parsing: a frame holds 64 KiB of anything.
		if n := jsonLen(s); n > lim.maxBytes {
			return fmt.Errorf("%w: %d bytes, at most %d", ErrBadSDP, n, lim.maxBytes)
		}
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	n := len(d.MediaDescriptions)
	switch {
	case lim.wantMLineOf > 0 && n != lim.wantMLineOf:
		return fmt.Errorf("%w: %d m-lines, want %d as in the offer", ErrBadSDP, n, lim.wantMLineOf)
	case n < lim.minMedia:
		return fmt.Errorf("%w: no m-line", ErrBadSDP)
	case n > lim.maxMedia:
		return fmt.Errorf("%w: %d m-lines, at most %d", ErrBadSDP, n, lim.maxMedia)
	}
	cands := countCandidates(d.Attributes)
	formats := 0
	for i, m := range d.MediaDescriptions {
		formats += len(m.MediaName.Formats)
		cands += countCandidates(m.Attributes)
		if err := checkTags(m); err != nil {
			return fmt.Errorf("%w: m-line %d: %v", ErrBadSDP, i, err)
		}
	}
	if lim.maxFormats > 0 && formats > lim.maxFormats {
		return fmt.Errorf("%w: %d payload types, at most %d", ErrBadSDP, formats, lim.maxFormats)
	}
	if cands > maxSDPCandidates {
		return fmt.Errorf("%w: %d candidates, at most %d", ErrBadSDP, cands, maxSDPCandidates)
	}
	return nil
}

// checkTags checks an m-line's mid and rids, which an answer echoes.
func checkTags(m *sdp.MediaDescription) error {
	rids := 0
	for _, a := range m.Attributes {
		switch a.Key {
		case sdp.AttrKeyMID:
			if len(a.Value) == 0 || len(a.Value) > maxTagLen {
				return fmt.Errorf("mid of %d characters, want 1-%d", len(a.Value), maxTagLen)
			}
		case "rid":
			rids++
			if rids > maxRIDs {
				return fmt.Errorf("more than %d rids", maxRIDs)
			}
			id := a.Value
			for i := 0; i < len(id); i++ {
				if id[i] == ' ' {
					id = id[:i]
					break
				}
			}
			if !validRID(id) {
				return fmt.Errorf("rid %.40q: want 1-%d of [A-Za-z0-9_-] (RFC 8851)", id, maxTagLen)
			}
		}
	}
	return nil
}

// validRID reports whether id is an RFC 8851 rid-id of at most maxTagLen.
func validRID(id string) bool {
	if len(id) == 0 || len(id) > maxTagLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func countCandidates(attrs []sdp.Attribute) int {
	n := 0
	for _, a := range attrs {
		if a.Key == "candidate" {
			n++
		}
	}
	return n
}

// jsonLen is the length of s as encoding/json writes it, quotes excluded:
// how much of a signaling frame it takes. An SDP echoes parts of its
// offer, so what counts is their encoded size: "<" takes 6 bytes.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6 // \u00XX
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
