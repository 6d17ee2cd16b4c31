package sfu

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/metrics"

	"github.com/relaysfu/relayd/internal/codec"
)

// ingestCheck is the fuzzed up track's one sink: it checks every packet the
// reader hands out, then passes it to a real DownTrack through a writer's
// per-packet step (read back from the cache, parsed, delivered), run at
// once on this goroutine, whose output the test checks too.
type ingestCheck struct {
	t         *testing.T
	mime      string
	video     bool
	d         *DownTrack
	w         *writer           // not started: writeItem runs here
	forwarded map[uint64][]byte // ext -> payload handed to the sinks
	calls     int
}

func (c *ingestCheck) WriteRTP(p *Packet) {
	c.t.Helper()
	c.calls++
	var h rtp.Header
	hl, err := h.Unmarshal(p.Raw)
	if err != nil {
		c.t.Fatalf("a packet whose header does not parse reached the sinks: %v", err)
	}
	end := len(p.Raw)
	if h.Padding && end > hl && int(p.Raw[end-1]) <= end-hl {
		end -= int(p.Raw[end-1])
	}
	if !bytes.Equal(p.Payload, p.Raw[hl:end]) {
		c.t.Fatalf("payload %x is not the packet's %x (header %d bytes, padding removed)", p.Payload, p.Raw[hl:end], hl)
	}
	if p.Header.SequenceNumber != h.SequenceNumber || p.Header.SSRC != h.SSRC || p.Header.Timestamp != h.Timestamp {
		c.t.Fatalf("header %+v, want %+v", *p.Header, h)
	}
	if uint16(p.Ext) != h.SequenceNumber {
		c.t.Fatalf("ext %d does not end in sequence number %d", p.Ext, h.SequenceNumber)
	}
	if want := c.video && codec.KeyframeStart(c.mime, p.Payload); p.Keyframe != want {
		c.t.Fatalf("Keyframe = %v for a %s payload %x", p.Keyframe, c.mime, p.Payload)
	}
	if _, dup := c.forwarded[p.Ext]; dup {
		c.t.Fatalf("ext %d forwarded twice", p.Ext)
	}
	c.forwarded[p.Ext] = append([]byte(nil), p.Payload...)
	c.w.writeItem(itemOf(p, false))
}

func (c *ingestCheck) Close() {}

