package recorder_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"

	"github.com/relaysfu/relayd/recorder"
)

// testFrames is seconds of 64x48 VP8 at 30 fps (a keyframe each second)
// and Opus at 50 frames/s, in time order.
func testFrames(seconds int) []recorder.TestFrame {
	var fs []recorder.TestFrame
	for v, a := 0, 0; v < seconds*30 || a < seconds*50; {
		vMs, aMs := int64(v)*1000/30, int64(a)*20
		if v < seconds*30 && vMs <= aMs {
			f := recorder.TestFrame{Video: true, Key: v%30 == 0, Ms: vMs, Data: vp8Inter}
			if f.Key {
				f.Data = vp8Key
			}
			fs = append(fs, f)
			v++
			continue
		}
		fs = append(fs, recorder.TestFrame{Key: true, Ms: aMs, Data: opusSilence})
		a++
	}
	return fs
}

// parsedWebM is a WebM file as ebml-go decodes it: the reference the
// repaired files are checked against.
type parsedWebM struct {
	Header  webm.EBMLHeader `ebml:"EBML"`
	Segment webm.Segment    `ebml:"Segment"`
}

// blockAt is one block of a parsed file: its track, time, data and where
// it ends in the file.
type blockAt struct {
	track uint64
	key   bool
	ms    int64
	data  string
	end   int64
}

// parseWebM decodes b with ebml-go and lists its blocks in file order.
// Where each ends: ebml-go marshals each block again, and the bytes are
// found in b, in order (ebml-go's element positions are not usable after a
// cluster of unknown size).
func parseWebM(t *testing.T, b []byte) (parsedWebM, []blockAt) {
	t.Helper()
	var p parsedWebM
	if err := ebml.Unmarshal(bytes.NewReader(b), &p); err != nil {
		t.Fatalf("ebml-go cannot read the file: %v", err)
	}
	var blocks []blockAt
	pos := 0
	for _, c := range p.Segment.Cluster {
		for _, sb := range c.SimpleBlock {
			var enc bytes.Buffer
			if err := ebml.Marshal(&struct {
				B ebml.Block `ebml:"SimpleBlock"`
			}{sb}, &enc); err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(b[pos:], enc.Bytes())
			if i < 0 {
				t.Fatalf("block %d not found after %d", len(blocks), pos)
			}
			pos += i + enc.Len()
			blocks = append(blocks, blockAt{sb.TrackNumber, sb.Keyframe, int64(c.Timecode) + int64(sb.Timecode), string(sb.Data[0]), int64(pos)})
		}
	}
	return p, blocks
}

func repair(b []byte) ([]byte, recorder.Repaired, error) {
	var out bytes.Buffer
	res, err := recorder.Repair(bytes.NewReader(b), int64(len(b)), &out)
	return out.Bytes(), res, err
}

// checkRepaired checks a repaired file against the blocks it must hold
// (a prefix of the original's): ebml-go reads it, every block is there
// with its time and data, the Duration is the last block's time, and each
// cue points at a cluster.
func checkRepaired(t *testing.T, out []byte, want []blockAt) {
	t.Helper()
	p, got := parseWebM(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d blocks, want %d", len(got), len(want))
	}
	maxMs := int64(0)
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("block %d: %+v, want %+v", i, got[i], want[i])
		}
		maxMs = max(maxMs, got[i].ms)
	}
	if int64(p.Segment.Info.Duration) != maxMs {
		t.Errorf("Duration %v, want %d", p.Segment.Info.Duration, maxMs)
	}
	// A seek point is a video keyframe (track 2).
	if p.Segment.Cues == nil && slices.ContainsFunc(want, func(b blockAt) bool { return b.track == 2 && b.key }) {
		t.Fatal("no cues")
	}
	if p.Segment.Cues == nil {
		return
	}
	segData := int64(bytes.Index(out, []byte{0x18, 0x53, 0x80, 0x67})) + 4 + 8 // ID, 8-byte unknown size
	for _, cp := range p.Segment.Cues.CuePoint {
		pos := segData + int64(cp.CueTrackPositions[0].CueClusterPosition)
		if pos+4 > int64(len(out)) || !bytes.Equal(out[pos:pos+4], []byte{0x1F, 0x43, 0xB6, 0x75}) {
			t.Fatalf("cue %+v points at no cluster", cp)
		}
	}
}

