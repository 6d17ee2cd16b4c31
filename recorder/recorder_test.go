package recorder_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/metrics"
	"github.com/relaysfu/relayd/recorder"
	"github.com/relaysfu/relayd/sfu"
)

// pliSource is the Source of a test up track: it never reads (the test
// calls the sinks directly) and counts keyframe requests, which the test's
// "publisher" answers with a keyframe.
type pliSource struct{ requests atomic.Int32 }

func (s *pliSource) ReadRTP([]byte) (int, error) { return 0, io.EOF }
func (s *pliSource) RequestKeyframe() error {
	s.requests.Add(1)
	return nil
}

func newUpTrack(id string, kind webrtc.RTPCodecType, codec webrtc.RTPCodecCapability, src sfu.Source) *sfu.UpTrack {
	return sfu.NewUpTrack(sfu.UpTrackParams{
		ID: id, Participant: "alice", Kind: kind, Codec: codec, Source: src,
		Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New(),
	})
}

// 64x48 keyframes and the inter frame after them, made with ffmpeg's
// libvpx and libvpx-vp9 (error resilient, so the inter frame decodes after
// any frame of the same size), and a 20 ms Opus CELT frame of silence.
var (
	vp8Key, _   = hex.DecodeString("d003009d012a40003000390500011c240c2c2c442c2440100013ad501fc0103846aa801a6d3fa000fef936cfffaf32faf32faf32ffaf32ffeef37ede6fdbcdfefc80")
	vp8Inter, _ = hex.DecodeString("110300e39b380467af104f4fae8f2fde3f801fc06160bfd000222400")
	vp9Key, _   = hex.DecodeString("834983420003f002f000e0907061280000c060000013bffff24c200047ffffffcee33fffffff9d790000")
	vp9Inter, _ = hex.DecodeString("8701024a4007048383200000062000005470")
	opusSilence = []byte{0xf8, 0xff, 0xfe}
)

// chunk is the largest piece of a frame in one test packet: small, so that
// keyframes span several packets and reassembly is exercised.
const chunk = 24

// packetize splits one frame into RTP packets, each payload starting with
// the descriptor desc(first, last) returns; the marker is on the last.
func packetize(seq *uint16, ts uint32, frame []byte, desc func(first, last bool) []byte) []*rtp.Packet {
	var out []*rtp.Packet
	for off := 0; off < len(frame); off += chunk {
		end := min(off+chunk, len(frame))
		out = append(out, &rtp.Packet{
			Header: rtp.Header{
				Version: 2, PayloadType: 96, SequenceNumber: *seq, Timestamp: ts, SSRC: 0x1111,
				Marker: end == len(frame),
			},
			Payload: append(desc(off == 0, end == len(frame)), frame[off:end]...),
		})
		*seq++
	}
	return out
}

// vp8Packets packetizes a VP8 frame (RFC 7741): a payload descriptor with
// a 15-bit picture ID, S=1 on the first packet.
func vp8Packets(seq *uint16, ts uint32, picID uint16, frame []byte) []*rtp.Packet {
	return packetize(seq, ts, frame, func(first, _ bool) []byte {
		d := []byte{0x80, 0x80, 0x80 | byte(picID>>8&0x7f), byte(picID)} // X=1; I=1; M=1 + picture ID
		if first {
			d[0] |= 0x10 // S: start of the frame
		}
		return d
	})
}

// vp9Packets packetizes a VP9 frame (RFC 9628): a one-byte descriptor with
// B on the first packet, E on the last, P on inter frames.
func vp9Packets(seq *uint16, ts uint32, _ uint16, frame []byte) []*rtp.Packet {
	inter := frame[0]&0x04 != 0 // frame_type, after frame_marker, profile and show_existing_frame
	return packetize(seq, ts, frame, func(first, last bool) []byte {
		d := byte(0)
		if inter {
			d |= 0x40
		}
		if first {
			d |= 0x08
		}
		if last {
			d |= 0x04
		}
		return []byte{d}
	})
}

// network delivers packets to a sink with loss and reordering: each packet
// is lost with probability loss, or held back behind the next one with
// probability reorder.
type network struct {
	t             *testing.T
	rng           *rand.Rand
	loss, reorder float64
	held          *heldPacket
	sent, lost    int
}

type heldPacket struct {
	sink sfu.Sink
	p    *rtp.Packet
}

func (n *network) send(s sfu.Sink, p *rtp.Packet) {
	n.sent++
	switch r := n.rng.Float64(); {
	case r < n.loss:
		n.lost++
		return
	case r < n.loss+n.reorder && n.held == nil:
		n.held = &heldPacket{s, p}
		return
	}
	n.deliver(s, p)
	if h := n.held; h != nil {
		n.held = nil
		n.deliver(h.sink, h.p)
	}
}

