package sfu

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Every packet written through a batchConn arrives, intact and in order,
// at the address it was written to: full batches at once, partial ones
// after flushDelay, and what is left at close.
func TestBatchConnDelivers(t *testing.T) {
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	bc := newBatchConn(tx)
	const receivers, perReceiver = 5, 100 // 500 packets
	var rxs []*net.UDPConn
	got := make([][]string, receivers)
	var wg sync.WaitGroup
	for i := 0; i < receivers; i++ {
		rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		_ = rx.SetReadBuffer(4 << 20) // a burst of 100 must not overflow it
		rxs = append(rxs, rx)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			buf := make([]byte, 2000)
			for len(got[i]) < perReceiver {
				_ = rx.SetReadDeadline(time.Now().Add(3 * time.Second))
				n, from, err := rx.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				if from.Port() != uint16(tx.LocalAddr().(*net.UDPAddr).Port) {
					t.Errorf("packet from %v", from)
				}
				got[i] = append(got[i], string(buf[:n]))
			}
		}(i)
	}
	for k := 0; k < perReceiver; k++ {
		for i, rx := range rxs {
			p := bytes.Repeat([]byte(fmt.Sprintf("r%d-p%d;", i, k)), 100)
			n, err := bc.WriteToAddrPort(p, netip.MustParseAddrPort(rx.LocalAddr().String()))
			if err != nil || n != len(p) {
				t.Fatalf("write: %d %v", n, err)
			}
		}
	}
	wg.Wait() // the partial batch left after the loop goes out by the timer
	for i := range got {
		if len(got[i]) != perReceiver {
			t.Fatalf("receiver %d got %d packets, want %d", i, len(got[i]), perReceiver)
		}
		for k, p := range got[i] {
			if want := string(bytes.Repeat([]byte(fmt.Sprintf("r%d-p%d;", i, k)), 100)); p != want {
				t.Errorf("receiver %d packet %d: %.20q..., want %.20q...", i, k, p, want)
			}
		}
	}
	// After close, writes go out directly.
	if _, err := bc.WriteToAddrPort([]byte("late"), netip.MustParseAddrPort(rxs[0].LocalAddr().String())); err != nil {
		t.Fatal(err)
	}
	bc.close()
	buf := make([]byte, 100)
	_ = rxs[0].SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, _, err := rxs[0].ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "late" {
		t.Fatalf("after close: %q %v", buf[:n], err)
	}
}