// A recording cut at any byte: everything before the first complete frame
// cannot be repaired (and nothing is written); from there on the repaired
// file holds exactly the complete frames, and ebml-go reads it back.
func TestRepairCutAnywhere(t *testing.T) {
	date := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cut, final, err := recorder.MuxForTest(testFrames(11), date) // clusters at 0, 5 and 10 s
	if err != nil {
		t.Fatal(err)
	}
	_, all := parseWebM(t, final)
	if len(all) < 11*30+11*50-10 {
		t.Fatalf("the muxer wrote %d blocks", len(all))
	}
	firstCluster := int64(bytes.Index(cut, []byte{0x1F, 0x43, 0xB6, 0x75}))

	// The whole stream, as a kill after the last frame leaves it.
	whole, res, err := repair(cut)
	if err != nil {
		t.Fatal(err)
	}
	checkRepaired(t, whole, all)
	if want := (recorder.Repaired{
		Size: all[len(all)-1].end, Dropped: int64(len(cut)) - all[len(all)-1].end, Frames: len(all),
		Duration: time.Duration(all[len(all)-1].ms) * time.Millisecond, Tracks: []string{"audio/opus", "video/VP8"},
		StartedAt: date, Cues: 3,
	}); !equalRepaired(res, want) {
		t.Errorf("Repaired %+v\nwant     %+v", res, want)
	}
	// The finished file repairs to the same bytes, and so does a
	// repaired one (a repair killed before the sidecar is done again).
	for name, in := range map[string][]byte{"finished": final, "repaired": whole} {
		if again, _, err := repair(in); err != nil || !bytes.Equal(again, whole) {
			t.Errorf("repairing the %s file: %v, same bytes: %v", name, err, bytes.Equal(again, whole))
		}
	}

	// Cuts around each cluster's start.
	clusterID := []byte{0x1F, 0x43, 0xB6, 0x75}
	var near []int64
	for off := firstCluster; off >= 0; {
		for k := max(0, off-30); k <= min(off+30, int64(len(cut))); k++ {
			near = append(near, k)
		}
		i := bytes.Index(cut[off+1:], clusterID)
		if i < 0 {
			break
		}
		off += 1 + int64(i)
	}
	if len(near) < 3*61 {
		t.Fatalf("%d offsets near clusters: fewer than 3 clusters", len(near))
	}
	checkCuts(t, cut, all, near)

	// Every cut of a 2 s recording (one cluster).
	cut, final, err = recorder.MuxForTest(testFrames(2), date)
	if err != nil {
		t.Fatal(err)
	}
	_, all = parseWebM(t, final)
	firstCluster = int64(bytes.Index(cut, clusterID))
	var every []int64
	for k := int64(0); k <= int64(len(cut)); k++ {
		if k >= firstCluster-200 || k%97 == 0 { // in the header, a sample is enough
			every = append(every, k)
		}
	}
	checkCuts(t, cut, all, every)
}

