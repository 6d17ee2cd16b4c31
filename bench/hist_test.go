package bench

import (
	"math"
	"testing"
	"time"
)

func TestHistQuantiles(t *testing.T) {
	var h Hist
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	var s HistSnap
	h.Snapshot(&s)
	if s.N != 1000 {
		t.Fatalf("N = %d", s.N)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 500}, {0.95, 950}, {0.99, 990}} {
		if got := s.Quantile(c.q); math.Abs(got-c.want)/c.want > 0.04 {
			t.Errorf("q%.2f = %.1f ms, want %.0f within 4%%", c.q, got, c.want)
		}
	}
	if got := s.Quantile(1); got != 1000 {
		t.Errorf("max = %v", got)
	}
	if m := s.MeanMS(); math.Abs(m-500.5) > 0.01 {
		t.Errorf("mean = %v", m)
	}
}

func TestHistSub(t *testing.T) {
	var h Hist
	for i := 0; i < 100; i++ {
		h.Record(time.Millisecond)
	}
	var before HistSnap
	h.Snapshot(&before)
	for i := 0; i < 100; i++ {
		h.Record(50 * time.Millisecond)
	}
	var after HistSnap
	h.Snapshot(&after)
	after.Sub(&before)
	if after.N != 100 {
		t.Fatalf("N = %d", after.N)
	}
	if p := after.Quantile(0.5); math.Abs(p-50) > 1.5 {
		t.Errorf("p50 of the difference = %v, want ~50", p)
	}
}

func TestHistEmptyAndBuckets(t *testing.T) {
	var s HistSnap
	if !math.IsNaN(s.Quantile(0.5)) || s.Summary().P99 != nil {
		t.Error("empty histogram has a quantile")
	}
	for us := uint64(0); us < 1<<28; us = us*3/2 + 1 {
		i := histBucket(us)
		lo, hi := histBounds(i)
		if us < 1<<27 && (us < lo || us >= hi) {
			t.Fatalf("%d µs in bucket %d [%d, %d)", us, i, lo, hi)
		}
		if i >= histBuckets {
			t.Fatalf("bucket %d out of range", i)
		}
	}
}

func TestParseBitrate(t *testing.T) {
	for in, want := range map[string]int{"1500000": 1500000, "1500k": 1500000, "1.5M": 1500000, "1.5Mbps": 1500000, "2m": 2000000} {
		if got, err := ParseBitrate(in); err != nil || got != want {
			t.Errorf("ParseBitrate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1", "0"} {
		if _, err := ParseBitrate(in); err == nil {
			t.Errorf("ParseBitrate(%q) accepted", in)
		}
	}
}

func TestConfigNormalize(t *testing.T) {
	c := Config{Spawn: "./relayd"}
	if err := c.normalize(); err != nil {
		t.Fatal(err)
	}
	if c.Rooms != 1 || c.Publishers != 1 || c.VideoBitrate != 1_500_000 || c.FPS != 30 || c.Duration != 10*time.Second || c.FullViewers != 5 {
		t.Errorf("defaults not applied: %+v", c)
	}
	for name, bad := range map[string]Config{
		"no target":        {},
		"both targets":     {Spawn: "x", URL: "http://127.0.0.1:1", Secret: "s"},
		"url no secret":    {URL: "http://127.0.0.1:1"},
		"relays > rooms":   {Spawn: "x", Rooms: 2, Relays: 2},
		"short window":     {Spawn: "x", Duration: time.Millisecond},
		"light in the lab": {Spawn: "x", Light: true, Lab: true},
		"no full viewer":   {Spawn: "x", Light: true, FullViewers: -1},
	} {
		if err := bad.normalize(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
