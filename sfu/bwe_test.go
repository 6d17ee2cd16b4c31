package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
)

const ms = int64(time.Millisecond)

// The estimator's reactions, one report at a time.
func TestNextEstimate(t *testing.T) {
	at := func(s int64) int64 { return 10_000*ms + s*ms }
	for _, tc := range []struct {
		name string
		s    bweState
		x    bweSample
		want func(bweState) bool
		say  string
	}{
		{"first report: the initial estimate", bweState{}, bweSample{At: at(0), Acked: 10, Rate: 2_000_000},
			func(s bweState) bool { return s.Estimate == initialEstimate && s.Delivered == 2_000_000 }, "initial"},
		{"queue growing past 50 ms once: not yet", bweState{Estimate: 3_000_000, Delivered: 800_000, LastUpdate: at(0)},
			bweSample{At: at(100), Acked: 10, Rate: 800_000, Delay: 60 * ms, DelayTrend: 5 * ms},
			func(s bweState) bool { return s.Estimate == 3_000_000 && s.Overuse == 1 }, "no cut yet"},
		{"queue growing past 50 ms twice: cut to 90% of delivered", bweState{Estimate: 3_000_000, Delivered: 800_000, LastUpdate: at(0), Overuse: 1},
			bweSample{At: at(100), Acked: 10, Rate: 800_000, Delay: 60 * ms, DelayTrend: 5 * ms},
			func(s bweState) bool { return s.Estimate == 720_000 && s.LastDecrease == at(100) }, "720k"},
		{"queue at 60 ms but draining: no cut", bweState{Estimate: 1_000_000, Delivered: 800_000, LastUpdate: at(0)},
			bweSample{At: at(100), Acked: 10, Rate: 800_000, Delay: 60 * ms, DelayTrend: -5 * ms},
			func(s bweState) bool { return s.Estimate >= 1_000_000 }, "no cut"},
		{"a standing queue: cut", bweState{Estimate: 1_000_000, Delivered: 800_000, LastUpdate: at(0), Overuse: 1},
			bweSample{At: at(100), Acked: 10, Rate: 800_000, Delay: 200 * ms, DelayTrend: -5 * ms},
			func(s bweState) bool { return s.Estimate == 720_000 }, "cut"},
		{"one cut per 300 ms", bweState{Estimate: 680_000, Delivered: 800_000, LastDecrease: at(100), LastUpdate: at(100), Overuse: 2},
			bweSample{At: at(200), Acked: 10, Rate: 800_000, Delay: 80 * ms, DelayTrend: 5 * ms},
			func(s bweState) bool { return s.Estimate == 680_000 }, "unchanged"},
		{"loss over 10%: cut", bweState{Estimate: 1_000_000, Delivered: 900_000, Loss: 0.2, LastUpdate: at(0)},
			bweSample{At: at(100), Acked: 20, Lost: 4, Rate: 900_000},
			func(s bweState) bool { return s.Estimate == 900_000 }, "900k (1 - 20%/2)"},
		{"loss over 10% smoothed, none in this report: no cut", bweState{Estimate: 1_000_000, Delivered: 900_000, Loss: 0.3, LastUpdate: at(0)},
			bweSample{At: at(100), Acked: 20, Lost: 0, Rate: 900_000},
			func(s bweState) bool { return s.Estimate == 1_000_000 }, "no cut"},
		{"a report losing over 2% marks LossAt (a bandwidth pause may begin)", bweState{Estimate: 1_000_000, Delivered: 900_000, LastUpdate: at(0)},
			bweSample{At: at(100), Acked: 20, Lost: 1, Rate: 900_000},
			func(s bweState) bool { return s.LossAt == at(100) }, "LossAt set"},
		{"a queue without loss leaves LossAt", bweState{Estimate: 1_000_000, Delivered: 900_000, LastUpdate: at(0), Overuse: 1, LossAt: at(-9000)},
			bweSample{At: at(100), Acked: 20, Rate: 900_000, Delay: 200 * ms, DelayTrend: 5 * ms},
			func(s bweState) bool { return s.LossAt == at(-9000) && s.Estimate < 1_000_000 }, "cut, LossAt kept"},
		{"loss 2-10% with a queue: hold", bweState{Estimate: 1_000_000, Delivered: 900_000, Loss: 0.05, LastUpdate: at(0)},
			bweSample{At: at(1000), Acked: 20, Lost: 1, Rate: 900_000, Delay: 30 * ms, DelayTrend: -1 * ms},
			func(s bweState) bool { return s.Estimate == 1_000_000 }, "held"},
		{"loss 2-10% without a queue (random loss): grows", bweState{Estimate: 800_000, Delivered: 900_000, Loss: 0.05, LastUpdate: at(0)},
			bweSample{At: at(1000), Acked: 20, Lost: 1, Rate: 900_000},
			func(s bweState) bool { return s.Estimate == 990_000 }, "990k"},
		{"random loss does not stop a probe; loss with a queue does", bweState{Estimate: 800_000, Delivered: 900_000, Loss: 0.05, LastUpdate: at(0)},
			bweSample{At: at(100), Acked: 20, Lost: 1, Rate: 900_000},
			func(s bweState) bool { return s.Congested == 0 && s.LossAt == at(100) }, "not congested, LossAt set"},
		{"loss with a queue: congested", bweState{Estimate: 800_000, Delivered: 900_000, Loss: 0.05, LastUpdate: at(0)},
			bweSample{At: at(100), Acked: 20, Lost: 1, Rate: 900_000, Delay: 30 * ms, DelayTrend: -1 * ms},
			func(s bweState) bool { return s.Congested == at(100) }, "congested"},
		{"held a second after a cut", bweState{Estimate: 500_000, Delivered: 400_000, LastDecrease: at(0), LastUpdate: at(0)},
			bweSample{At: at(500), Acked: 10, Rate: 400_000},
			func(s bweState) bool { return s.Estimate == 500_000 }, "held"},
		{"clear: grows 25% a second", bweState{Estimate: 400_000, Delivered: 500_000, LastUpdate: at(0)},
			bweSample{At: at(1000), Acked: 10, Rate: 500_000},
			func(s bweState) bool { return s.Estimate == 500_000 }, "500k"},
		{"growth stops 10% above delivered", bweState{Estimate: 400_000, Delivered: 400_000, LastUpdate: at(0)},
			bweSample{At: at(1000), Acked: 10, Rate: 400_000},
			func(s bweState) bool { return s.Estimate == 440_000 }, "440k"},
		{"never lowered by the cap", bweState{Estimate: 3_000_000, Delivered: 400_000, LastUpdate: at(0)},
			bweSample{At: at(1000), Acked: 10, Rate: 400_000},
			func(s bweState) bool { return s.Estimate == 3_000_000 }, "3M"},
		{"a probe that got through: up to what it delivered", bweState{Estimate: 600_000, Delivered: 1_900_000, LastUpdate: at(0)},
			bweSample{At: at(100), Acked: 10, Rate: 1_900_000, Probing: true},
			func(s bweState) bool { return s.Estimate >= 1_900_000 }, ">= 1.9M"},
		{"a second cut while the queue drains: no compounding", bweState{Estimate: 720_000, Delivered: 800_000, LastDecrease: at(0), LastUpdate: at(0), Overuse: 2},
			bweSample{At: at(400), Acked: 10, Rate: 800_000, Delay: 80 * ms, DelayTrend: 5 * ms},
			func(s bweState) bool { return s.Estimate == 720_000 && s.LastDecrease == at(400) }, "720k again"},
		{"a report faster than the smoothed rate: cut from it", bweState{Estimate: 3_000_000, Delivered: 400_000, LastUpdate: at(0), Overuse: 1},
			bweSample{At: at(100), Acked: 10, Rate: 800_000, Delay: 60 * ms, DelayTrend: 5 * ms},
			func(s bweState) bool { return s.Estimate == 720_000 }, "720k (90% of the report's 800k)"},
		{"never below the floor", bweState{Estimate: 55_000, Delivered: 20_000, LastUpdate: at(0), Overuse: 1},
			bweSample{At: at(100), Acked: 10, Rate: 20_000, Delay: 300 * ms},
			func(s bweState) bool { return s.Estimate == minEstimate }, "the floor"},
	} {
		if got := nextEstimate(tc.s, tc.x); !tc.want(got) {
			t.Errorf("%s: %+v, want %s", tc.name, got, tc.say)
		}
	}
}

