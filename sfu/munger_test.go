package sfu

import "testing"

// step is one packet given to a munger and what must come out of it.
type step struct {
	ext      uint64
	ts       uint32
	key      bool
	resync   bool
	wantSeq  uint16
	wantTS   uint32
	wantDrop dropReason
}

func runSteps(t *testing.T, m *munger, steps []step) {
	t.Helper()
	for i, s := range steps {
		seq, ts, drop := m.translate(s.ext, s.ts, s.key, s.resync)
		if drop != s.wantDrop {
			t.Fatalf("step %d (ext %d): drop = %v, want %v", i, s.ext, drop, s.wantDrop)
		}
		if drop != dropNone {
			continue
		}
		if seq != s.wantSeq || ts != s.wantTS {
			t.Fatalf("step %d (ext %d): got seq %d ts %d, want seq %d ts %d", i, s.ext, seq, ts, s.wantSeq, s.wantTS)
		}
	}
}

func TestMungerVideo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"waits for a keyframe, then starts at the initial numbers", []step{
			{ext: 100, ts: 1000, wantDrop: dropWaitKeyframe},
			{ext: 101, ts: 1000, wantDrop: dropWaitKeyframe},
			{ext: 102, ts: 4000, key: true, wantSeq: 500, wantTS: 4010},
			{ext: 103, ts: 4000, wantSeq: 501, wantTS: 4010},
			{ext: 104, ts: 7000, wantSeq: 502, wantTS: 7010},
		}},
		{"an upstream gap stays a gap, and the late packet fills it", []step{
			{ext: 10, ts: 0, key: true, wantSeq: 500, wantTS: 10},
			{ext: 12, ts: 3000, wantSeq: 502, wantTS: 3010},
			{ext: 11, ts: 0, wantSeq: 501, wantTS: 10},
			{ext: 13, ts: 3000, wantSeq: 503, wantTS: 3010},
		}},
		{"packets older than the start are dropped", []step{
			{ext: 20, ts: 9000, key: true, wantSeq: 500, wantTS: 9010},
			{ext: 19, ts: 6000, wantDrop: dropStale},
			{ext: 21, ts: 9000, wantSeq: 501, wantTS: 9010},
		}},
		{"a resync after deliberate drops continues without a gap", []step{
			{ext: 1, ts: 0, key: true, wantSeq: 500, wantTS: 10},
			{ext: 2, ts: 0, wantSeq: 501, wantTS: 10},
			// 3..49 dropped by a full queue; 50 is the next keyframe
			{ext: 50, ts: 90000, key: true, resync: true, wantSeq: 502, wantTS: 90010},
			{ext: 51, ts: 90000, wantSeq: 503, wantTS: 90010},
			{ext: 49, ts: 87000, wantDrop: dropStale},
		}},
		{"a resync that is not a keyframe waits for one", []step{
			{ext: 1, ts: 0, key: true, wantSeq: 500, wantTS: 10},
			{ext: 9, ts: 3000, resync: true, wantDrop: dropWaitKeyframe},
			{ext: 10, ts: 3000, wantDrop: dropWaitKeyframe},
			{ext: 11, ts: 6000, key: true, wantSeq: 501, wantTS: 6010},
		}},
		{"outgoing sequence numbers wrap", []step{
			{ext: 1 << 20, ts: 0, key: true, wantSeq: 500, wantTS: 10},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMunger(true, 500, 10)
			runSteps(t, &m, tc.steps)
		})
	}
}

func TestMungerWrap(t *testing.T) {
	m := newMunger(true, 65534, 0xfffffff0)
	runSteps(t, &m, []step{
		{ext: 70000, ts: 0x20, key: true, wantSeq: 65534, wantTS: 0x10},
		{ext: 70001, ts: 0x20, wantSeq: 65535, wantTS: 0x10},
		{ext: 70002, ts: 0x20, wantSeq: 0, wantTS: 0x10},
		{ext: 70003, ts: 0x20, wantSeq: 1, wantTS: 0x10},
	})
	if sp, ok := m.upstream(0); !ok || sp.ext != 70002 {
		t.Fatalf("upstream(0) = %d %v, want 70002 true", sp.ext, ok)
	}
}

func TestMungerAudio(t *testing.T) {
	m := newMunger(false, 7, 0)
	runSteps(t, &m, []step{
		{ext: 300, ts: 960, wantSeq: 7, wantTS: 960},
		{ext: 301, ts: 1920, wantSeq: 8, wantTS: 1920},
		// 302..305 dropped on a full queue: 306 resyncs, no gap
		{ext: 306, ts: 6720, resync: true, wantSeq: 9, wantTS: 6720},
		{ext: 308, ts: 8640, wantSeq: 11, wantTS: 8640},
	})
}

func TestMungerStopRestart(t *testing.T) {
	m := newMunger(true, 100, 0)
	runSteps(t, &m, []step{{ext: 5, ts: 0, key: true, wantSeq: 100}, {ext: 6, ts: 0, wantSeq: 101}})
	m.stop()
	runSteps(t, &m, []step{
		{ext: 7, ts: 3000, wantDrop: dropWaitKeyframe},
		{ext: 8, ts: 6000, key: true, wantSeq: 102, wantTS: 6000},
	})
}

func TestMungerHistory(t *testing.T) {
	m := newMunger(true, 1000, 0)
	for ext := uint64(1); ext <= 600; ext++ {
		if _, _, d := m.translate(ext, 0, ext == 1, false); d != dropNone {
			t.Fatalf("ext %d dropped: %v", ext, d)
		}
	}
	// out = ext + 999; the last videoHistory (256) are remembered, older
	// ones are not
	for _, tc := range []struct {
		out  uint16
		ext  uint64
		want bool
	}{
		{1599, 600, true}, {1599 - videoHistory + 1, 600 - videoHistory + 1, true},
		{1599 - videoHistory, 600 - videoHistory, false}, {1000, 1, false}, {2000, 0, false},
	} {
		sp, ok := m.upstream(tc.out)
		ext := sp.ext
		if ok != tc.want || (ok && ext != tc.ext) {
			t.Errorf("upstream(%d) = %d %v, want %d %v", tc.out, ext, ok, tc.ext, tc.want)
		}
	}
}
