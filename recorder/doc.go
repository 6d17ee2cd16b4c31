// Package recorder writes the published tracks of one participant into one
// WebM file: at most one Opus audio track and one VP8 or VP9 video track.
//
// A Recorder is one more sfu.Sink on each up track it records: the up
// track's reader hands it every packet, and the sink copies the packet into
// a bounded queue (or drops and counts it when the queue is full; it never
// blocks the reader). The recorder's own goroutine, the only one that
// touches the media state, takes packets from the queue and:
//
//  1. reorders them and reassembles frames in pion's samplebuilder (one per
//     track), so reordering is undone and frames with lost packets are
//     dropped whole instead of written broken;
//  2. drops video after a gap until the next keyframe (asking the publisher
//     for one), because a frame whose reference was lost decodes to garbage;
//  3. turns RTP timestamps into milliseconds on one clock shared by both
//     tracks (each track is anchored at the arrival time of its first
//     packet), so audio and video line up;
//  4. holds the first frames back until every published track has started
//     (or a few seconds have passed), because WebM declares its tracks, and
//     the video size, in the header: see pending.go;
//  5. muxes into WebM with github.com/at-wat/ebml-go (SimpleBlocks, cues
//     and the duration written when the file is finalized).
//
// Close drains the queue, flushes the jitter buffers, finalizes the file and
// describes it.
//
// A file whose process was killed is never finalized: it has no cues, a
// placeholder duration, and maybe half a frame at its end. Repair (a pure
// function over the bytes) and RepairFile (in place, through a copy
// renamed over it) finish such a file from what is on disk; see repair.go.
// Each file records the wall-clock time of its first frame (DateUTC) for
// that, and the write buffer goes to the file at least once a second, so
// a kill loses at most the last few seconds.
package recorder