// Under a steady 800 kbit/s cap, a subscriber sent the 1.5 Mbit/s top
// layer while the estimate allows it (with headroom), else the 500 kbit/s
// middle one, is on the middle layer within 2 s and stays there (no
// probing here: the estimate alone never climbs back to the top).
func TestEstimateUnderACap(t *testing.T) {
	var s bweState
	now := 10_000 * ms
	const cap = 800_000
	queue := int64(0)          // ns
	for i := 0; i < 100; i++ { // 10 s of 100 ms reports
		now += 100 * ms
		send := 1_500_000
		if s.Estimate > 0 && s.Estimate < 1_875_000 {
			send = 500_000
		}
		prev := queue
		queue = max(0, queue+int64(send-cap)*100*ms/cap)
		delivered := send
		if queue > 0 {
			delivered = cap
		}
		s = nextEstimate(s, bweSample{At: now, Acked: 20, Rate: delivered, Delay: queue, DelayTrend: queue - prev})
		if i >= 20 && s.Estimate >= 1_875_000 {
			t.Fatalf("after %d ms under an 800k cap the estimate is %d: the top layer again", i*100, s.Estimate)
		}
	}
	if s.Estimate < 625_000 {
		t.Fatalf("settled at %d under an 800k cap: the middle layer does not fit", s.Estimate)
	}
}