// FuzzIngest feeds arbitrary datagrams to an up track's reader (the parse of
// the header, padding and sequence number, the keyframe detection of each
// codec, the cache) and on to a subscriber's DownTrack (its writer reads
// the cached copy back and parses it, the DownTrack rewrites it). Packets are a, b, then a again.
//
// Invariants: nothing panics; a packet reaches the sinks iff its header
// parses, it fits the cache, is not a duplicate and not too old; what
// reaches them is the packet's payload without padding, flagged as a
// keyframe exactly when KeyframeStart says so, stored in the cache as
// received; the subscriber gets only such payloads, with its own SSRC and
// payload type, and video starts with a keyframe.
func FuzzIngest(f *testing.F) {
	byMime := map[string][]realPacket{}
	var mimes []string // in realPackets' order, so seed numbers stay put
	for _, p := range realPackets {
		if byMime[p.mime] == nil {
			mimes = append(mimes, p.mime)
		}
		byMime[p.mime] = append(byMime[p.mime], p)
	}
	for _, mime := range mimes {
		ps := byMime[mime]
		for i, p := range ps {
			next := ps[(i+1)%len(ps)]
			f.Add(mimeIndex(mime), p.rtpBytes(100), next.rtpBytes(101))
			f.Add(mimeIndex(mime), next.rtpBytes(7), p.rtpBytes(6)) // reordered
		}
	}
	vp8Key := realPackets[0].rtpBytes(0)
	padded := rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 4, PayloadType: 96, SequenceNumber: 1, SSRC: 1}, Payload: realPackets[0].payloadBytes()}
	paddedKey, err := padded.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mimeIndex("video/VP8"), paddedKey, vp8Key) // padding to strip
	for _, odd := range [][]byte{
		nil,
		{0x80},
		vp8Key[:12],                         // a header with no payload
		append([]byte{0x90}, vp8Key[1:]...), // X set: the extension header is read from the payload
		append([]byte{0x8f}, vp8Key[1:]...), // 15 CSRCs announced
		append([]byte{0xa0}, vp8Key[1:]...), // P set: the last byte is a padding count
		append(append([]byte{0xa0}, vp8Key[1:]...), 0xff), // more padding than payload
		bytes.Repeat([]byte{0x80}, MaxPacketSize+1),       // over the cache's slot size
	} {
		f.Add(mimeIndex("video/VP8"), odd, vp8Key)
	}

	m := metrics.New()
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, codecPick uint8, a, b []byte) {
		mime := fuzzMimes[int(codecPick)%len(fuzzMimes)]
		video := strings.HasPrefix(strings.ToLower(mime), "video/")
		kind := webrtc.RTPCodecTypeAudio
		if video {
			kind = webrtc.RTPCodecTypeVideo
		}
		capab := webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}
		// The smallest cache: a real one is 512 packets (768 KB), too much
		// to allocate thousands of times a second.
		up := newUpTrack(UpTrackParams{
			ID: "TR_fuzz", Participant: "alice", Kind: kind, Codec: capab,
			Source: &fakeSource{}, Logger: log, Metrics: m,
		}, NewCache(minCacheSize))
		defer up.finish()
		w := &fakeWriter{keep: true}
		d := NewDownTrack(DownTrackParams{Up: up, StreamID: "alice", Logger: log, Metrics: m})
		defer d.Close()
		if _, err := d.Bind(fakeContext{codecs: []webrtc.RTPCodecParameters{{RTPCodecCapability: capab, PayloadType: 100}}, ssrc: 4242, w: w}); err != nil {
			t.Fatal(err)
		}
		d.SetReady()
		gw := newIdleWriter(up)
		up.mu.Lock()
		gw.addLocked(d)
		up.mu.Unlock()
		check := &ingestCheck{t: t, mime: mime, video: video, d: d, w: gw, forwarded: map[uint64][]byte{}}
		if !up.AddSink(check) {
			t.Fatal("AddSink refused")
		}

		var model SeqUnwrapper // what ingest must compute
		var newest uint64
		seen := map[uint64]bool{}
		written := 0 // packets the subscriber got so far
		for _, raw := range [][]byte{a, b, a} {
			before := check.calls
			up.ingest(raw)
			forwarded := check.calls > before

			var h rtp.Header
			hl, err := h.Unmarshal(raw)
			want := false
			end := len(raw)
			if err == nil && h.Padding && end > hl && int(raw[end-1]) <= end-hl {
				end -= int(raw[end-1])
			}
			if err == nil && hl <= end {
				ext := model.Unwrap(h.SequenceNumber)
				tooOld := len(seen) > 0 && ext < newest && newest-ext >= uint64(up.Cache().Size())
				want = len(raw) <= MaxPacketSize && !seen[ext] && !tooOld
				if want {
					seen[ext] = true
					newest = max(newest, ext)
					got := make([]byte, MaxPacketSize)
					if n := up.Cache().Get(ext, got); !bytes.Equal(got[:n], raw) {
						t.Fatalf("cache holds %x for ext %d, want %x", got[:n], ext, raw)
					}
				}
			}
			if forwarded != want {
				t.Fatalf("packet %x: forwarded %v, want %v (header error %v)", raw, forwarded, want, err)
			}
			// Checked as they come: the munger's NACK history, which
			// maps them back, is a ring that a later packet may reuse.
			ps := w.packets()
			for i := written; i < len(ps); i++ {
				p := ps[i]
				if p.SSRC != 4242 || p.PayloadType != 100 {
					t.Fatalf("subscriber packet %d: ssrc %d pt %d, want 4242 100", i, p.SSRC, p.PayloadType)
				}
				sp, ok := d.m.upstream(p.SequenceNumber)
				ext := sp.ext
				if !ok {
					t.Fatalf("subscriber packet %d: seq %d maps to no upstream packet", i, p.SequenceNumber)
				}
				if want, ok := check.forwarded[ext]; !ok || !bytes.Equal(p.Payload, want) {
					t.Fatalf("subscriber packet %d (ext %d): payload %x, forwarded %x", i, ext, p.Payload, want)
				}
				if i == 0 && video && !codec.KeyframeStart(mime, p.Payload) {
					t.Fatalf("a video subscriber started with %x, not a keyframe start", p.Payload)
				}
			}
			written = len(ps)
		}

	})
}
