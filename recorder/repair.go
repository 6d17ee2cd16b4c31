package recorder

// Repairing a recording cut short (the server was killed: SIGKILL, a
// crash, the power). What the muxer (ebml-go) has written by then is a
// prefix of the final file:
//
//	EBML header
//	Segment, size unknown
//	  SeekHead     (where Info, Tracks and Cues are)
//	  Info         (Duration: a placeholder, patched at the end)
//	  Tracks
//	  Void         (cuesReserve bytes, where the Cues go at the end)
//	  Cluster, size unknown: Timecode, PrevSize, SimpleBlock...
//	  Cluster ...
//
// and the last Cluster may end inside a block (latchFile's buffer went to
// disk in pieces). Finalization would have patched the Duration and
// written the Cues into the Void. The repair does what it would have done
// with what is there: it keeps every complete block up to the first
// damage, drops the rest, patches the Duration, and writes Cues into the
// reserved space. Everything else is copied byte for byte, so the
// repaired file is laid out exactly as a normally finished one (and a
// repaired file repairs to itself).

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// ErrUnrepairable wraps the reasons a file cannot be repaired: not a WebM
// file, or cut before its first complete frame.
var ErrUnrepairable = errors.New("recorder: cannot repair")

// dateEpoch is time 0 of the Matroska DateUTC element.
var dateEpoch = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// Repaired describes a repaired recording.
type Repaired struct {
	Size      int64         // bytes of the repaired file
	Dropped   int64         // bytes of the original dropped at its end: a torn frame, an empty cluster
	Frames    int           // complete frames (blocks) kept
	Duration  time.Duration // from the first to the last frame kept
	Tracks    []string      // "audio/opus", "video/VP8", ... in the file's order
	StartedAt time.Time     // the file's DateUTC (its first frame); zero if it has none
	Cues      int           // seek points written; 0 when the file has no space for them
}

// Repair reads a WebM file of size bytes from src and writes it, repaired,
// to dst: the complete frames up to the first damage, with the Duration
// and Cues. It fails with ErrUnrepairable (before writing anything) if src
// is not a WebM file it can read up to a first complete frame, and with
// the I/O error if reading src or writing dst fails.
func Repair(src io.ReaderAt, size int64, dst io.Writer) (Repaired, error) {
	p, err := planRepair(src, size)
	if err != nil {
		return Repaired{}, err
	}
	if err := p.write(dst, src); err != nil {
		return Repaired{}, err
	}
	return p.result, nil
}

// patch replaces bytes of the original at off.
type patch struct {
	off int64
	b   []byte
}

// repairPlan is what a repair writes: the first keep bytes of the
// original, with the patches applied.
type repairPlan struct {
	keep    int64
	patches []patch // sorted, disjoint
	result  Repaired
}

// write copies the plan's bytes of src to dst.
func (p repairPlan) write(dst io.Writer, src io.ReaderAt) error {
	pos := int64(0)
	for _, pt := range p.patches {
		if err := copyRange(dst, src, pos, pt.off); err != nil {
			return err
		}
		if _, err := dst.Write(pt.b); err != nil {
			return err
		}
		pos = pt.off + int64(len(pt.b))
	}
	return copyRange(dst, src, pos, p.keep)
}

func copyRange(dst io.Writer, src io.ReaderAt, from, to int64) error {
	n, err := io.Copy(dst, io.NewSectionReader(src, from, to-from))
	if err == nil && n != to-from {
		err = io.ErrUnexpectedEOF // the file shrank under us
	}
	return err
}

// repairTrack is one TrackEntry.
type repairTrack struct {
	number uint64
	video  bool
	mime   string
}

// repairCluster is a Cluster with at least one complete block.
type repairCluster struct {
	el      element
	cue     bool  // it has a keyframe of the main track: a seek point
	cueTime int64 // that keyframe's time
}

// scanner walks a file once, front to back.
type scanner struct {
	w       *window
	segment element

	scale   int64 // nanoseconds per timecode unit
	durOff  int64 // the Duration's data, 0 if none
	durLen  int
	date    time.Time
	tracks  []repairTrack
	reserve [2]int64 // the largest run of Void and Cues before the first Cluster: [start, end)

	clusters        []repairCluster
	frames          int
	minT, maxT      int64 // block times, in timecode units
	lastEnd         int64 // end of the last complete block
	firstClusterOff int64
}

