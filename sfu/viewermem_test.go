package sfu

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

// viewerHeapProfile names the heap profiles BenchmarkViewerMemory writes
// while its viewers are connected: NAME.before (the room with its
// publisher only) and NAME.after (with the viewers), and the goroutines
// then (NAME.before.goroutines, NAME.after.goroutines), so that
//
//	go tool pprof -sample_index=inuse_space -base NAME.before NAME.after
//
// shows what the viewers hold, by owner. go test's own -memprofile is
// written after the benchmark's cleanup has closed every viewer, so it
// cannot show them. Use with -test.memprofilerate=1 (or 4096): at the
// default rate (one sample per 512 KiB) 40 viewers' ~12 MB is ~25 samples.
var viewerHeapProfile = flag.String("viewermem.profile", "", "write heap profiles NAME.before and NAME.after in BenchmarkViewerMemory")

// memViewers is the viewers BenchmarkViewerMemory adds: enough that the
// per-viewer figure is not lost in the noise of the publisher's buffers,
// few enough to join in seconds on a 2-core machine shared with other work.
const memViewers = 40

// BenchmarkViewerMemory measures what one viewer costs: a loopback room
// with a publisher (VP8, 50 packets/s) gets memViewers real pion viewers,
// each joining and receiving media; the live heap (after GC), the
// goroutine stacks and the goroutines are read before and after, and the
// difference divided by the viewers. Both ends are in this process, so a
// viewer here is the server's subscriber PC and its down track plus the
// pion client's PC: the figure is above the server's alone (pprof -base,
// see viewerHeapProfile, tells them apart by owner). One measurement per
// process, setup included, so run it once:
//
//	go test -run '^$' -bench ViewerMemory -benchtime 1x ./sfu
func BenchmarkViewerMemory(b *testing.B) {
	r := memRoom(b)
	before := memNow(b, "before")
	peers := make([]*peer, memViewers)
	for i := range peers {
		peers[i] = newPeer(b, 0)
		peers[i].join(r, ParticipantParams{Identity: fmt.Sprintf("viewer%d", i), Role: RoleViewer})
	}
	for i, c := range peers {
		waitLong(b, fmt.Sprintf("media on viewer %d", i), func() bool { return c.received.Load() >= 25 })
	}
	sleepSteady()
	after := memNow(b, "after")
	reportMem(b, before, after)
}

// sleepSteady waits for the steady state: every ticker of every PC has
// fired (sender reports every second or so, TWCC feedback, ICE
// keepalives every 2 s).
func sleepSteady() { time.Sleep(3 * time.Second) }

// reportMem reports what the memViewers viewers added, per viewer.
func reportMem(b *testing.B, before, after memSample) {
	n := float64(memViewers)
	b.ReportMetric(float64(after.heap-before.heap)/n/1024, "heap-KiB/viewer")
	b.ReportMetric(float64(after.stack-before.stack)/n/1024, "stack-KiB/viewer")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/n, "goroutines/viewer")
}

// memRoom is a loopback room whose host publishes VP8. The host's client
// has no interceptors: pion's NACK responder would keep filling its
// 1,024-packet send buffer (20 s at 50 packets/s) while the viewers join,
// ~8 KiB per viewer in the figure that is no viewer's.
func memRoom(b *testing.B) *Room {
	b.Helper()
	s := newLoopbackSFU(b, Config{})
	r, err := s.CreateRoom("mem", "alice", "", "")
	if err != nil {
		b.Fatal(err)
	}
	host := newPeer(b, 0)
	host.api = loopbackClientAPI(b, false)
	hp := host.join(r, ParticipantParams{Identity: "alice", Role: RoleHost})
	host.publishVP8(hp)
	waitLong(b, "the host's track", func() bool { return len(hp.PublishedTracks()) == 1 })
	return r
}

// memSample is the live memory at one moment.
type memSample struct {
	heap, stack uint64 // bytes: live heap objects, goroutine stacks
	goroutines  int
}

// memNow collects garbage and reads the live memory; with
// viewerHeapProfile set it also writes the heap profile NAME.stage.
func memNow(b *testing.B, stage string) memSample {
	b.Helper()
	// Twice: the first GC's finalizers (os.File, net conns) free more in
	// the second.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if *viewerHeapProfile != "" {
		f, err := os.Create(*viewerHeapProfile + "." + stage)
		if err != nil {
			b.Fatal(err)
		}
		// WriteHeapProfile reports as of the last GC: the one just run.
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		// And the goroutines, grouped by stack (debug=1): whose they are.
		g, err := os.Create(*viewerHeapProfile + "." + stage + ".goroutines")
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup("goroutine").WriteTo(g, 1); err != nil {
			b.Fatal(err)
		}
		if err := g.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return memSample{heap: ms.HeapAlloc, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}
