package sfu

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/metrics"
)

// The cost of send-side estimation on the send path, per packet and per
// subscriber PC: pion/interceptor's gcc (the candidate) against bwe.go's
// send history. docs/simulcast.md quotes these.
//
//	go test -run '^$' -bench 'SendSide|FanoutTWCC' -benchtime 20000x ./sfu/

// BenchmarkSendSideGCC: one packet through a gcc SendSideBWE stream
// writer (with its no-op pacer, its cheapest form: the default
// leaky-bucket pacer also copies every packet into a queue served by its
// own goroutine), and the goroutines each estimator (one per subscriber
// PC) keeps with its default pacer.
func BenchmarkSendSideGCC(b *testing.B) {
	before := runtime.NumGoroutine()
	var es []*gcc.SendSideBWE
	for range 10 {
		e, err := gcc.NewSendSideBWE()
		if err != nil {
			b.Fatal(err)
		}
		es = append(es, e)
	}
	time.Sleep(10 * time.Millisecond)
	perPC := float64(runtime.NumGoroutine()-before) / float64(len(es))
	for _, e := range es {
		_ = e.Close()
	}
	e, err := gcc.NewSendSideBWE(gcc.SendSideBWEPacer(gcc.NewNoOpPacer()))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	w := e.AddStream(&interceptor.StreamInfo{SSRC: 1, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: 5}}},
		interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) { return 12 + len(p), nil }))
	payload := make([]byte, 1200)
	h := rtp.Header{Version: 2, SSRC: 1}
	_ = h.SetExtension(5, []byte{0, 0})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.SequenceNumber = uint16(i)
		_ = h.SetExtension(5, []byte{byte(i >> 8), byte(i)})
		if _, err := w.Write(&h, payload, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(perPC, "goroutines/PC")
}

// BenchmarkSendSideHistory: the same for bwe.go: a transport-wide
// sequence number and a record per packet; no goroutine.
func BenchmarkSendSideHistory(b *testing.B) {
	e := newBWE()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seq := e.hist.take()
		e.hist.record(seq, 1212, Now())
	}
	b.ReportMetric(0, "goroutines/PC")
}

// BenchmarkFanoutTWCC is BenchmarkFanout with transport-cc negotiated on
// every subscriber (as on every video subscriber now): each packet also
// carries its subscriber PC's transport-wide sequence number, recorded
// for the estimate. The target is still 0 allocations.
func BenchmarkFanoutTWCC(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("sinks=%d", n), func(b *testing.B) {
			m := metrics.New()
			up := newTestUpTrack(m, &fakeSource{})
			ws := make([]*fakeWriter, n)
			for i := range ws {
				ws[i] = &fakeWriter{}
				d := NewDownTrack(DownTrackParams{Up: up, StreamID: "alice", Logger: up.log, Metrics: m, bwe: newBWE()})
				if _, err := d.Bind(fakeContext{
					codecs: []webrtc.RTPCodecParameters{{RTPCodecCapability: vp8, PayloadType: 100}},
					ssrc:   webrtc.SSRC(i + 1), w: ws[i],
					exts: []webrtc.RTPHeaderExtensionParameter{{URI: sdp.TransportCCURI, ID: 3}},
				}); err != nil {
					b.Fatal(err)
				}
				d.SetReady()
				if !up.AddDownTrack(d) {
					b.Fatal("AddDownTrack refused")
				}
				defer d.Close()
			}
			runFanout(b, up, ws)
		})
	}
}