func planRepair(src io.ReaderAt, size int64) (repairPlan, error) {
	s := &scanner{w: &window{r: src, size: size}, scale: timecodeScale}
	if err := s.scan(); err != nil {
		if damaged(err) {
			return repairPlan{}, fmt.Errorf("%w: %w", ErrUnrepairable, err)
		}
		return repairPlan{}, err
	}
	if s.frames == 0 {
		return repairPlan{}, fmt.Errorf("%w: no complete frame", ErrUnrepairable)
	}
	return s.plan(), nil
}

// scan reads the headers, then the clusters up to the first damage. An
// error is returned only for damage before the first cluster, or I/O.
func (s *scanner) scan() error {
	w := s.w
	ebml, err := w.header(0)
	if err != nil {
		return err
	}
	if ebml.id != idEBML || ebml.size < 0 || ebml.end() > w.size {
		return fmt.Errorf("no EBML header: %w", errCorrupt)
	}
	doc, err := s.childString(ebml, idDocType)
	if err != nil {
		return err
	}
	if doc != "webm" && doc != "matroska" {
		return fmt.Errorf("document type %q: %w", doc, errCorrupt)
	}
	seg, err := w.header(ebml.end())
	if err != nil {
		return err
	}
	if seg.id != idSegment {
		return fmt.Errorf("no Segment: %w", errCorrupt)
	}
	s.segment = seg
	end := w.size
	if seg.size >= 0 {
		end = min(end, seg.end())
	}
	for pos := seg.data; pos < end; {
		e, err := w.header(pos)
		if err == nil && e.id == idCluster {
			pos, err = s.cluster(e, end)
			if err == nil {
				continue
			}
		}
		if err == nil && (e.size < 0 || e.end() > end) {
			err = fmt.Errorf("element %x at %d: size %d: %w", e.id, e.off, e.size, errTorn)
		}
		if err != nil {
			if s.firstClusterOff > 0 && damaged(err) {
				return nil // the readable part ends here
			}
			return err
		}
		if s.firstClusterOff == 0 {
			if err := s.beforeClusters(e); err != nil {
				return err
			}
		}
		pos = e.end()
	}
	if s.firstClusterOff == 0 {
		return fmt.Errorf("no cluster: %w", errTorn)
	}
	return nil
}

// beforeClusters reads one element before the first cluster.
func (s *scanner) beforeClusters(e element) error {
	switch e.id {
	case idInfo:
		return s.info(e)
	case idTracks:
		return s.trackList(e)
	case idVoid, idCues:
		if s.reserve[1] == e.off { // continues the current run
			s.reserve[1] = e.end()
		} else if e.end()-e.off > s.reserve[1]-s.reserve[0] {
			s.reserve = [2]int64{e.off, e.end()}
		}
	}
	return nil
}

// children calls fn with each child of parent (of known size, complete).
func (s *scanner) children(parent element, fn func(element) error) error {
	for pos := parent.data; pos < parent.end(); {
		e, err := s.w.header(pos)
		if err != nil {
			return err
		}
		if e.size < 0 || e.end() > parent.end() {
			return fmt.Errorf("element %x at %d overruns its parent: %w", e.id, e.off, errCorrupt)
		}
		if err := fn(e); err != nil {
			return err
		}
		pos = e.end()
	}
	return nil
}

// maxStringLen bounds the strings read (a DocType, a CodecID).
const maxStringLen = 64

func (s *scanner) childString(parent element, id uint32) (string, error) {
	var out string
	err := s.children(parent, func(e element) error {
		if e.id != id {
			return nil
		}
		if e.size > maxStringLen {
			return fmt.Errorf("string of %d bytes: %w", e.size, errCorrupt)
		}
		b, err := s.w.bytes(e.data, int(e.size))
		if err != nil {
			return err
		}
		out = string(trimNul(b))
		return nil
	})
	return out, err
}

