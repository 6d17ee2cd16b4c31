package bench

// The physical floor: the CPU cost, on this machine, of SRTP-encrypting one
// 1200-byte RTP packet with the profile the server negotiates and sending
// it to a loopback UDP socket (unconnected, with WriteTo, as pion's ICE
// mux does). One goroutine locked to its OS thread, measured with that
// thread's CPU time (getrusage RUSAGE_THREAD), not wall time; on loopback
// the kernel's receive path runs in the sender's system call, so it is part
// of the cost, as it is for the server. A reader on another goroutine
// drains the socket. No allocation per packet.
//
// Forwarding cannot cost less than this per packet: a server's cost per
// forwarded packet divided by the floor says how much it spends on top.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
	"golang.org/x/net/ipv4"
)

const (
	floorPayload = 1200
	floorRuns    = 7
	floorPackets = 20000 // per run
	floorWarmup  = 2000
)

// DefaultSRTPProfile is what two pion peers with default settings (the
// server and the bench's clients) negotiate: the DTLS server picks the
// first of its profiles the client offers, and pion's list starts with
// AEAD_AES_256_GCM.
const DefaultSRTPProfile = "SRTP_AEAD_AES_256_GCM"

// floorProfiles are the profiles `relaybench floor` compares.
var floorProfiles = []srtp.ProtectionProfile{
	srtp.ProtectionProfileAeadAes256Gcm,
	srtp.ProtectionProfileAeadAes128Gcm,
	srtp.ProtectionProfileAes128CmHmacSha1_80,
}

// profileByName maps pion's profile names ("SRTP_AEAD_AES_256_GCM") back.
func profileByName(name string) (srtp.ProtectionProfile, error) {
	for p := srtp.ProtectionProfile(1); p <= srtp.ProtectionProfileAeadAes256Gcm; p++ {
		if p.String() == name {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown SRTP profile %q", name)
}

// FloorResult is one floor measurement.
type FloorResult struct {
	Profile      string    `json:"srtp_profile"`
	PayloadBytes int       `json:"payload_bytes"`
	Packets      int       `json:"packets_per_run"`
	USPerPacket  float64   `json:"us_per_packet"` // median of the runs
	Runs         []float64 `json:"runs_us_per_packet"`
	// Batch > 0: the packets went to Receivers sockets in sendmmsg
	// batches of Batch (measureFloorBatched), not one sendto each.
	Batch     int `json:"sendmmsg_batch,omitempty"`
	Receivers int `json:"receivers,omitempty"`
}

// MeasureFloor measures the floor for profile.
func MeasureFloor(profile srtp.ProtectionProfile) (*FloorResult, error) {
	return measureFloor(profile, floorPackets)
}

// measureFloor measures with packets per run.
func measureFloor(profile srtp.ProtectionProfile, packets int) (*FloorResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	defer rx.Close()
	_ = rx.SetReadBuffer(4 << 20)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := rx.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	defer tx.Close()
	dst := netip.MustParseAddrPort(rx.LocalAddr().String())

	send, err := newFloorSender(profile, tx, dst)
	if err != nil {
		return nil, err
	}
	for i := 0; i < floorWarmup; i++ {
		if err := send(); err != nil {
			return nil, err
		}
	}
	res := &FloorResult{Profile: profile.String(), PayloadBytes: floorPayload, Packets: packets}
	for r := 0; r < floorRuns; r++ {
		t0 := threadCPU()
		for i := 0; i < packets; i++ {
			if err := send(); err != nil {
				return nil, err
			}
		}
		d := threadCPU() - t0
		res.Runs = append(res.Runs, float64(d)/float64(time.Microsecond)/float64(packets))
	}
	if slices.Contains(res.Runs, 0) {
		return nil, errors.New("floor: thread CPU time not available (getrusage RUSAGE_THREAD)")
	}
	sorted := slices.Clone(res.Runs)
	slices.Sort(sorted)
	res.USPerPacket = sorted[len(sorted)/2]
	return res, nil
}

// newFloorSender returns a function that builds, encrypts and sends the
// next packet, reusing its buffers.
func newFloorSender(profile srtp.ProtectionProfile, conn *net.UDPConn, dst netip.AddrPort) (func() error, error) {
	encrypt, err := newFloorEncrypter(profile)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1600)
	return func() error {
		enc, err := encrypt(out)
		if err != nil {
			return err
		}
		_, err = conn.WriteToUDPAddrPort(enc, dst)
		return err
	}, nil
}

// newFloorEncrypter returns a function that builds the next packet and
// encrypts it into out.
func newFloorEncrypter(profile srtp.ProtectionProfile) (func(out []byte) ([]byte, error), error) {
	keyLen, err := profile.KeyLen()
	if err != nil {
		return nil, err
	}
	saltLen, err := profile.SaltLen()
	if err != nil {
		return nil, err
	}
	key, salt := make([]byte, keyLen), make([]byte, saltLen)
	_, _ = rand.Read(key)
	_, _ = rand.Read(salt)
	ctx, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		return nil, err
	}
	payload := make([]byte, floorPayload)
	_, _ = rand.Read(payload)
	hdr := rtp.Header{Version: 2, PayloadType: 96, SSRC: 0x5eed1234}
	plain := make([]byte, 0, 1500)
	var seq uint16
	var ts uint32
	return func(out []byte) ([]byte, error) {
		seq++
		ts += 3000
		hdr.SequenceNumber, hdr.Timestamp = seq, ts
		n, err := hdr.MarshalTo(plain[:cap(plain)])
		if err != nil {
			return nil, err
		}
		pkt := append(plain[:n], payload...)
		return ctx.EncryptRTP(out, pkt, &hdr)
	}, nil
}