func (n *network) deliver(s sfu.Sink, p *rtp.Packet) {
	raw, err := p.Marshal()
	if err != nil {
		n.t.Fatal(err)
	}
	var h rtp.Header
	hl, err := h.Unmarshal(raw)
	if err != nil {
		n.t.Fatal(err)
	}
	end := len(raw)
	if h.Padding {
		end -= int(raw[end-1])
	}
	// Only the sink's reader goroutine (here: the test) calls WriteRTP,
	// and the packet is dead once it returns: reuse nothing, but
	// scribble over it to catch a sink that kept it.
	pkt := &sfu.Packet{Header: &h, Payload: raw[hl:end], Raw: raw, Arrival: sfu.Now()}
	s.WriteRTP(pkt)
	clear(raw)
}

// videoCodec is what the recording test needs of a video codec.
type videoCodec struct {
	mime       string
	probeName  string // ffprobe's codec_name
	key, inter []byte
	packetize  func(seq *uint16, ts uint32, picID uint16, frame []byte) []*rtp.Packet
}

// TestRecordVP8AndOpus is the recording test of issue 7: 5 s of VP8 at 30
// fps and Opus at 50 packets/s, with 5% of the packets lost and 5% reordered,
// a keyframe every second plus one answering each keyframe request; the
// file must hold both streams and last 5 s (+-10%) as ffprobe sees it.
func TestRecordVP8AndOpus(t *testing.T) {
	testRecord(t, videoCodec{webrtc.MimeTypeVP8, "vp8", vp8Key, vp8Inter, vp8Packets})
}

// TestRecordVP9AndOpus: the same with VP9.
func TestRecordVP9AndOpus(t *testing.T) {
	testRecord(t, videoCodec{webrtc.MimeTypeVP9, "vp9", vp9Key, vp9Inter, vp9Packets})
}

func testRecord(t *testing.T, vc videoCodec) {
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("ffprobe not found (Debian package ffmpeg, installed by .ci/run): cannot check the recording")
	}
	dir := t.TempDir()
	rec, err := recorder.New(recorder.Params{Dir: dir, Room: "show/1", Participant: "alice", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	videoSrc := &pliSource{}
	video := newUpTrack("TR_v", webrtc.RTPCodecTypeVideo, webrtc.RTPCodecCapability{MimeType: vc.mime, ClockRate: 90000}, videoSrc)
	audio := newUpTrack("TR_a", webrtc.RTPCodecTypeAudio, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, &pliSource{})
	vSink, aSink := rec.Sink(video), rec.Sink(audio)
	if !video.AddSink(vSink) || !audio.AddSink(aSink) {
		t.Fatal("AddSink refused")
	}

	const (
		seconds   = 5
		fps       = 30
		audioPPS  = 50
		gop       = fps // a keyframe every second
		speed     = 2   // media runs 2x real time: keyframe requests are throttled in real time
		padEvery  = 40  // a burst of padding-only packets every 40 frames
		padBurst  = 5
		videoTick = 3000 // 90 kHz / 30 fps
		audioTick = 960  // 48 kHz * 20 ms
	)
	net := &network{t: t, rng: rand.New(rand.NewPCG(1, 2)), loss: 0.05, reorder: 0.05}
	var vSeq, aSeq uint16 = 65000, 100 // video wraps around 65535 on the way
	vTs0, aTs0 := uint32(math.MaxUint32-90000), uint32(12345)
	seenRequests := int32(0)
	keyframes := 0
	start := time.Now()
	for vi, ai := 0, 0; vi < seconds*fps || ai < seconds*audioPPS; {
		vAt := time.Duration(vi) * time.Second / fps
		aAt := time.Duration(ai) * time.Second / audioPPS
		if vi < seconds*fps && (ai >= seconds*audioPPS || vAt <= aAt) {
			time.Sleep(time.Until(start.Add(vAt / speed)))
			ts := vTs0 + uint32(vi)*videoTick
			key := vi%gop == 0
			if r := videoSrc.requests.Load(); r != seenRequests {
				seenRequests, key = r, true
			}
			frame := vc.inter
			if key {
				frame = vc.key
				keyframes++
			}
			for _, p := range vc.packetize(&vSeq, ts, uint16(vi), frame) {
				net.send(vSink, p)
			}
			if vi%padEvery == padEvery-1 {
				for range padBurst {
					p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: vSeq, Timestamp: ts, SSRC: 0x1111, Padding: true}, PaddingSize: 200}
					vSeq++
					net.send(vSink, p)
				}
			}
			vi++
			continue
		}
		time.Sleep(time.Until(start.Add(aAt / speed)))
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: aSeq, Timestamp: aTs0 + uint32(ai)*audioTick, SSRC: 0x2222}, Payload: opusSilence}
		aSeq++
		net.send(aSink, p)
		ai++
	}
	t.Logf("sent %d packets, lost %d, %d keyframes (%d requested)", net.sent, net.lost, keyframes, videoSrc.requests.Load())

	f, err := rec.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("file %+v", f)
	if videoSrc.requests.Load() == 0 {
		t.Error("the recorder never asked for a keyframe, despite losses")
	}
	if want := []string{"audio/opus", vc.mime}; !slices.Equal(f.Tracks, want) {
		t.Errorf("Tracks = %v, want %v", f.Tracks, want)
	}
	if d := filepath.Dir(f.Path); d != recorder.RoomDir(dir, "show/1") {
		t.Errorf("file in %s, want %s", d, recorder.RoomDir(dir, "show/1"))
	}
	if st, err := os.Stat(f.Path); err != nil || st.Size() != f.Size || f.Size == 0 {
		t.Errorf("Size = %d, stat: %v", f.Size, err)
	}
	if f.Participant != "alice" || time.Since(f.StartedAt) > time.Minute || time.Since(f.StartedAt) < 0 {
		t.Errorf("Participant %q, StartedAt %v", f.Participant, f.StartedAt)
	}
	if d := f.Duration.Seconds(); math.Abs(d-seconds) > seconds*0.1 {
		t.Errorf("Duration = %v, want 5s +-10%%", f.Duration)
	}

	// The file says when it started (DateUTC), so a repair (after a
	// crash there is no sidecar) knows it; and a finished file repairs
	// to one just as long.
	if rf, err := os.Open(f.Path); err != nil {
		t.Error(err)
	} else {
		res, err := recorder.Repair(rf, f.Size, io.Discard)
		_ = rf.Close()
		if err != nil || res.StartedAt.Sub(f.StartedAt).Abs() > 50*time.Millisecond || (res.Duration-f.Duration).Abs() > 100*time.Millisecond {
			t.Errorf("Repair of the finished file: %+v, %v; want StartedAt %v, Duration %v", res, err, f.StartedAt, f.Duration)
		}
	}

	probe := runFFprobe(t, ffprobe, f.Path)
	if d, err := strconv.ParseFloat(probe.Format.Duration, 64); err != nil || math.Abs(d-seconds) > seconds*0.1 {
		t.Errorf("ffprobe duration %q, want 5s +-10%%", probe.Format.Duration)
	}
	streams := map[string]probeStream{}
	for _, s := range probe.Streams {
		streams[s.CodecType] = s
	}
	if v := streams["video"]; v.CodecName != vc.probeName || v.Width != 64 || v.Height != 48 {
		t.Errorf("video stream %+v, want %s 64x48", v, vc.probeName)
	} else if n, _ := strconv.Atoi(v.Packets); n < seconds*fps/4 {
		t.Errorf("%d video frames, want at least a quarter of %d", n, seconds*fps)
	}
	if a := streams["audio"]; a.CodecName != "opus" {
		t.Errorf("audio stream %+v, want opus", a)
	} else if n, _ := strconv.Atoi(a.Packets); n < seconds*audioPPS*85/100 {
		t.Errorf("%d audio frames, want at least 85%% of %d", n, seconds*audioPPS)
	}

	// It plays: ffmpeg decodes every frame without an error.
	if ffmpeg, err := exec.LookPath("ffmpeg"); err == nil {
		var stderr bytes.Buffer
		cmd := exec.Command(ffmpeg, "-v", "error", "-i", f.Path, "-f", "null", "-")
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("ffmpeg decode: %v: %s", err, stderr.String())
		}
	}
}