func trimNul(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// uint reads an unsigned integer element (at most 8 bytes).
func (s *scanner) uint(e element) (uint64, error) {
	if e.size > 8 {
		return 0, fmt.Errorf("integer of %d bytes: %w", e.size, errCorrupt)
	}
	b, err := s.w.bytes(e.data, int(e.size))
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func (s *scanner) info(info element) error {
	return s.children(info, func(e element) error {
		switch e.id {
		case idTimecodeScale:
			v, err := s.uint(e)
			if err != nil {
				return err
			}
			if v == 0 || v > math.MaxInt32 { // 0 is invalid; more than ~2 s per unit is nonsense
				return fmt.Errorf("TimecodeScale %d: %w", v, errCorrupt)
			}
			s.scale = int64(v)
		case idDuration:
			if e.size == 4 || e.size == 8 {
				s.durOff, s.durLen = e.data, int(e.size)
			}
		case idDateUTC:
			v, err := s.uint(e)
			if err != nil {
				return err
			}
			if e.size == 8 {
				s.date = dateEpoch.Add(time.Duration(int64(v)))
			}
		}
		return nil
	})
}

func (s *scanner) trackList(tracks element) error {
	return s.children(tracks, func(te element) error {
		if te.id != idTrackEntry {
			return nil
		}
		var t repairTrack
		var codec string
		err := s.children(te, func(e element) error {
			switch e.id {
			case idTrackNumber:
				v, err := s.uint(e)
				t.number = v
				return err
			case idTrackType:
				v, err := s.uint(e)
				t.video = v == 1 // Matroska track type 1: video
				return err
			case idCodecID:
				if e.size > maxStringLen {
					return fmt.Errorf("CodecID of %d bytes: %w", e.size, errCorrupt)
				}
				b, err := s.w.bytes(e.data, int(e.size))
				codec = string(trimNul(b))
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		if t.number == 0 || slices.ContainsFunc(s.tracks, func(o repairTrack) bool { return o.number == t.number }) {
			return fmt.Errorf("track number %d: %w", t.number, errCorrupt)
		}
		t.mime = mimeOfCodecID(codec)
		s.tracks = append(s.tracks, t)
		return nil
	})
}

// mimeOfCodecID names a Matroska codec as the recordings API does.
func mimeOfCodecID(id string) string {
	switch id {
	case "A_OPUS":
		return "audio/opus"
	case "V_VP8":
		return "video/VP8"
	case "V_VP9":
		return "video/VP9"
	}
	return id
}

// cluster reads the cluster c up to its end (or segEnd, for an unknown
// size) and returns where the next element starts. Damage inside it is
// returned after the cluster's complete blocks are counted.
func (s *scanner) cluster(c element, segEnd int64) (int64, error) {
	if len(s.tracks) == 0 {
		return 0, fmt.Errorf("cluster before tracks: %w", errCorrupt)
	}
	if s.firstClusterOff == 0 {
		s.firstClusterOff = c.off
	}
	end := segEnd
	if c.size >= 0 {
		end = min(end, c.end())
	}
	rc := repairCluster{el: c}
	counted := false
	tc, haveTC := int64(0), false
	pos := c.data
	for pos < end {
		e, err := s.w.header(pos)
		if err != nil {
			return pos, err
		}
		if c.size < 0 && topLevel(e.id) {
			return pos, nil // the next cluster, or whatever follows the clusters
		}
		if e.size < 0 || e.end() > end {
			return pos, fmt.Errorf("element %x at %d, size %d: %w", e.id, e.off, e.size, errTorn)
		}
		switch e.id {
		case idTimecode:
			v, err := s.uint(e)
			if err != nil {
				return pos, err
			}
			if v > math.MaxInt32 { // ~25 days in ms: no recording is that long
				return pos, fmt.Errorf("cluster timecode %d: %w", v, errCorrupt)
			}
			tc, haveTC = int64(v), true
		case idSimpleBlock, idBlockGroup:
			if !haveTC {
				return pos, fmt.Errorf("block before the cluster's timecode: %w", errCorrupt)
			}
			track, rel, key, err := s.block(e)
			if err != nil {
				return pos, err
			}
			s.addBlock(&rc, track, tc+rel, key, e.end())
			if !counted {
				counted = true
				s.clusters = append(s.clusters, rc)
			}
			s.clusters[len(s.clusters)-1] = rc
		}
		pos = e.end()
	}
	if c.size >= 0 && c.end() > segEnd {
		return pos, fmt.Errorf("cluster at %d cut: %w", c.off, errTorn)
	}
	return pos, nil
}

// block reads a SimpleBlock or a BlockGroup's Block: its track (one the
// file declares), its time relative to the cluster, and whether it is a
// keyframe.
func (s *scanner) block(e element) (repairTrack, int64, bool, error) {
	b, key := e, true
	if e.id == idBlockGroup {
		found := false
		err := s.children(e, func(c element) error {
			switch c.id {
			case idBlock:
				b, found = c, true
			case idReferenceBlock:
				key = false // it refers to an earlier frame
			}
			return nil
		})
		if err != nil {
			return repairTrack{}, 0, false, err
		}
		if !found {
			return repairTrack{}, 0, false, fmt.Errorf("BlockGroup without a Block: %w", errCorrupt)
		}
	}
	// Track number (a vint, 1 to 8 bytes), 16-bit signed time, flags.
	h, err := s.w.bytes(b.data, int(min(b.size, 11)))
	if err != nil {
		return repairTrack{}, 0, false, err
	}
	num, n, err := readVint(h)
	if err != nil || len(h) < n+3 {
		return repairTrack{}, 0, false, fmt.Errorf("block header at %d: %w", b.data, errCorrupt)
	}
	i := slices.IndexFunc(s.tracks, func(t repairTrack) bool { return int64(t.number) == num })
	if i < 0 {
		return repairTrack{}, 0, false, fmt.Errorf("block of undeclared track %d: %w", num, errCorrupt)
	}
	rel := int64(int16(uint16(h[n])<<8 | uint16(h[n+1])))
	if e.id == idSimpleBlock {
		key = h[n+2]&0x80 != 0
	}
	return s.tracks[i], rel, key, nil
}

func (s *scanner) addBlock(rc *repairCluster, t repairTrack, at int64, key bool, end int64) {
	if s.frames == 0 || at < s.minT {
		s.minT = at
	}
	if s.frames == 0 || at > s.maxT {
		s.maxT = at
	}
	s.frames++
	s.lastEnd = end
	if key && !rc.cue && at >= 0 && t.number == s.mainTrack() {
		rc.cue, rc.cueTime = true, at
	}
}

// mainTrack is the track the cues point at: the first video track, else
// the first track.
func (s *scanner) mainTrack() uint64 {
	for _, t := range s.tracks {
		if t.video {
			return t.number
		}
	}
	return s.tracks[0].number
}

// plan turns the scan into the bytes to write.
func (s *scanner) plan() repairPlan {
	keep := s.lastEnd
	var patches []patch
	// A Segment or last Cluster of known size that no longer ends where
	// it said: give the true size (or "unknown" if that field cannot hold
	// it). ebml-go writes both as unknown, so this is for other writers.
	resize := func(e element) {
		if e.size >= 0 && e.end() != keep {
			patches = append(patches, patch{e.sizeOff, sizeField(keep-e.data, e.sizeLen)})
		}
	}
	resize(s.segment)
	if last := s.clusters[len(s.clusters)-1].el; last.size >= 0 {
		resize(last)
	}
	if s.durOff > 0 && s.maxT > 0 {
		b := make([]byte, s.durLen)
		if s.durLen == 8 {
			binary.BigEndian.PutUint64(b, math.Float64bits(float64(s.maxT)))
		} else {
			binary.BigEndian.PutUint32(b, math.Float32bits(float32(s.maxT)))
		}
		patches = append(patches, patch{s.durOff, b})
	}
	cues := 0
	if n := s.reserve[1] - s.reserve[0]; n >= 2 {
		var b []byte
		b, cues = s.cues(int(n))
		patches = append(patches, patch{s.reserve[0], b})
	}
	slices.SortFunc(patches, func(a, b patch) int { return cmp.Compare(a.off, b.off) })
	tracks := make([]string, len(s.tracks))
	for i, t := range s.tracks {
		tracks[i] = t.mime
	}
	return repairPlan{keep: keep, patches: patches, result: Repaired{
		Size:      keep,
		Dropped:   s.w.size - keep,
		Frames:    s.frames,
		Duration:  time.Duration(s.maxT-s.minT) * time.Duration(s.scale),
		Tracks:    tracks,
		StartedAt: s.date,
		Cues:      cues,
	}}
}

// cues returns exactly n bytes for the reserved space: the Cues (every
// other seek point dropped until they fit, as ebml-go does) and a Void
// filling the rest; or only a Void if not even one seek point fits.
func (s *scanner) cues(n int) ([]byte, int) {
	var points [][2]uint64 // time, cluster position in the segment
	for _, c := range s.clusters {
		if c.cue {
			points = append(points, [2]uint64{uint64(c.cueTime), uint64(c.el.off - s.segment.data)})
		}
	}
	main := s.mainTrack()
	for len(points) > 0 {
		var body []byte
		for _, p := range points {
			pos := appendUint(nil, idCueTrack, main)
			pos = appendUint(pos, idCueClusterPosition, p[1])
			point := appendUint(nil, idCueTime, p[0])
			point = appendElement(point, idCueTrackPositions, pos)
			body = appendElement(body, idCuePoint, point)
		}
		b := appendElement(nil, idCues, body)
		if rest := n - len(b); rest == 0 || rest >= 2 {
			if rest > 0 {
				b = append(b, void(rest)...)
			}
			return b, len(points)
		}
		if len(points) == 1 {
			break
		}
		thinned := points[:0:0]
		for i := 0; i < len(points); i += 2 {
			thinned = append(thinned, points[i])
		}
		points = thinned
	}
	return void(n), 0
}