// srtpCipherOf returns the SRTP profile of a viewer's subscriber
// connection ("" when unknown).
func srtpCipherOf(v *viewer) string {
	c := v.client()
	if c == nil {
		return ""
	}
	pc := c.SubscriberPC()
	if pc == nil {
		return ""
	}
	for _, s := range pc.GetStats() {
		if ts, ok := s.(webrtc.TransportStats); ok && ts.SRTPCipher != "" {
			return ts.SRTPCipher
		}
	}
	return ""
}

// Batched floor: the same encryption, but the packets go round-robin to
// floorReceivers sockets (each drained by its own goroutine, as viewers
// are) in sendmmsg batches of floorBatch, as relayd sends (sfu/batchconn.go).
// It is not the floor the targets use (one sendto per packet, the way
// WebRTC servers send); it says how much of that floor is the system call.
const (
	floorReceivers = 200
	floorBatch     = 32
)

// MeasureFloorBatched measures the batched floor for profile.
func MeasureFloorBatched(profile srtp.ProtectionProfile) (*FloorResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var dsts []*net.UDPAddr
	for i := 0; i < floorReceivers; i++ {
		rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		defer rx.Close()
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := rx.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
			}
		}()
		dsts = append(dsts, rx.LocalAddr().(*net.UDPAddr))
	}
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	defer tx.Close()
	pc := ipv4.NewPacketConn(tx)
	encrypt, err := newFloorEncrypter(profile)
	if err != nil {
		return nil, err
	}
	msgs := make([]ipv4.Message, floorBatch)
	bufs := make([][]byte, floorBatch)
	for i := range msgs {
		bufs[i] = make([]byte, 1600)
		msgs[i].Buffers = [][]byte{nil}
	}
	k := 0
	sendBatch := func() error {
		for i := range msgs {
			enc, err := encrypt(bufs[i])
			if err != nil {
				return err
			}
			msgs[i].Buffers[0] = enc
			msgs[i].Addr = dsts[k%len(dsts)]
			k++
		}
		for m := msgs; len(m) > 0; {
			n, err := pc.WriteBatch(m, 0)
			if err != nil {
				return err
			}
			m = m[n:]
		}
		return nil
	}
	for i := 0; i < floorWarmup/floorBatch; i++ {
		if err := sendBatch(); err != nil {
			return nil, err
		}
	}
	res := &FloorResult{Profile: profile.String(), PayloadBytes: floorPayload, Packets: floorPackets, Batch: floorBatch, Receivers: floorReceivers}
	for r := 0; r < floorRuns; r++ {
		t0 := threadCPU()
		for i := 0; i < floorPackets/floorBatch; i++ {
			if err := sendBatch(); err != nil {
				return nil, err
			}
		}
		d := threadCPU() - t0
		res.Runs = append(res.Runs, float64(d)/float64(time.Microsecond)/float64(floorPackets/floorBatch*floorBatch))
	}
	sorted := slices.Clone(res.Runs)
	slices.Sort(sorted)
	res.USPerPacket = sorted[len(sorted)/2]
	return res, nil
}
