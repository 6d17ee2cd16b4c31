package sfu

import (
	"encoding/hex"
	"testing"

	"github.com/pion/rtp"

	"github.com/relaysfu/relayd/internal/codec"
)

// Real media for the RTP fuzz targets' seeds, cut to their first bytes (a
// keyframe is detected from the first few). How they were made:
//
//   - VP8, VP9 and H.264 are whole RTP packets (header included) that
//     ffmpeg 5.1 sent with its RTP muxer, encoding testsrc at 320x240 with
//     libvpx, libvpx-vp9 and libx264 (baseline, slice-max-size=1000), one
//     keyframe every 10 frames.
//   - The H.264 FU-A packets and the AV1 packets are payloads from pion's
//     H264Payloader and AV1Payloader (MTU 1200) over libx264 and libaom
//     output of the same source (ffmpeg has no AV1 RTP muxer), wrapped in
//     an RTP header by rtpWrap.
//
// ffmpeg's VP9 packetizer never sets P (inter-picture predicted), so its
// delta frames look like keyframe starts to any descriptor-only detector:
// those seeds are marked key=true for what KeyframeStart answers, not for
// what the frame is. Browsers set P.
type realPacket struct {
	name string
	mime string
	hex  string // a whole RTP packet, or (payload) only its payload
	// payload: hex is an RTP payload, to be wrapped by rtpWrap.
	payload bool
	key     bool // what KeyframeStart says of its payload
}

var realPackets = []realPacket{
	{"vp8 keyframe start (ffmpeg)", "video/VP8", "80600d28d00e08fa63080fc390808000b05a009d012a4001f00000070885858885848802021be4510b06bf08fc18eaaa7f7cfff967ea17f4bfec1fda", false, true},
	{"vp8 keyframe middle (ffmpeg)", "video/VP8", "80600d29d00e08fa63080fc3808080007c2091153d2988ab494a0573d1993cc72945cc3c0d50e5c93ca81f41eb826c55208cf105ffabb4acdb8321e9", false, false},
	{"vp8 keyframe last, marker (ffmpeg)", "video/VP8", "80e00d2bd00e08fa63080fc380808000cd04de63808ef123eec84451bdfb08931ee91622e0a33a1ba2c249a119ebce81ac83415da8cfb6c8301ef655", false, false},
	{"vp8 delta frame (ffmpeg)", "video/VP8", "80e00d2cd00e2c2263080fc390808001d109000710ac0018891af9bb5537387fdb1bfa57bf831f05de8806576bb660c677718ceee8ab6d91751a6c7a", false, false},
	{"vp8 delta start, two packets (ffmpeg)", "video/VP8", "80600d32d00eff1263080fc390808007312600021010147b5e4aa41e0e7b76b01a7d7fdbad27f4f89525df1a7e37fa87ee9746ff2dc143dad903fa07", false, false},
	{"vp8 second keyframe start (ffmpeg)", "video/VP8", "80600d36d00f688a63080fc39080800a705a009d012a4001f0000007088585888584880202033e750bf87fe1075603b3e7dfd87f53ffb9ff65ff1ff2", false, true},

	{"vp9 keyframe start (ffmpeg)", "video/VP9", "806009b32b020ac5ca99306408a2498342e013f00ef60a38241c184a000bc07fd9f9be8fe771ff5f97efc3f97e37b07eadc5edff6cfe7fd9e3bd6fac", false, true},
	{"vp9 keyframe middle (ffmpeg)", "video/VP9", "806009b42b020ac5ca99306400679987cf09242b07635e8bba26f935765d5cb84d15312fa9d7c5813e69ff6c03f707b7f7fbe787b0a839c816d635de", false, false},
	{"vp9 keyframe end (ffmpeg)", "video/VP9", "80e009b62b020ac5ca993064045b9828123be2c0868e324cd0bdcf49a07eb0ab1861bf2ee6e23cc2c39e658a56242d5f70d470da0403b4a9ffbdaaf4", false, false},
	{"vp9 delta frame, P unset (ffmpeg)", "video/VP9", "80e009b72b022dedca9930640ca60040929c245000001d73bbe067ef5ca762f5235357c95b1d8db62cdeba877d2724fed8c2000058fef7fa7f2dc303", false, true},
	// Shaped as a browser sends them (flexible mode, 15-bit picture id,
	// layer indices; the keyframe with its scalability structure), over
	// frame data of the ffmpeg stream.
	{"vp9 keyframe start, flexible (browser-shaped)", "video/VP9", "ba812a0018014000f00104824983420013f00ef60a38241c184a000bc07f", true, true},
	{"vp9 delta start, flexible (browser-shaped)", "video/VP9", "f8812b0002860040929c245000001d73bbe067ef", true, false},

	{"h264 STAP-A SPS+PPS+IDR (ffmpeg)", "video/H264", "806005d9d4ff74f18f2aecf71800186742c00bd90141fb011000000300100000030140f142a480000568cb83cb2003df658882011f2628000d88c9ff", false, true},
	{"h264 STAP-A SPS+PPS (ffmpeg)", "video/H264", "806005cad4fe15618f2aecf71800186742c00bd90141fb011000000300100000030140f142a480000568cb83cb2002830605ffff7fdc45e9bde6d948", false, true},
	{"h264 IDR slice (ffmpeg)", "video/H264", "806005cbd4fe15618f2aecf76588840ff2628000c3ec9ff87fe08c140a0007bc40002c0f10000408c000401a220a45000251c31c3fff9108c2008380", false, true},
	{"h264 P slice (ffmpeg)", "video/H264", "80e005d4d4fec5298f2aecf7419aa03fc06ed019397c197f0d02cc5c5ce9f8b7cbf834f8644e4ee80ef89267e80c1cbe0e3f86b8ac5740cdfc4ccfc1", false, false},
	// Cut to 60 bytes, shorter than its first NAL unit says: malformed.
	{"h264 STAP-A IDR, cut short (ffmpeg)", "video/H264", "80e005dcd4ff74f18f2aecf71803df65008108820fc66078800041c50080005801a22000225914c5314c53f1981e20a8040002c000b110514c5314c5", false, false},
	{"h264 STAP-A SPS+PPS (pion)", "video/H264", "7800186742c00bd90141fb011000000300100000030140f142a480000568cb83cb20", true, true},
	{"h264 SEI (pion)", "video/H264", "0605ffff6bdc45e9bde6d948b7962cd820d923eeef78323634202d20636f726520313634207233303935206261656534", true, false},
	{"h264 FU-A IDR start (pion)", "video/H264", "7c8588840ff2628000c3ec9ff87fe08c140a0007bc40002c0f10000408c000401a220a45000251c31c3fff9108c200a3", true, true},
	{"h264 FU-A IDR middle (pion)", "video/H264", "7c05a8e98299a08004210d4c15d75ff6b7d9b0a02a80036ca328da5fdb08598dac889bbf7b404539287dde29540028d0", true, false},
	{"h264 FU-A IDR end (pion)", "video/H264", "7c4519c1edcf9f227221fe34dc005e97f051dd8fcc1338fd219ac1f8621dda47be9780177f8515cc38bf500000421c30", true, false},

	{"av1 keyframe start, new sequence (pion)", "video/AV1", "680c08000000043cffbcdaf90040301400a0b010b44cf0919afd29e1e910496e0cc8b4c038ee15195548643add3f1cd7", true, true},
	{"av1 keyframe continued (pion)", "video/AV1", "9075fe9e1f1a788348754ffdfa449f44e6d5f5d431e1d08faf55d6c95ebc33cc47250a5a379b473ed7f73ec60ab97b02", true, false},
	{"av1 delta frame (pion)", "video/AV1", "10303201e040000003480008208205170540009923aa1ce4742ffb9e8ed62dede1514e132f86dccd36423506c13b9836", true, false},

	{"opus, 20 ms frame (synthetic)", "audio/opus", "7880a1b2c3d4e5f60718293a4b5c6d7e8f", true, false},
}

