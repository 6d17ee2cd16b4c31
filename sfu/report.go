package sfu

import (
	"math/rand/v2"
	"time"

	"github.com/pion/rtcp"
)

// Sender reports of a down track, written by the track itself when the
// direct send path is on (directsend.go): pion's report interceptor only
// sees what goes through pion's write path. A browser needs them to
// lip-sync a participant's audio and video (the NTP time of an RTP
// timestamp) and shows their counts in its stats.
//
// The mapping is pion's interceptor's: the RTP timestamp of the last media
// packet sent, advanced by the clock rate for the time since it was sent.
// Once a second per track, as pion's interceptor and Chrome send them;
// the first is due at a random point of the first second, so that the
// tracks of a room that joined together do not report together.
const reportInterval = time.Second

// reporter is a down track's sender report state, owned by its writer.
type reporter struct {
	packets, octets uint32
	lastTS          uint32
	lastAt          int64 // Now() when the packet of lastTS was sent; 0: none yet
	due             int64
}

// count records one packet written: its payload octets (not padding).
func (r *reporter) count(payload int) {
	r.packets++
	r.octets += uint32(payload)
}

// media records the RTP timestamp of a media packet (not a retransmission)
// sent at now.
func (r *reporter) media(ts uint32, now int64) {
	r.lastTS, r.lastAt = ts, now
	if r.due == 0 {
		r.due = now + rand.Int64N(int64(reportInterval))
	}
}

// report returns the sender report due at now, and whether one is.
// wall is the wall clock at now (the report's NTP time).
func (r *reporter) report(ssrc uint32, clock int64, now int64, wall time.Time) (rtcp.SenderReport, bool) {
	if r.lastAt == 0 || now < r.due {
		return rtcp.SenderReport{}, false
	}
	r.due = now + int64(reportInterval)
	elapsed := now - r.lastAt
	return rtcp.SenderReport{
		SSRC:        ssrc,
		NTPTime:     ntpTime(wall),
		RTPTime:     r.lastTS + uint32(elapsed*clock/int64(time.Second)),
		PacketCount: r.packets,
		OctetCount:  r.octets,
	}, true
}

// ntpTime is t in NTP's 32.32 fixed point, seconds since 1900.
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800 // seconds from 1900 to 1970
	s := uint64(t.Unix()) + unixToNTP
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return s<<32 | frac
}

// sendReport writes d's sender report if one is due (its writer calls it
// after a media packet). The report goes through pion's SRTCP.
func (d *DownTrack) sendReport(b *binding, now int64) {
	if now < d.rep.due {
		return
	}
	t := d.rtcpOut.Load()
	if t == nil {
		return
	}
	sr, ok := d.rep.report(b.ssrc, d.clock, now, time.Now())
	if !ok {
		return
	}
	if _, err := t.WriteRTCP([]rtcp.Packet{&sr}); err != nil {
		d.log.Debug("sender report", "err", err)
	}
}
