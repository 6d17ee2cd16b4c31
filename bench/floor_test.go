package bench

import (
	"net"
	"net/netip"
	"testing"

	"github.com/pion/srtp/v3"
)

func TestFloorSenderAllocs(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	for _, p := range floorProfiles {
		send, err := newFloorSender(p, tx, netip.MustParseAddrPort(rx.LocalAddr().String()))
		if err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(200, func() {
			if err := send(); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", p, a)
		}
	}
}

func TestProfileByName(t *testing.T) {
	p, err := profileByName(DefaultSRTPProfile)
	if err != nil || p != srtp.ProtectionProfileAeadAes256Gcm {
		t.Errorf("profileByName(%q) = %v, %v", DefaultSRTPProfile, p, err)
	}
	if _, err := profileByName("ROT13"); err == nil {
		t.Error("unknown profile accepted")
	}
}

func TestMeasureFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("sends ~40k packets")
	}
	r, err := measureFloor(srtp.ProtectionProfileAeadAes128Gcm, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if r.USPerPacket <= 0 || len(r.Runs) != floorRuns {
		t.Errorf("floor = %+v", r)
	}
}

// The batched floor measures every run, with the batch and receivers it
// says it used.
func TestMeasureFloorBatched(t *testing.T) {
	if testing.Short() {
		t.Skip("sends ~160k packets")
	}
	r, err := MeasureFloorBatched(srtp.ProtectionProfileAeadAes256Gcm)
	if err != nil {
		t.Fatal(err)
	}
	if r.USPerPacket <= 0 || len(r.Runs) != floorRuns || r.Batch != floorBatch || r.Receivers != floorReceivers {
		t.Errorf("batched floor = %+v", r)
	}
}
