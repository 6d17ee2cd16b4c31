package bench

// The lab's children: the publisher and a group of Go viewers, each a
// process inside its own client namespace (see labproto.go for how they
// talk to the parent). RegisterLabChildren makes them runnable; a program
// that runs lab scenarios calls it and then netlab.MaybeRunChild first
// thing in main (or TestMain).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/relaysfu/relayd/client"
	"github.com/relaysfu/relayd/netlab"
)

// RegisterLabChildren registers the lab's child processes with netlab
// (relaybench-publisher, relaybench-viewers, relaybench-browser). Call it
// once, before netlab.MaybeRunChild.
func RegisterLabChildren() {
	netlab.Register(childPublisher, runPublisherChild)
	netlab.Register(childViewers, runViewersChild)
	netlab.Register(childBrowser, runBrowserChild)
	RegisterResumeLabChildren()
}

// labSettingEngine keeps a participant's ICE inside the lab: UDP4 host
// candidates on local only (its own link, with its own caps) or, when local
// is not valid, on the lab's addresses; remote candidates from the lab
// only; no mDNS.
func labSettingEngine(local netip.Addr) webrtc.SettingEngine {
	var se webrtc.SettingEngine
	inLab := func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		return ok && netlab.Net().Contains(a.Unmap())
	}
	if local.IsValid() {
		se.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && a.Unmap() == local
		})
	} else {
		se.SetIPFilter(inLab)
	}
	se.SetRemoteIPFilter(inLab)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return se
}

// readConfig reads the child's configuration, its first stdin line.
func readConfig(cio *childIO, participants int) (childConfig, error) {
	var cfg childConfig
	if err := cio.next(&cfg); err != nil {
		return cfg, fmt.Errorf("reading the configuration: %w", err)
	}
	if len(cfg.Tokens) != len(cfg.Identities) || len(cfg.Tokens) < participants {
		return cfg, fmt.Errorf("configuration with %d identities and %d tokens", len(cfg.Identities), len(cfg.Tokens))
	}
	return cfg, nil
}

// dialFrom opens connections from local (nil for the zero Addr: the
// default source). A viewer's signaling then takes its own link, as its
// media does: on a slow line, its join competes with nobody else's media.
func dialFrom(local netip.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if !local.IsValid() {
		return nil
	}
	d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
	return d.DialContext
}

