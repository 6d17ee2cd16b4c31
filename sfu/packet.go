package sfu

import (
	"time"

	"github.com/pion/rtp"
)

// Packet is one upstream RTP packet as an UpTrack hands it to its sinks.
//
// It is valid only during the Sink's WriteRTP call and belongs to the up
// track's reader: a sink that needs the bytes later keeps Ext and reads them
// back from the track's Cache (that is what a writer of DownTracks does, so
// its queue holds 24-byte items, never packet copies).
type Packet struct {
	Header   *rtp.Header // parsed once by the reader
	Payload  []byte      // without padding
	Raw      []byte      // the packet as received (header, payload, padding)
	Ext      uint64      // extended sequence number: the packet's key in its layer's Cache
	Layer    uint8       // the simulcast layer's slot (0: the one layer of a track that is not simulcast)
	Keyframe bool        // first packet of a video keyframe
	Arrival  int64       // Now() when the reader got it
	// Discontinuity marks the first packet after a feeder skipped packets
	// on purpose (a paused relay resuming): sinks continue their outgoing
	// sequence without a gap. For video it is always a keyframe start.
	Discontinuity bool
}

// Sink receives the packets of one UpTrack: the writers of its WebRTC
// DownTracks (writer.go), the relay's egress and the recorder implement it.
type Sink interface {
	// WriteRTP is called from the up track's reader goroutine for every
	// packet. It must not block and must not keep p after it returns.
	WriteRTP(p *Packet)
	// Close is called once when the up track ends (or the sink is
	// removed by its owner). It must not block for long.
	Close()
}

// Source is what an UpTrack reads: a publisher's webrtc.TrackRemote, or the
// ingress of a relay.
type Source interface {
	// ReadRTP reads one RTP packet into buf. An error ends the track
	// (io.EOF is the normal end).
	ReadRTP(buf []byte) (int, error)
	// RequestKeyframe asks the origin for a keyframe (a PLI for a WebRTC
	// publisher). UpTrack throttles calls.
	RequestKeyframe() error
}

// epoch anchors Now: a monotonic clock in nanoseconds, cheap to store in
// queue items and to subtract.
var epoch = time.Now()

// Now returns monotonic nanoseconds since the process started.
func Now() int64 { return int64(time.Since(epoch)) }

// parseRTP parses raw's header into hdr and returns the payload without
// padding. ok is false when the header does not parse or is longer than
// the packet without its padding. A padding count larger than the payload
// is not ours to fix: the payload is then taken whole.
func parseRTP(raw []byte, hdr *rtp.Header) (payload []byte, ok bool) {
	n := len(raw)
	hl, err := hdr.Unmarshal(raw)
	if err != nil {
		return nil, false
	}
	end := n
	if hdr.Padding && n > hl {
		if pad := int(raw[n-1]); pad <= n-hl {
			end = n - pad
		}
	}
	if hl > end {
		return nil, false
	}
	return raw[hl:end], true
}

// cachedPacket is an up track's packet read back from its Cache and
// parsed. A writer reads each queued packet into one, once, and hands it
// to every down track of its group (writer.go); the down tracks only read
// it, each writing its own header.
type cachedPacket struct {
	ext     uint64
	ok      bool       // read and parsed; false: gone from the cache (overwritten) or never stored
	hdr     rtp.Header // the parsed header (extensions are the publisher's: never forwarded)
	payload []byte     // without padding; points into buf
	buf     []byte     // MaxPacketSize bytes, owned by the one goroutine that reads into it
}

func newCachedPacket() cachedPacket { return cachedPacket{buf: make([]byte, MaxPacketSize)} }

// read copies packet ext out of c into p and parses it; it reports p.ok.
func (p *cachedPacket) read(c *Cache, ext uint64) bool {
	p.ext, p.ok, p.payload = ext, false, nil
	n := c.Get(ext, p.buf)
	if n == 0 {
		return false
	}
	p.payload, p.ok = parseRTP(p.buf[:n], &p.hdr)
	return p.ok
}