func TestProbe(t *testing.T) {
	at := func(s int64) int64 { return 100_000*ms + s*ms }
	est := bweState{Estimate: 600_000, LastDecrease: at(-5000)}
	type probeCase struct {
		name string
		s    probeState
		now  int64
		est  bweState
		want int
		out  func(probeState) bool
	}
	check := func(cases []probeCase, resume bool) {
		t.Helper()
		for _, tc := range cases {
			if got := nextProbe(tc.s, tc.now, tc.est, tc.want, resume); !tc.out(got) {
				t.Errorf("%s (resume %v): %+v", tc.name, resume, got)
			}
		}
	}
	check([]probeCase{
		{"nothing wanted", probeState{}, at(0), est, 0, func(p probeState) bool { return !p.Active }},
		{"wanted above the estimate: probe, 30% above it at most", probeState{}, at(0), est, 1_900_000,
			func(p probeState) bool { return p.Active && p.Goal == 780_000 && p.Start == at(0) }},
		{"wanted a little above: probe to 15% above it", probeState{}, at(0), est, 650_000,
			func(p probeState) bool { return p.Active && p.Goal == 747_500 }},
		{"after a step that got through: twice what is known", probeState{Streak: 1}, at(0), est, 1_900_000,
			func(p probeState) bool { return p.Active && p.Goal == 1_200_000 }},
		{"loss or a queue during the probe: stop at once", probeState{Active: true, Start: at(0), Goal: 900_000, Backoff: int64(2 * time.Second)},
			at(300), bweState{Estimate: 600_000, LastDecrease: at(-5000), Congested: at(200)}, 1_900_000,
			func(p probeState) bool { return !p.Active && p.Until == at(2300) }},
		{"wanted below: no probe", probeState{}, at(0), est, 500_000, func(p probeState) bool { return !p.Active }},
		{"in backoff: no probe", probeState{Until: at(1000)}, at(0), est, 1_900_000, func(p probeState) bool { return !p.Active }},
		{"just cut: no probe", probeState{}, at(0), bweState{Estimate: 600_000, LastDecrease: at(-500)}, 1_900_000,
			func(p probeState) bool { return !p.Active }},
		{"cut during the probe: stop, back off twice as long", probeState{Active: true, Start: at(0), Goal: 1_900_000, Backoff: int64(2 * time.Second), Streak: 2},
			at(500), bweState{Estimate: 600_000, LastDecrease: at(400)}, 1_900_000,
			func(p probeState) bool {
				return !p.Active && p.Until == at(2500) && p.Backoff == int64(probeBackoffMax) && p.Streak == 0
			}},
		{"goal reached: the next step at once, twice what got through", probeState{Active: true, Start: at(0), Goal: 1_000_000, Backoff: int64(8 * time.Second)},
			at(500), bweState{Estimate: 920_000, LastDecrease: at(-5000)}, 1_900_000,
			func(p probeState) bool {
				return p.Active && p.Start == at(500) && p.Goal == 1_840_000 && p.Backoff == int64(probeBackoffMin) && p.Streak == 1
			}},
		{"goal reached and nothing more wanted: stop", probeState{Active: true, Start: at(0), Goal: 1_000_000, Backoff: int64(8 * time.Second)},
			at(500), bweState{Estimate: 920_000, LastDecrease: at(-5000)}, 900_000,
			func(p probeState) bool {
				return !p.Active && p.Backoff == int64(probeBackoffMin) && p.Until == at(500) && p.Streak == 1
			}},
		{"too long: stop", probeState{Active: true, Start: at(0), Goal: 1_900_000, Backoff: int64(2 * time.Second)},
			at(2000), est, 1_900_000, func(p probeState) bool { return !p.Active && p.Until == at(4000) }},
		{"a probe the link did not carry sets the ceiling", probeState{Active: true, Start: at(0), Goal: 520_000, Backoff: int64(2 * time.Second), Streak: 1},
			at(300), bweState{Estimate: 260_000, LastDecrease: at(-5000), Congested: at(200)}, 1_900_000,
			func(p probeState) bool { return !p.Active && p.Ceiling == 520_000 }},
		{"after a step that got through, no higher than the ceiling", probeState{Streak: 1, Ceiling: 338_000}, at(0),
			bweState{Estimate: 260_000, LastDecrease: at(-5000)}, 1_900_000,
			func(p probeState) bool { return p.Active && p.Goal == 338_000 }},
		{"through at the ceiling: the ceiling goes, the next step doubles", probeState{Active: true, Start: at(0), Goal: 338_000, Backoff: int64(2 * time.Second), Ceiling: 338_000},
			at(500), bweState{Estimate: 320_000, LastDecrease: at(-5000)}, 1_900_000,
			func(p probeState) bool { return p.Ceiling == 0 && p.Streak == 1 && p.Active && p.Goal == 640_000 }},
		{"a ceiling under the estimate is forgotten", probeState{Ceiling: 500_000}, at(0), est, 1_900_000,
			func(p probeState) bool { return p.Active && p.Goal == 780_000 && p.Ceiling == 0 }},
		{"backoff capped", probeState{Active: true, Start: at(0), Goal: 1_900_000, Backoff: int64(probeBackoffMax)},
			at(500), bweState{Estimate: 600_000, LastDecrease: at(400)}, 1_900_000,
			func(p probeState) bool { return p.Backoff == int64(probeBackoffMax) }},
		{"goal reached sooner than a bucket's burst: not yet through", probeState{Active: true, Start: at(0), Goal: 160_000, Backoff: int64(2 * time.Second)},
			at(120), bweState{Estimate: 150_000, LastDecrease: at(-5000)}, 250_000,
			func(p probeState) bool { return p.Active && p.Streak == 0 }},
		{"a queue sooner than that: stop at once all the same", probeState{Active: true, Start: at(0), Goal: 160_000, Backoff: int64(2 * time.Second)},
			at(120), bweState{Estimate: 60_000, LastDecrease: at(-5000), Congested: at(100)}, 250_000,
			func(p probeState) bool { return !p.Active && p.Until == at(2120) }},
	}, false)
	// Resuming a video paused for bandwidth (audio alone flows): the
	// wait after a failed probe is probeBackoffResume at most.
	check([]probeCase{
		{"resuming a paused video: the wait after a failed probe is short", probeState{Active: true, Start: at(0), Goal: 160_000, Backoff: int64(probeBackoffMax)},
			at(300), bweState{Estimate: 60_000, LastDecrease: at(-5000), Congested: at(250)}, 250_000,
			func(p probeState) bool {
				return !p.Active && p.Until == at(300)+int64(probeBackoffResume) && p.Backoff == int64(probeBackoffMax)
			}},
		{"resuming, a probe that ran its time: the short wait too", probeState{Active: true, Start: at(0), Goal: 160_000, Backoff: int64(probeBackoffMax)},
			at(2000), bweState{Estimate: 60_000, LastDecrease: at(-5000)}, 250_000,
			func(p probeState) bool { return !p.Active && p.Until == at(2000)+int64(probeBackoffResume) }},
		{"resuming, the first failure: the usual wait when shorter", probeState{Active: true, Start: at(0), Goal: 160_000, Backoff: int64(time.Second)},
			at(300), bweState{Estimate: 60_000, LastDecrease: at(-5000), Congested: at(250)}, 250_000,
			func(p probeState) bool { return !p.Active && p.Until == at(1300) }},
	}, true)
	// 1.9 Mbit/s goal, 600 kbit/s sent: 1.3 Mbit/s of padding is 3250
	// bytes per 20 ms, 12 packets of 267 bytes (46 bytes carried over).
	debt := 0
	if n := padPackets(1_900_000, 600_000, &debt); n != 12 || debt != 46 {
		t.Errorf("padPackets = %d (debt %d), want 12 (46)", n, debt)
	}
	// 196 kbit/s of padding: 490 bytes per tick, so 1 or 2 packets a
	// tick, 11 in 6 ticks (2,940 bytes owed).
	debt, total := 0, 0
	for range 6 {
		total += padPackets(240_000, 44_000, &debt)
	}
	if total != 11 {
		t.Errorf("6 ticks of 196 kbit/s: %d packets, want 11", total)
	}
	if n := padPackets(500_000, 600_000, &debt); n != 0 || debt != 0 {
		t.Errorf("padPackets above the goal = %d (debt %d)", n, debt)
	}
}

