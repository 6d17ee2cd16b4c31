package sfu

// A reloaded page (PROTOCOL.md 1.1 §5): a held session comes back from a
// page with new PeerConnections (a new DTLS certificate). Its old
// publisher PC closed when the page unloaded; its tracks must not end
// with it. While the session is held, and after its resume until a
// publisher PC connects again, its up tracks keep their layers waiting
// for a new source (KeepOnSourceEnd) instead of ending. The new page's
// offer gets a new publisher PC (publisherReplaced) whose incoming tracks
// become the new sources of the existing up tracks, matched by kind and
// m-line order (and rid): the track ids stay, and each layer's sequence
// numbers and timestamps are shifted to continue the old source's
// (rebaseLayer), so every down track keeps its SSRC and continues its
// numbers from the new source's first keyframe.

import (
	"strings"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// sourceLinger is how long a 1.1 publisher's track whose PC is gone waits
// for its session to be held before it ends: a page that unloads closes
// its PCs and its socket at once, and the server may see the PC go
// first.
const sourceLinger = 2 * time.Second

// A lingerer is a Source that says how long its track waits for a new
// source once it ended (0: it ends at once).
type lingerer interface{ linger() time.Duration }

// KeepOnSourceEnd makes a layer whose source ends wait for a new one
// (ReplaceSource) instead of ending the track (on), or ends the waiting
// (off): a layer without a new source then ends (after its source's
// linger), and the track with its last layer.
func (t *UpTrack) KeepOnSourceEnd(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keep = on
	if on {
		t.cut = false
	}
	t.wakeLocked()
}

// EndOnSourceEnd ends the waiting and the lingering: a layer whose source
// ended ends now (its publisher closes).
func (t *UpTrack) EndOnSourceEnd() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keep, t.cut = false, true
	t.wakeLocked()
}

// wakeLocked wakes the layers waiting for a source; t.mu is held.
func (t *UpTrack) wakeLocked() {
	if t.wake != nil {
		close(t.wake)
		t.wake = nil
	}
}

// ReplaceSource makes src the source of layer rid ("" for a track that
// is not simulcast) and asks it for a keyframe: the layer's reader
// continues from it. run is true when the layer never had a source: the
// caller then runs RunLayer(slot). ok is false when the track has ended,
// is a relayed copy, or has no such layer.
func (t *UpTrack) ReplaceSource(rid string, src Source) (slot int, run, ok bool) {
	t.mu.Lock()
	slot = t.layerOfRID(rid)
	if t.closed || t.origin != nil || slot < 0 {
		t.mu.Unlock()
		return -1, false, false
	}
	l := t.layers[slot]
	run = l.source() == nil
	l.src.Store(&sourceBox{src})
	l.lastKeyframeReq.Store(0) // the new source has not been asked yet
	if run {
		t.readers++
	}
	t.wakeLocked()
	t.mu.Unlock()
	t.RequestLayerKeyframe(slot)
	return slot, run, true
}

// nextSource is layer l's reader's wait once its source src ended: the
// source that replaced it, or nil when the layer ends (not kept, or the
// track closed). Only l's reader calls it.
func (t *UpTrack) nextSource(l *upLayer, src Source) Source {
	var until <-chan time.Time
	if lg, ok := src.(lingerer); ok {
		if d := lg.linger(); d > 0 {
			tm := time.NewTimer(d)
			defer tm.Stop()
			until = tm.C
		}
	}
	for {
		t.mu.Lock()
		if cur := l.source(); cur != src {
			t.mu.Unlock()
			l.rebase = true
			return cur
		}
		if t.closed || (!t.keep && (until == nil || t.cut)) {
			t.mu.Unlock()
			return nil
		}
		if t.wake == nil {
			t.wake = make(chan struct{})
		}
		ch := t.wake
		t.mu.Unlock()
		select {
		case <-ch:
		case <-until:
			until = nil
		}
	}
}

// rebaseLayer shifts a new source's numbers, from its first packet
// forwarded (l.hdr, a keyframe start for video), to continue the layer's:
// that packet's extended sequence number follows the newest one, and its
// timestamp the newest one's by the time elapsed since it arrived. Only
// l's reader calls it.
func (t *UpTrack) rebaseLayer(l *upLayer) {
	l.rebase = false
	hi, ok := l.unwrap.Highest()
	l.unwrap = SeqUnwrapper{}
	if !ok {
		l.extShift, l.tsShift = 0, 0
		return
	}
	l.extShift = rebaseShift(hi+l.extShift, l.hdr.SequenceNumber)
	var elapsed int64
	if at := l.lastAt.Load(); at != 0 {
		elapsed = (Now() - at) * int64(t.codec.ClockRate) / int64(time.Second)
	}
	l.tsShift = l.lastTS + uint32(min(max(elapsed, 1), 1<<30)) - l.hdr.Timestamp
}

// rebaseShift is the shift added to a fresh SeqUnwrapper's numbers so
// that a new source's first packet, sequence number seq, gets the
// extended number right after newest.
func rebaseShift(newest uint64, seq uint16) uint64 {
	return newest + 1 - (1<<16 + uint64(seq))
}

// SameDTLS reports whether offer keeps the DTLS certificate of prev, the
// PC's current remote description (its a=fingerprint lines): a page that
// reloaded has a new certificate, and its offer cannot be applied to the
// old PC. Without a fingerprint on either side it reports true.
func SameDTLS(prev, offer string) bool {
	a, b := fingerprints(prev), fingerprints(offer)
	return a == "" || b == "" || a == b
}

// fingerprints returns the description's a=fingerprint values, sorted by
// appearance and joined (session and media level alike).
func fingerprints(desc string) string {
	var out []string
	for _, line := range strings.Split(desc, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:"); ok {
			out = append(out, strings.ToLower(strings.TrimSpace(v)))
		}
	}
	if len(out) == 0 {
		return ""
	}
	// One certificate per PC: every m-line repeats it.
	return out[0]
}

// pcGone reports whether pc can no longer carry media: closed or
// failed, or its DTLS closed by the peer (a page closing its PC says so;
// pion's connection state stays connected while ICE is).
func pcGone(pc *webrtc.PeerConnection) bool {
	switch pc.ConnectionState() {
	case webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed:
		return true
	}
	return pc.SCTP().Transport().State() == webrtc.DTLSTransportStateClosed
}

// sendMids returns the mids of desc's m-lines that send media to us, by
// kind, in m-line order.
func sendMids(desc string) map[string][]string {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(desc); err != nil {
		return nil
	}
	out := map[string][]string{}
	for _, m := range d.MediaDescriptions {
		mid, _ := m.Attribute("mid")
		if mid == "" {
			continue
		}
		if _, recvonly := m.Attribute("recvonly"); recvonly {
			continue
		}
		if _, inactive := m.Attribute("inactive"); inactive {
			continue
		}
		kind := m.MediaName.Media
		out[kind] = append(out[kind], mid)
	}
	return out
}

// MatchMids maps the mids of a new offer to the mids of the old one they
// take over: the i-th m-line of a kind that sends, to the old one's i-th
// of that kind.
func MatchMids(oldOffer, newOffer string) map[string]string {
	old, cur := sendMids(oldOffer), sendMids(newOffer)
	out := map[string]string{}
	for kind, mids := range cur {
		for i, mid := range mids {
			if i < len(old[kind]) {
				out[mid] = old[kind][i]
			}
		}
	}
	return out
}
