package sfu

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaysfu/relayd/metrics"
)

// subscriberRTCPSeeds are what browsers send a sender: compound packets of
// a receiver report with feedback (RFC 4585), and the odd ones.
func subscriberRTCPSeeds() [][]byte {
	const ssrc, sender = 4242, 1
	rr := &rtcp.ReceiverReport{SSRC: sender, Reports: []rtcp.ReceptionReport{{
		SSRC: ssrc, FractionLost: 12, TotalLost: 3, LastSequenceNumber: 0x10064, Jitter: 40, LastSenderReport: 0x1234, Delay: 0x20,
	}}}
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: sender, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "0a1b2c3d"}},
	}}}
	compound := func(ps ...rtcp.Packet) []byte {
		b, err := rtcp.Marshal(ps)
		if err != nil {
			panic(err)
		}
		return b
	}
	return [][]byte{
		compound(rr, sdes),
		compound(rr, &rtcp.TransportLayerNack{SenderSSRC: sender, MediaSSRC: ssrc, Nacks: []rtcp.NackPair{{PacketID: 101, LostPackets: 0b101}}}),
		compound(rr, &rtcp.TransportLayerNack{SenderSSRC: sender, MediaSSRC: ssrc, Nacks: []rtcp.NackPair{{PacketID: 65535, LostPackets: 0xffff}, {PacketID: 100}}}),
		// 10 x 17 sequence numbers: more than a writer queues (64), so
		// some are misses.
		compound(rr, &rtcp.TransportLayerNack{SenderSSRC: sender, MediaSSRC: ssrc, Nacks: func() []rtcp.NackPair {
			var ps []rtcp.NackPair
			for i := range 10 {
				ps = append(ps, rtcp.NackPair{PacketID: uint16(90 + 17*i), LostPackets: 0xffff})
			}
			return ps
		}()}),
		compound(rr, &rtcp.PictureLossIndication{SenderSSRC: sender, MediaSSRC: ssrc}),
		compound(&rtcp.FullIntraRequest{SenderSSRC: sender, MediaSSRC: ssrc, FIR: []rtcp.FIREntry{{SSRC: ssrc, SequenceNumber: 1}}}),
		compound(rr, &rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: sender, Bitrate: 1.5e6, SSRCs: []uint32{ssrc}}),
		compound(&rtcp.TransportLayerCC{
			SenderSSRC: sender, MediaSSRC: ssrc, BaseSequenceNumber: 5, PacketStatusCount: 2, ReferenceTime: 1, FbPktCount: 0,
			PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 2}},
			RecvDeltas:   []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 500}},
		}),
		compound(&rtcp.Goodbye{Sources: []uint32{sender}, Reason: "bye"}),
		compound(&rtcp.SliceLossIndication{SenderSSRC: sender, MediaSSRC: ssrc, SLI: []rtcp.SLIEntry{{First: 1, Number: 2, Picture: 3}}}),
		{0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1}, // an empty receiver report
		{0x81, 0xcd, 0x00, 0x02},             // a NACK cut short
		{},
	}
}

// FuzzSubscriberRTCP feeds arbitrary RTCP datagrams to a video DownTrack
// that has sent a keyframe and two more packets (sequence numbers 100-102),
// as its subscriber would:
// DownTrack.handleRTCP, and the retransmissions its writer then sends from
// the cache.
//
// Invariants: nothing panics; every NACKed sequence number is counted once
// and answered, or counted a miss (none is lost in a full queue without
// being counted); a retransmission is byte for byte a packet the
// subscriber was sent before, with the same sequence number and
// timestamp; each PLI and FIR is counted.
func FuzzSubscriberRTCP(f *testing.F) {
	for _, s := range subscriberRTCPSeeds() {
		f.Add(s)
	}
	m := metrics.New()
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1500 {
			b = b[:1500] // rtcpLoop reads into 1500 bytes
		}
		up := newUpTrack(UpTrackParams{
			ID: "TR_fuzz", Participant: "alice", Kind: webrtc.RTPCodecTypeVideo, Codec: vp8,
			Source: &fakeSource{}, Logger: log, Metrics: m,
		}, NewCache(minCacheSize))
		w := &fakeWriter{keep: true}
		d := newDownTrackOn(t, m, up, w, 4242)
		// Outgoing numbers start at 100 (not at random), so that the
		// seeds' NACKs name the packets sent.
		d.m = newMunger(true, 100, 0)
		d.SetReady()
		if !up.AddDownTrack(d) {
			t.Fatal("AddDownTrack refused")
		}
		defer up.finish() // stops the writer, and waits for it
		defer d.Close()
		for i := uint16(0); i < 3; i++ {
			up.ingest(vp8Packet(1000+i, 90000, i == 0, i == 0, 40+int(i)))
		}
		settle(t, "3 packets sent", func() bool { return w.count.Load() == 3 })
		sent := w.packets()
		bySeq := map[uint16]rtp.Packet{}
		for _, p := range sent {
			bySeq[p.SequenceNumber] = p
		}

		nacks, plis := countFeedback(b)
		nackIn, pliIn := testutil.ToFloat64(d.nackIn), testutil.ToFloat64(d.pliIn)
		hit, miss := testutil.ToFloat64(d.rtxHit), testutil.ToFloat64(d.rtxMiss)

		d.handleRTCP(b)

		if got := testutil.ToFloat64(d.nackIn) - nackIn; got != float64(nacks) {
			t.Fatalf("%d NACKed sequence numbers counted, the packet has %d", int(got), nacks)
		}
		if got := testutil.ToFloat64(d.pliIn) - pliIn; got != float64(plis) {
			t.Fatalf("%d PLI/FIR counted, the packet has %d", int(got), plis)
		}
		// The writer answers in its own goroutine: wait until every NACK
		// is a hit or a miss.
		settle(t, "every NACK answered or missed", func() bool {
			return testutil.ToFloat64(d.rtxHit)-hit+testutil.ToFloat64(d.rtxMiss)-miss == float64(nacks)
		})
		for _, p := range w.packets()[len(sent):] {
			orig, ok := bySeq[p.SequenceNumber]
			if !ok {
				t.Fatalf("retransmitted seq %d, never sent", p.SequenceNumber)
			}
			if fmt.Sprint(orig.Header) != fmt.Sprint(p.Header) || string(orig.Payload) != string(p.Payload) {
				t.Fatalf("retransmission %+v %x differs from the original %+v %x", p.Header, p.Payload, orig.Header, orig.Payload)
			}
		}
	})
}

// countFeedback counts what handleRTCP must act on: the sequence numbers
// in NACKs, and the PLIs and FIRs.
func countFeedback(b []byte) (nacks, plis int) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return 0, 0
	}
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			plis++
		case *rtcp.TransportLayerNack:
			for _, pair := range p.Nacks {
				nacks += len(pair.PacketList())
			}
		}
	}
	return nacks, plis
}

// settle waits for cond, which another goroutine of the test makes true
// within microseconds: waitFor's millisecond sleeps would make each fuzz
// input cost a millisecond.
func settle(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
}