// A TWCC report read against the send history: lost and received
// packets, the delivered rate over the arrival span, the queuing delay
// above the minimum.
func TestBWESample(t *testing.T) {
	b := newBWE()
	base := 50_000 * ms
	for i := 0; i < 10; i++ { // 10 packets of 1000 bytes, 10 ms apart
		seq := b.hist.take()
		b.hist.record(seq, 1000, base+int64(i)*10*ms)
	}
	// Packets 0-4 arrive 10 ms apart, 5 is lost, 6-9 arrive 20 ms apart
	// (a queue building: 10, 20, 30, 40 ms late).
	fb := &rtcp.TransportLayerCC{
		BaseSequenceNumber: 0, PacketStatusCount: 10, ReferenceTime: 1000,
		PacketChunks: []rtcp.PacketStatusChunk{
			&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 5},
			&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 1},
			&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 4},
		},
	}
	for i, d := range []int64{0, 10, 10, 10, 10, 30, 20, 20, 20} {
		_ = i
		fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: d * 1000})
	}
	x, ok := b.sample(fb, base+200*ms)
	if !ok {
		t.Fatal("no sample")
	}
	if x.Acked != 10 || x.Lost != 1 {
		t.Errorf("acked %d lost %d, want 10 1", x.Acked, x.Lost)
	}
	// 8 packets' bytes over the 130 ms from the first arrival to the last.
	if want := 8 * 1000 * 8 * 1000 / 130; x.Rate != want {
		t.Errorf("rate %d, want %d", x.Rate, want)
	}
	if x.Delay != 40*ms {
		t.Errorf("queuing delay %v, want 40ms", time.Duration(x.Delay))
	}
	// A report of packets never sent says nothing.
	if _, ok := b.sample(&rtcp.TransportLayerCC{BaseSequenceNumber: 5000, PacketStatusCount: 1,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 1}}}, base); ok {
		t.Error("a sample from packets never sent")
	}
}

