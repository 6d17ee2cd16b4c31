package sfu

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// sdpOf builds an offer of n video m-lines with the given payload types
// each; section adds lines to m-line i, session to the session part.
func sdpOf(n int, pts []int, session string, section func(i int) string) string {
	var b strings.Builder
	mids := make([]string, n)
	for i := range mids {
		mids[i] = fmt.Sprint(i)
	}
	b.WriteString("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
	if n > 0 {
		b.WriteString("a=group:BUNDLE " + strings.Join(mids, " ") + "\r\n")
	}
	b.WriteString(session)
	for i := 0; i < n; i++ {
		f := make([]string, len(pts))
		for j, pt := range pts {
			f[j] = fmt.Sprint(pt)
		}
		fmt.Fprintf(&b, "m=video 9 UDP/TLS/RTP/SAVPF %s\r\nc=IN IP4 0.0.0.0\r\na=mid:%d\r\na=sendonly\r\n", strings.Join(f, " "), i)
		for _, pt := range pts {
			fmt.Fprintf(&b, "a=rtpmap:%d VP8/90000\r\n", pt)
		}
		if section != nil {
			b.WriteString(section(i))
		}
	}
	return b.String()
}

func ptRange(from, n int) []int {
	pts := make([]int, n)
	for i := range pts {
		pts[i] = from + i
	}
	return pts
}

func TestValidateSDP(t *testing.T) {
	chrome, err := os.ReadFile("testdata/chrome-publisher.sdp")
	if err != nil {
		t.Fatal(err)
	}
	vp8 := []int{96}
	cand := func(k int) string {
		return fmt.Sprintf("a=candidate:%d 1 udp 2130706431 192.0.2.1 %d typ host\r\n", k, 10000+k)
	}
	// cands puts n candidates on m-line 0 only.
	cands := func(i, n int) string {
		var b strings.Builder
		for k := 1; i == 0 && k <= n; k++ {
			b.WriteString(cand(k))
		}
		return b.String()
	}
	for _, tc := range []struct {
		name string
		sdp  string
		ok   bool
	}{
		{"chrome: camera with 3-layer simulcast, microphone, screen and its audio", string(chrome), true},
		{"one m-line", sdpOf(1, vp8, "", nil), true},
		{"the most m-lines", sdpOf(MaxMediaSections, vp8, "", nil), true},
		{"one m-line too many", sdpOf(MaxMediaSections+1, vp8, "", nil), false},
		{"500 m-lines", sdpOf(500, vp8, "", nil), false},
		{"no m-line", sdpOf(0, nil, "", nil), false},
		{"garbage", "this is not sdp", false},
		{"empty", "", false},
		{"the most payload types", sdpOf(MaxFormats/32, ptRange(96, 32), "", nil), true},
		{"one payload type too many", sdpOf(MaxFormats/32+1, ptRange(96, 32), "", nil), false},
		{"too many payload types on one m-line", sdpOf(1, ptRange(0, MaxFormats+1), "", nil), false},
		{"the largest size", padTo(sdpOf(1, vp8, "", nil), MaxOfferBytes, "x"), true},
		{"one byte too large", padTo(sdpOf(1, vp8, "", nil), MaxOfferBytes+1, "x"), false},
		{"escaped characters count as escaped", padTo(sdpOf(1, vp8, "", nil), MaxOfferBytes+6, "<"), false},
		{"a 32-character mid", strings.Replace(sdpOf(1, vp8, "", nil), "a=mid:0", "a=mid:"+strings.Repeat("m", 32), 1), true},
		{"a 33-character mid", strings.Replace(sdpOf(1, vp8, "", nil), "a=mid:0", "a=mid:"+strings.Repeat("m", 33), 1), false},
		{"an empty mid", strings.Replace(sdpOf(1, vp8, "", nil), "a=mid:0", "a=mid:", 1), false},
		{"eight rids", sdpOf(1, vp8, "", func(int) string { return rids(8, "r") }), true},
		{"nine rids", sdpOf(1, vp8, "", func(int) string { return rids(9, "r") }), false},
		{"a 32-character rid", sdpOf(1, vp8, "", func(int) string { return rids(1, strings.Repeat("r", 31)) }), true},
		{"a 33-character rid", sdpOf(1, vp8, "", func(int) string { return rids(1, strings.Repeat("r", 32)) }), false},
		{"a rid outside RFC 8851", sdpOf(1, vp8, "", func(int) string { return "a=rid:<q> send\r\n" }), false},
		{"a rid with no direction", sdpOf(1, vp8, "", func(int) string { return "a=rid:q\r\n" }), true},
		{"64 candidates, on the session and an m-line", sdpOf(2, vp8, cand(0), func(i int) string { return cands(i, 63) }), true},
		{"65 candidates", sdpOf(2, vp8, cand(0), func(i int) string { return cands(i, 64) }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSDP(tc.sdp)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrBadSDP) {
				t.Fatalf("got %v, want ErrBadSDP", err)
			}
		})
	}
}

// padTo pads an SDP with an attribute line to exactly size JSON-escaped
// bytes (or one more, when the filler's escape does not divide evenly).
func padTo(s string, size int, filler string) string {
	line := "a=x-pad:"
	room := size - jsonLen(s) - jsonLen(line+"\r\n")
	per := jsonLen(filler)
	return s + line + strings.Repeat(filler, (room+per-1)/per) + "\r\n"
}

func rids(n int, prefix string) string {
	var b strings.Builder
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", prefix, i)
		fmt.Fprintf(&b, "a=rid:%s send\r\n", ids[i])
	}
	return b.String()
}

func TestValidateAnswer(t *testing.T) {
	three := sdpOf(3, []int{96}, "", nil)
	for _, tc := range []struct {
		name       string
		answer     string
		offerMedia int
		ok         bool
	}{
		{"as many m-lines as the offer", three, 3, true},
		{"fewer m-lines than the offer", three, 4, false},
		{"more m-lines than the offer", three, 2, false},
		{"no m-line", sdpOf(0, nil, "", nil), 3, false},
		{"garbage", "v=0\r\nnonsense", 3, false},
		// An answer is not held to the offer size limit: a viewer's
		// answer to an offer of many tracks may be large; the frame
		// bounds it.
		{"larger than an offer may be", padTo(three, MaxOfferBytes+100, "x"), 3, true},
		{"offer of more m-lines than an offer may have", sdpOf(40, []int{96}, "", nil), 40, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateAnswer(tc.answer, tc.offerMedia)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrBadSDP) {
				t.Fatalf("got %v, want ErrBadSDP", err)
			}
		})
	}
}

// jsonLen agrees with encoding/json on every kind of character.
func TestJSONLen(t *testing.T) {
	alphabet := []string{"a", "Z", " ", "\r", "\n", "\t", "\b", "\f", "\x00", "\x1f", `"`, `\`, "<", ">", "&",
		"é", "€", "😀", "\u2028", "\u2029", "\xff", "\xe2\x82", "~", "\x7f"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		var b strings.Builder
		for k := rng.IntN(40); k > 0; k-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := b.String()
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := jsonLen(s), len(enc)-2; got != want {
			t.Fatalf("jsonLen(%q) = %d, encoding/json writes %d", s, got, want)
		}
	}
}