// checkCuts repairs cut, the muxer's output holding blocks all, cut short
// at each offset of ks.
func checkCuts(t *testing.T, cut []byte, all []blockAt, ks []int64) {
	t.Helper()
	firstCluster := int64(bytes.Index(cut, []byte{0x1F, 0x43, 0xB6, 0x75}))
	for i, k := range ks {
		kept := 0
		for kept < len(all) && all[kept].end <= k {
			kept++
		}
		out, res, err := repair(cut[:k])
		if kept == 0 {
			if !errors.Is(err, recorder.ErrUnrepairable) || len(out) != 0 {
				t.Fatalf("cut at %d, before the first frame: %v, %d bytes written", k, err, len(out))
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut at %d (%d frames): %v", k, kept, err)
		}
		end := all[kept-1].end
		if res.Frames != kept || res.Size != end || int64(len(out)) != end || res.Dropped != k-end {
			t.Fatalf("cut at %d: %+v, want %d frames, %d bytes", k, res, kept, end)
		}
		maxMs := int64(0)
		for _, b := range all[:kept] {
			maxMs = max(maxMs, b.ms)
		}
		if res.Duration != time.Duration(maxMs)*time.Millisecond {
			t.Fatalf("cut at %d: Duration %v, want %d ms", k, res.Duration, maxMs)
		}
		if !bytes.Equal(out[firstCluster:], cut[firstCluster:end]) {
			t.Fatalf("cut at %d: the clusters are not copied as they were", k)
		}
		if i%101 == 0 || i == len(ks)-1 {
			checkRepaired(t, out, all[:kept]) // ebml-go reads it back: a sample
		}
	}
}

func equalRepaired(a, b recorder.Repaired) bool {
	return a.Size == b.Size && a.Dropped == b.Dropped && a.Frames == b.Frames && a.Duration == b.Duration &&
		slices.Equal(a.Tracks, b.Tracks) && a.StartedAt.Equal(b.StartedAt) && a.Cues == b.Cues
}

// Inputs that are no WebM recording, or damaged before the first frame,
// are refused with ErrUnrepairable.
func TestRepairRefuses(t *testing.T) {
	cut, _, err := recorder.MuxForTest(testFrames(1), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	firstCluster := bytes.Index(cut, []byte{0x1F, 0x43, 0xB6, 0x75})
	zeroed := func(from, to int) []byte {
		b := slices.Clone(cut)
		clear(b[from:to])
		return b
	}
	for name, in := range map[string][]byte{
		"empty":                     nil,
		"text":                      []byte("hello, this is not a video file at all"),
		"zeros":                     make([]byte, 4096),
		"EBML header only":          cut[:40],
		"zeroed header":             zeroed(0, 64),
		"zeroed tracks":             zeroed(firstCluster-cuesReserveForTest-200, firstCluster-cuesReserveForTest),
		"zeroed first cluster":      zeroed(firstCluster, firstCluster+64),
		"doc type not webm":         bytes.Replace(slices.Clone(cut), []byte("webm"), []byte("wxbm"), 1),
		"first block of no track":   bytes.Replace(slices.Clone(cut), []byte{0xA3, 0x80 | 7, 0x81}, []byte{0xA3, 0x80 | 7, 0x89}, 1),
		"header cut in the reserve": cut[:firstCluster-100],
	} {
		out, _, err := repair(in)
		if !errors.Is(err, recorder.ErrUnrepairable) || len(out) != 0 {
			t.Errorf("%s: %v, %d bytes written", name, err, len(out))
		}
	}
}

// cuesReserveForTest is the muxer's cuesReserve (64 KiB).
const cuesReserveForTest = 64 << 10

// Damage in the middle (zeros, as a crash can leave in a file's last
// pages) ends the repaired file at the last complete frame before it.
func TestRepairStopsAtDamage(t *testing.T) {
	cut, final, err := recorder.MuxForTest(testFrames(3), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, all := parseWebM(t, final)
	mid := all[len(all)/2]
	b := slices.Clone(cut)
	clear(b[mid.end : mid.end+100])
	out, res, err := repair(b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frames != len(all)/2+1 || res.Size != mid.end {
		t.Fatalf("%+v, want %d frames, %d bytes", res, len(all)/2+1, mid.end)
	}
	checkRepaired(t, out, all[:len(all)/2+1])
}

// The repaired file plays: ffprobe finds both streams and the duration of
// what was kept, and ffmpeg decodes every frame without an error.
func TestRepairedFilePlays(t *testing.T) {
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("ffprobe not found (Debian package ffmpeg, installed by .ci/run): cannot check the file")
	}
	cut, final, err := recorder.MuxForTest(testFrames(6), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, all := parseWebM(t, final)
	// Cut in the middle of a block past 4 s.
	i := slices.IndexFunc(all, func(b blockAt) bool { return b.ms > 4000 })
	path := filepath.Join(t.TempDir(), "alice-1.webm")
	if err := os.WriteFile(path, cut[:all[i].end-3], 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := recorder.RepairFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frames != i {
		t.Errorf("%d frames kept, want %d", res.Frames, i)
	}
	probe := runFFprobe(t, ffprobe, path)
	want := res.Duration.Seconds()
	if d, err := strconv.ParseFloat(probe.Format.Duration, 64); err != nil || d < want-0.1 || d > want+0.1 || want < 3.9 {
		t.Errorf("ffprobe duration %q, want %.2fs (about 4 s)", probe.Format.Duration, want)
	}
	kinds := map[string]string{}
	for _, s := range probe.Streams {
		kinds[s.CodecType] = s.CodecName
	}
	if kinds["video"] != "vp8" || kinds["audio"] != "opus" {
		t.Errorf("streams %v, want vp8 and opus", kinds)
	}
	if ffmpeg, err := exec.LookPath("ffmpeg"); err == nil {
		var stderr bytes.Buffer
		cmd := exec.Command(ffmpeg, "-v", "error", "-i", path, "-f", "null", "-")
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("ffmpeg decode: %v: %s", err, stderr.String())
		}
	}
	if _, err := os.Stat(path + ".repair"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the repair's copy is left: %v", err)
	}
}

// A file that cannot be repaired is left exactly as it was.
func TestRepairFileKeepsOriginal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bob-2.webm")
	junk := []byte("\x1a\x45\xdf\xa3 not really webm")
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := recorder.RepairFile(path); !errors.Is(err, recorder.ErrUnrepairable) {
		t.Fatalf("RepairFile: %v, want ErrUnrepairable", err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, junk) {
		t.Fatalf("original changed: %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("files left: %v", entries)
	}
	if _, err := recorder.RepairFile(filepath.Join(dir, "missing.webm")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// smallReserve returns the muxer's output b with its 64 KiB cues reserve
// (a Void, or Cues and a Void) replaced by a 200-byte Void: the same
// structure, in a seed small enough for the fuzzer to minimize what it
// finds (with a 70 KB one it spends minutes on each).
func smallReserve(t testing.TB, b []byte) []byte {
	rs := bytes.Index(b, []byte{0x1F, 0x43, 0xB6, 0x75}) - cuesReserveForTest
	if rs < 0 || (b[rs] != 0xEC && b[rs] != 0x1C) {
		t.Fatal("no cues reserve where expected")
	}
	void := append([]byte{0xEC, 0x01, 0, 0, 0, 0, 0, 0, 200 - 9}, make([]byte, 200-9)...)
	return slices.Concat(b[:rs], void, b[rs+cuesReserveForTest:])
}

// FuzzRepair: whatever the bytes, Repair never panics; it writes nothing
// when it fails; and what it writes repairs to itself.
func FuzzRepair(f *testing.F) {
	cut, final, err := recorder.MuxForTest(testFrames(1), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		f.Fatal(err)
	}
	cut, final = smallReserve(f, cut), smallReserve(f, final)
	f.Add(cut)
	f.Add(final)
	f.Add(cut[:len(cut)-7])
	f.Add(cut[:len(cut)/2])
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x84, 0x42, 0x82, 0x81, 'w'})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, res, err := repair(in)
		if err != nil {
			if len(out) != 0 {
				t.Fatalf("%v, and %d bytes written", err, len(out))
			}
			return
		}
		if res.Size != int64(len(out)) || res.Size > int64(len(in)) || res.Dropped != int64(len(in))-res.Size || res.Frames == 0 {
			t.Fatalf("Repaired %+v for %d bytes in, %d out", res, len(in), len(out))
		}
		again, res2, err := repair(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("repairing the repaired file: %v, same bytes: %v", err, bytes.Equal(again, out))
		}
		if res2.Frames != res.Frames || res2.Duration != res.Duration || res2.Dropped != 0 {
			t.Fatalf("repaired twice: %+v, then %+v", res, res2)
		}
	})
}