// Retransmissions take at most 30% of the estimate (a second's worth at
// once); before an estimate, all pass.
func TestRetransmitBudget(t *testing.T) {
	b := newBWE()
	now := 10_000 * ms
	if !b.allowRetransmit(1200, now) {
		t.Fatal("refused before any estimate")
	}
	b.st.Estimate = 800_000 // 240 kbit/s for retransmissions, as much at once
	b.rtxAt = now
	n := 0
	for b.allowRetransmit(1000, now+1000*ms) {
		n++
	}
	if n != 30 { // 240,000 bits / 8,000
		t.Fatalf("%d retransmissions of 1000 bytes after a second at 800 kbit/s, want 30", n)
	}
	if b.allowRetransmit(1000, now+1000*ms) {
		t.Fatal("over the budget")
	}
	if !b.allowRetransmit(1000, now+1100*ms) { // 24,000 bits refilled
		t.Fatal("not refilled")
	}
}

// The send history keeps the last sendHistorySize packets, across the
// wrap of the transport-wide sequence number, and never answers for a
// packet whose slot a newer one took.
func TestSendHistoryKeepsTheLast(t *testing.T) {
	b := newBWE()
	b.hist.next.Store(65536 - 100) // wraps 100 packets in
	const sent = 3 * sendHistorySize
	var first, last uint16
	for i := range sent {
		seq := b.hist.take()
		if i == 0 {
			first = seq
		}
		last = seq
		b.hist.record(seq, 100+i%1000, int64(i)*1000)
	}
	for back := range sendHistorySize {
		seq := last - uint16(back)
		us, size, ok := b.hist.lookup(seq)
		i := sent - 1 - back
		if !ok || us != int64(i) || size != 100+i%1000 {
			t.Fatalf("seq %d (%d back): %d µs, %d bytes, %v; want %d µs, %d bytes", seq, back, us, size, ok, i, 100+i%1000)
		}
	}
	for _, seq := range []uint16{last - sendHistorySize, first} {
		if _, _, ok := b.hist.lookup(seq); ok {
			t.Errorf("seq %d found, its slot was taken since", seq)
		}
	}
}