type probeStream struct {
	CodecType string `json:"codec_type"`
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Packets   string `json:"nb_read_packets"`
}

type probeResult struct {
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Streams []probeStream `json:"streams"`
}

func runFFprobe(t *testing.T, ffprobe, path string) probeResult {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(ffprobe, "-v", "error", "-count_packets",
		"-show_entries", "format=duration:stream=codec_type,codec_name,width,height,nb_read_packets",
		"-of", "json", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v: %s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("ffprobe says: %s", stderr.String())
	}
	var res probeResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	t.Logf("ffprobe: %s", out)
	return res
}

// TestNoMediaNoFile: a recorder that got nothing leaves no file behind.
func TestNoMediaNoFile(t *testing.T) {
	dir := t.TempDir()
	rec, err := recorder.New(recorder.Params{Dir: dir, Room: "r", Participant: "bob", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	video := newUpTrack("TR_v", webrtc.RTPCodecTypeVideo, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, &pliSource{})
	s := rec.Sink(video)
	// Inter frames only: nothing can be written before a keyframe.
	var seq uint16
	net := &network{t: t, rng: rand.New(rand.NewPCG(1, 1))}
	for i := range 10 {
		for _, p := range vp8Packets(&seq, uint32(i*3000), uint16(i), vp8Inter) {
			net.send(s, p)
		}
	}
	if _, err := rec.Close(); err == nil || !errorsIs(err, recorder.ErrNoMedia) {
		t.Fatalf("Close: %v, want ErrNoMedia", err)
	}
	entries, _ := os.ReadDir(recorder.RoomDir(dir, "r"))
	if len(entries) != 0 {
		t.Fatalf("files left: %v", entries)
	}
	// Close again: same answer, and the sink is inert.
	if _, err := rec.Close(); !errorsIs(err, recorder.ErrNoMedia) {
		t.Fatalf("second Close: %v", err)
	}
	net.send(s, vp8Packets(&seq, 0, 0, vp8Key)[0])
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