// bytes returns the packet (payload=false) or the payload (true) as bytes.
func (p realPacket) bytes() []byte {
	b, err := hex.DecodeString(p.hex)
	if err != nil {
		panic(p.name + ": " + err.Error())
	}
	return b
}

// rtpBytes returns the seed as a whole RTP packet with sequence number seq.
func (p realPacket) rtpBytes(seq uint16) []byte {
	b := p.bytes()
	if p.payload {
		return rtpWrap(seq, 3000*uint32(seq), true, b)
	}
	return b
}

// payloadBytes returns the seed's RTP payload.
func (p realPacket) payloadBytes() []byte {
	b := p.bytes()
	if p.payload {
		return b
	}
	var h rtp.Header
	n, err := h.Unmarshal(b)
	if err != nil {
		panic(p.name + ": " + err.Error())
	}
	return b[n:]
}

// rtpWrap puts payload in an RTP packet with a one-byte header extension,
// as a browser sends (abs-send-time and the like).
func rtpWrap(seq uint16, ts uint32, marker bool, payload []byte) []byte {
	p := rtp.Packet{Header: rtp.Header{
		Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 0x1234abcd, Marker: marker,
	}, Payload: payload}
	_ = p.Header.SetExtension(1, []byte{0x12, 0x34, 0x56})
	b, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// The captured media is detected as it should be: the seeds mean what
// their names say.
func TestRealPacketsKeyframes(t *testing.T) {
	for _, p := range realPackets {
		if got := codec.KeyframeStart(p.mime, p.payloadBytes()); got != p.key {
			t.Errorf("%s: KeyframeStart = %v, want %v", p.name, got, p.key)
		}
	}
}