// addr is participant i's own address (its link), or the zero Addr.
func (c *childConfig) addr(i int) netip.Addr {
	if i >= len(c.Addrs) {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(c.Addrs[i])
	return a
}

// awaitWindow reads the window command and sets w from it; io.EOF when the
// parent closed stdin first.
func awaitWindow(cio *childIO, w *window) (windowCmd, error) {
	var cmd windowCmd
	if err := cio.next(&cmd); err != nil {
		return cmd, err
	}
	if cmd.Cmd != "window" || cmd.EndNS <= cmd.StartNS {
		return cmd, fmt.Errorf("bad command %+v", cmd)
	}
	// Both in the future: nothing is counted until start.
	w.end.Store(cmd.EndNS)
	w.start.Store(cmd.StartNS)
	return cmd, nil
}

// sleepUntil waits for the wall-clock time ns.
func sleepUntil(ctx context.Context, ns int64) error {
	t := time.NewTimer(time.Until(time.Unix(0, ns)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// childMain runs a child's body and reports a failure to the parent before
// returning it (the exit status and stderr say it too).
func childMain(ctx context.Context, body func(context.Context, *childIO) error) error {
	cio := newChildIO(os.Stdin, os.Stdout)
	err := body(ctx, cio)
	if err != nil && !errors.Is(err, io.EOF) {
		_ = cio.send(childMsg{Type: "error", Error: err.Error()})
		return err
	}
	return nil
}

// drainUntilEOF waits for the parent to close stdin (or ctx to end).
func drainUntilEOF(ctx context.Context, cio *childIO) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var v map[string]any
		for cio.next(&v) == nil {
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// runPublisherChild is the room's host: it joins (creating the room),
// publishes the clip, and reports what it sent and heard back in the window.
func runPublisherChild(ctx context.Context, _ []string) error {
	return childMain(ctx, func(ctx context.Context, cio *childIO) error {
		cfg, err := readConfig(cio, 1)
		if err != nil {
			return err
		}
		var w window
		var p *clipPublisher
		if cfg.Simulcast {
			p, err = newSimulcastClipPublisher(cfg.Identities[0], cfg.FPS, cfg.LayerBitrates, cfg.Audio, &w)
		} else {
			p, err = newClipPublisher(cfg.Identities[0], cfg.FPS, cfg.VideoBitrate, cfg.Audio, &w)
		}
		if err != nil {
			return err
		}
		se := labSettingEngine(cfg.addr(0))
		opts := client.Options{SettingEngine: &se, TrackReader: drainTrack, NetDialContext: dialFrom(cfg.addr(0))}
		applyTransport(&se, &opts, cfg.Transport)
		jctx, cancel := context.WithTimeout(ctx, joinTimeout)
		c, err := client.Dial(jctx, cfg.BaseURL, cfg.Tokens[0], opts)
		if err != nil {
			cancel()
			return fmt.Errorf("publisher: %w", err)
		}
		defer c.Close()
		if cfg.Simulcast { // 1.1: publisher.layers
			_, err = c.JoinWith(jctx, client.JoinParams{Version: "1.1"})
		} else {
			_, err = c.Join(jctx)
		}
		if err == nil {
			err = c.Publish(jctx, p.tracks()...)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("publisher: %w", err)
		}
		p.start()
		defer p.stop()
		if cfg.Simulcast {
			if err := awaitSimulcast(ctx, c, cfg.Identities[0]); err != nil {
				return fmt.Errorf("publisher: %w", err)
			}
			p.bindLayerSSRCs(c.PublisherPC())
		}
		if err := cio.send(childMsg{Type: "ready"}); err != nil {
			return err
		}

		cmd, err := awaitWindow(cio, &w)
		if err != nil {
			return err
		}
		if err := sleepUntil(ctx, cmd.StartNS); err != nil {
			return err
		}
		p.fb.rrMaxFractionLost.Store(0)
		fb0 := p.fb.snapshot()
		if err := sleepUntil(ctx, cmd.EndNS); err != nil {
			return err
		}
		fb1 := p.fb.snapshot()
		if err := sleepUntil(ctx, cmd.EndNS+cmd.GraceNS); err != nil {
			return err
		}
		f := &publisherFigures{
			Joined:             true,
			VideoPackets:       p.winVideo.Load(),
			AudioPackets:       p.winAudio.Load(),
			Keyframes:          p.winKeyframes.Load(),
			KeyframesOnRequest: p.winKeyOnReq.Load(),
			NACKPackets:        fb1.nackPackets - fb0.nackPackets,
			NACKedSeqs:         fb1.nackedSeqs - fb0.nackedSeqs,
			PLIs:               fb1.plis - fb0.plis,
			FIRs:               fb1.firs - fb0.firs,
			REMBs:              fb1.rembs - fb0.rembs,
			TWCC:               fb1.twcc - fb0.twcc,
			RRs:                fb1.rrs - fb0.rrs,
			RRLost:             fb1.rrTotalLost - fb0.rrTotalLost,
			ICEState:           pcState(c.PublisherPC()),
			Transport:          pcTransport(c.PublisherPC()),
			Layers:             p.layerFiguresOf(cmd.EndNS, float64(cmd.EndNS-cmd.StartNS)/1e9),
		}
		if p.sim != nil {
			f.ActiveLayers = p.sim.Active()
		}
		if fb1.rembs > 0 {
			f.REMBLastBps = num(fb1.rembLastBps)
		}
		if f.RRs > 0 {
			f.RRMaxFractionLost = num(float64(fb1.rrMaxFractionLost) / 256)
		}
		if err := cio.send(childMsg{Type: "report", Publisher: f}); err != nil {
			return err
		}
		drainUntilEOF(ctx, cio)
		return nil
	})
}

// feedbackSnap is a plain copy of a feedback.
type feedbackSnap struct {
	nackPackets, nackedSeqs, plis, firs, rembs, twcc, rrs, rrTotalLost int64
	rembLastBps                                                        float64
	rrMaxFractionLost                                                  uint32
}

func (fb *feedback) snapshot() feedbackSnap {
	return feedbackSnap{
		nackPackets: fb.nackPackets.Load(), nackedSeqs: fb.nackedSeqs.Load(),
		plis: fb.plis.Load(), firs: fb.firs.Load(), rembs: fb.rembs.Load(), twcc: fb.twcc.Load(),
		rrs: fb.rrs.Load(), rrTotalLost: fb.rrTotalLost.Load(),
		rembLastBps:       math.Float64frombits(fb.rembLastBps.Load()),
		rrMaxFractionLost: fb.rrMaxFractionLost.Load(),
	}
}

// pcState is a PeerConnection's ICE connection state ("none" without one).
func pcState(pc *webrtc.PeerConnection) string {
	if pc == nil {
		return "none"
	}
	return pc.ICEConnectionState().String()
}

// runViewersChild is a group of Go viewers. They behave as a browser's
// receiver would (rxMode: frames shown, keyframe requests); a viewer whose
// first frame has not come FirstFrameTimeout after its dial failed to join.
func runViewersChild(ctx context.Context, _ []string) error {
	return childMain(ctx, func(ctx context.Context, cio *childIO) error {
		cfg, err := readConfig(cio, 1)
		if err != nil {
			return err
		}
		var w window
		r := &room{name: cfg.Room, sources: map[string]*source{}}
		vs := make([]*viewer, len(cfg.Identities))
		joinErr := make([]error, len(vs))
		for i, id := range cfg.Identities {
			vs[i] = newViewer(id, r, true, &w)
			vs[i].mode = rxMode{trailerStamps: true, frames: true, keyframeRequests: true}
			vs[i].v11 = cfg.Simulcast
			vs[i].quality = cfg.Quality
			vs[i].dial = dialFrom(cfg.addr(i))
		}
		closeAll := func() {
			_ = parallel(context.Background(), len(vs), closeParallel, func(_ context.Context, i int) error {
				vs[i].close()
				return nil
			})
		}
		defer closeAll()
		_ = parallel(ctx, len(vs), max(cfg.JoinConcurrency, 1), func(ctx context.Context, i int) error {
			// Each viewer has an API of its own: its ICE stays on its link.
			se := labSettingEngine(cfg.addr(i))
			applyTransport(&se, &vs[i].ice, cfg.Transport)
			api, err := newViewerAPI(se)
			if err != nil {
				joinErr[i] = err
				return nil
			}
			jctx, cancel := context.WithTimeout(ctx, joinTimeout)
			defer cancel()
			joinErr[i] = vs[i].join(jctx, cfg.BaseURL, api, cfg.Tokens[i])
			return nil
		})
		if err := ctx.Err(); err != nil {
			return err
		}
		// Wait for the first frames, each up to the timeout after its dial.
		timeout := time.Duration(cfg.FirstFrameTimeout)
		for i, v := range vs {
			if joinErr[i] != nil {
				continue
			}
			fctx, cancel := context.WithDeadline(ctx, v.dialStart.Add(timeout))
			v.waitFrame(fctx)
			cancel()
		}
		if err := cio.send(childMsg{Type: "ready"}); err != nil {
			return err
		}

		cmd, err := awaitWindow(cio, &w)
		if err != nil {
			return err
		}
		if err := sleepUntil(ctx, cmd.EndNS+cmd.GraceNS); err != nil {
			return err
		}
		states, transports := make([]string, len(vs)), make([]string, len(vs))
		for i, v := range vs {
			states[i] = "none"
			if c := v.client(); c != nil {
				states[i] = pcState(c.SubscriberPC())
				transports[i] = pcTransport(c.SubscriberPC())
			}
		}
		closeAll() // the readers stop: the figures below are final
		now := time.Now().UnixNano()
		var lat HistSnap
		figs := make([]viewerFigures, len(vs))
		for i, v := range vs {
			figs[i] = v.figures(joinErr[i], states[i], timeout, now, cmd.StartNS, cmd.EndNS, &lat)
			figs[i].Transport = transports[i]
			if cfg.Simulcast {
				figs[i].Layers = v.layerFigures(now, cmd.StartNS, cmd.EndNS, cfg.AtNS, cfg.LiftNS)
				for _, t := range v.trackList() {
					if t.video {
						figs[i].VideoExpected += t.winSpan()
					}
				}
			}
		}
		if err := cio.send(childMsg{Type: "report", Viewers: figs, Latency: histToJSON(&lat)}); err != nil {
			return err
		}
		drainUntilEOF(ctx, cio)
		return nil
	})
}

// figures is a lab viewer's window [ws, we), computed at now once its
// readers have stopped; its window latencies are added to lat.
func (v *viewer) figures(joinErr error, ice string, frameTimeout time.Duration, now, ws, we int64, lat *HistSnap) viewerFigures {
	f := viewerFigures{ID: v.id, ICEState: ice, Joined: joinErr == nil && !v.joined.IsZero()}
	if joinErr != nil {
		f.JoinError = joinErr.Error()
	}
	ms := func(d time.Duration) *float64 { return num(float64(d) / float64(time.Millisecond)) }
	if !v.connected.IsZero() {
		f.ConnectMS = ms(v.connected.Sub(v.dialStart))
	}
	if f.Joined {
		f.JoinedMS = ms(v.joined.Sub(v.connected))
	}
	if d, ok := v.joinToPacket(); ok {
		f.FirstPacketMS = ms(d)
	}
	if d, ok := v.joinToFrame(); ok && d <= frameTimeout {
		f.FirstFrameMS = ms(d)
	}
	freeze := time.Duration(we - ws) // no video track: nothing was seen
	sawVideo := false
	for _, t := range v.trackList() {
		if t.video {
			if !sawVideo {
				freeze = 0
			}
			sawVideo = true
			f.VideoReceived += t.winPackets.Load()
			f.FramesShown += t.winShown.Load()
			f.PLIs += t.winPLIs.Load()
			freeze += t.freezeIn(now, ws, we)
		} else {
			f.AudioReceived += t.winPackets.Load()
		}
		f.Duplicates += t.dups.Load()
		f.Late += t.late.Load() + t.rtx.Load()
		f.Bytes += t.winBytes.Load()
		var s HistSnap
		t.win.Snapshot(&s)
		lat.Add(&s)
	}
	f.FreezeMS = float64(freeze) / float64(time.Millisecond)
	return f
}
