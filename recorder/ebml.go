package recorder

// The few EBML primitives the repair needs (RFC 8794): reading element
// headers from any byte source, however damaged, and writing the handful
// of elements it puts back (sizes, Cues, Void). ebml-go's decoder is not
// used here: it wants a whole, well-formed stream.

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// Element IDs (Matroska / WebM), with their marker bits as written.
const (
	idEBML               = 0x1A45DFA3
	idDocType            = 0x4282
	idSegment            = 0x18538067
	idSeekHead           = 0x114D9B74
	idInfo               = 0x1549A966
	idTracks             = 0x1654AE6B
	idCues               = 0x1C53BB6B
	idCluster            = 0x1F43B675
	idChapters           = 0x1043A770
	idTags               = 0x1254C367
	idAttachments        = 0x1941A469
	idVoid               = 0xEC
	idCRC32              = 0xBF
	idTimecodeScale      = 0x2AD7B1
	idDuration           = 0x4489
	idDateUTC            = 0x4461
	idTrackEntry         = 0xAE
	idTrackNumber        = 0xD7
	idTrackType          = 0x83
	idCodecID            = 0x86
	idTimecode           = 0xE7
	idSimpleBlock        = 0xA3
	idBlockGroup         = 0xA0
	idBlock              = 0xA1
	idReferenceBlock     = 0xFB
	idCuePoint           = 0xBB
	idCueTime            = 0xB3
	idCueTrackPositions  = 0xB7
	idCueTrack           = 0xF7
	idCueClusterPosition = 0xF1
)

// topLevel reports whether id is a child of Segment: in a Cluster of
// unknown size, such an ID ends the Cluster (RFC 8794 section 6.2).
func topLevel(id uint32) bool {
	switch id {
	case idSeekHead, idInfo, idTracks, idCues, idCluster, idChapters, idTags, idAttachments:
		return true
	}
	return false
}

// errTorn: the data ends inside an element (the file was cut there).
// errCorrupt: bytes that are no valid element (a half-written header,
// zeros left by a crash). Both end the readable part of a file; any other
// error is an I/O error and aborts the repair.
var (
	errTorn    = errors.New("cut inside an element")
	errCorrupt = errors.New("not a valid element")
)

// damaged reports whether err marks the end of the readable data rather
// than a failure to read it.
func damaged(err error) bool { return errors.Is(err, errTorn) || errors.Is(err, errCorrupt) }

// windowSize is how much of the file one read brings in: the scan walks
// forward through headers a few bytes long, so one read serves hundreds.
const windowSize = 64 << 10

// window reads a file of known size through a buffer.
type window struct {
	r    io.ReaderAt
	size int64
	off  int64 // file offset of buf[0]
	buf  []byte
}

// bytes returns the n bytes at off (n <= windowSize), errTorn if the file
// ends before them. The slice is valid until the next call.
func (w *window) bytes(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || n > windowSize || off > w.size-int64(n) {
		return nil, errTorn
	}
	if off >= w.off && off+int64(n) <= w.off+int64(len(w.buf)) {
		return w.buf[off-w.off : off-w.off+int64(n)], nil
	}
	want := min(int64(windowSize), w.size-off)
	if cap(w.buf) < int(want) {
		w.buf = make([]byte, windowSize)
	}
	w.buf = w.buf[:want]
	got, err := w.r.ReadAt(w.buf, off)
	if got < int(want) {
		w.buf = w.buf[:0]
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF // the file is shorter than its size said
		}
		return nil, fmt.Errorf("recorder: reading at %d: %w", off, err)
	}
	w.off = off
	return w.buf[:n], nil
}

// element is one element's header.
type element struct {
	id      uint32
	off     int64 // where the header starts
	sizeOff int64 // where its size field starts
	sizeLen int   // bytes of the size field
	data    int64 // where the data starts
	size    int64 // bytes of data; -1: unknown (the element runs to its parent's end)
}

// end is where the element ends (for a known size).
func (e element) end() int64 { return e.data + e.size }

// header reads the element header at off.
func (w *window) header(off int64) (element, error) {
	e := element{off: off}
	// An ID is 1 to 4 bytes, a size 1 to 8: 12 bytes hold any header, but
	// near the end of the file fewer may be there.
	b, err := w.bytes(off, int(min(12, max(0, w.size-off))))
	if err != nil {
		return e, err
	}
	if len(b) == 0 {
		return e, errTorn
	}
	idLen := bits.LeadingZeros8(b[0]) + 1
	if idLen > 4 {
		return e, errCorrupt
	}
	if len(b) < idLen+1 {
		return e, errTorn
	}
	for _, c := range b[:idLen] {
		e.id = e.id<<8 | uint32(c)
	}
	e.sizeOff = off + int64(idLen)
	size, n, err := readVint(b[idLen:])
	if err != nil {
		return e, err
	}
	e.sizeLen = n
	e.data = e.sizeOff + int64(n)
	e.size = size
	return e, nil
}

// readVint decodes an EBML variable-size integer (a data size): its value,
// -1 for the reserved "unknown" value (all value bits set), and its length.
func readVint(b []byte) (int64, int, error) {
	if len(b) == 0 {
		return 0, 0, errTorn
	}
	n := bits.LeadingZeros8(b[0]) + 1
	if n > 8 {
		return 0, 0, errCorrupt
	}
	if len(b) < n {
		return 0, 0, errTorn
	}
	v := uint64(b[0]) & (0xFF >> n)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	if v == 1<<(7*n)-1 {
		return -1, n, nil
	}
	return int64(v), n, nil
}

// sizeField encodes size in exactly width bytes (1 to 8), or the unknown
// size if it does not fit or size < 0.
func sizeField(size int64, width int) []byte {
	b := make([]byte, width)
	v := uint64(1<<(7*width) - 1) // unknown
	if size >= 0 && uint64(size) < v {
		v = uint64(size)
	}
	for i := width - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	b[0] |= 0x80 >> (width - 1)
	return b
}

// appendElement appends an element with the shortest size field.
func appendElement(b []byte, id uint32, data []byte) []byte {
	for shift := 24; shift >= 0; shift -= 8 {
		if c := byte(id >> shift); c != 0 || shift == 0 {
			b = append(b, c)
		}
	}
	width := 1
	for uint64(len(data)) >= 1<<(7*width)-1 {
		width++
	}
	b = append(b, sizeField(int64(len(data)), width)...)
	return append(b, data...)
}

// appendUint appends an unsigned integer element in as few bytes as it
// needs.
func appendUint(b []byte, id uint32, v uint64) []byte {
	n := max(1, (bits.Len64(v)+7)/8)
	data := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		data[i] = byte(v)
		v >>= 8
	}
	return appendElement(b, id, data)
}

// void returns a Void element of exactly n bytes (n >= 2).
func void(n int) []byte {
	if n-2 < 0x7F { // a 1-byte size holds 0 to 126
		return appendElement(nil, idVoid, make([]byte, n-2))
	}
	b := make([]byte, n)
	b[0] = idVoid
	copy(b[1:], sizeField(int64(n-9), 8))
	return b
}
