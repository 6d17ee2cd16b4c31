package sfu

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/relaysfu/relayd/metrics"
)

// BenchmarkFanout measures the whole forwarding path of one up track to n
// sinks: parse, cache, fan-out (enqueue, once per writer group), each
// writer's copy-out and parse (once per group) and each DownTrack's
// munging, header rewrite and write to a counting writer that stands in
// for pion's SRTP stream. One op is one 1200-byte video
// packet delivered to every sink. The producer waits for the writers every
// 32 packets so no queue overflows: every sink really writes every packet.
// Allocations are counted across all goroutines: the target is 0 per op.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("sinks=%d", n), func(b *testing.B) {
			m := metrics.New()
			up := newTestUpTrack(m, &fakeSource{})
			ws := make([]*fakeWriter, n)
			ds := make([]*DownTrack, n)
			for i := range ds {
				ws[i] = &fakeWriter{}
				ds[i] = newBoundDownTrack(b, m, up, ws[i], 1)
			}
			defer func() {
				for _, d := range ds {
					d.Close()
				}
			}()
			runFanout(b, up, ws)
		})
	}
}

// runFanout sends b.N packets through up, whose sinks write to ws.
func runFanout(b *testing.B, up *UpTrack, ws []*fakeWriter) {
	n := len(ws)
	{
		{
			key := vp8Packet(0, 0, true, true, 1200)
			delta := vp8Packet(0, 0, true, false, 1200)
			buf := make([]byte, len(key))
			send := func(i int) {
				src := delta
				if i == 0 {
					src = key
				}
				copy(buf, src)
				binary.BigEndian.PutUint16(buf[2:], uint16(i))
				binary.BigEndian.PutUint32(buf[4:], uint32(i/4)*3000)
				up.ingest(buf)
			}
			drain := func(want int64) {
				for _, w := range ws {
					for w.count.Load() < want {
						runtime.Gosched()
					}
				}
			}
			send(0) // the keyframe every subscriber starts at
			drain(1)
			b.SetBytes(int64(len(key)) * int64(n))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 1; i <= b.N; i++ {
				send(i)
				if i%32 == 0 {
					drain(int64(i) + 1)
				}
			}
			drain(int64(b.N) + 1)
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sink-pkt")
		}
	}
}
