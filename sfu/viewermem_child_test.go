package sfu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/webrtc/v4"
)

// BenchmarkServerMemoryPerViewer is BenchmarkViewerMemory with the viewers'
// pion clients in a child process (this test binary again, running
// TestViewerMemChild): what is measured here, and what
// -viewermem.profile shows, is the server's alone, the figure the RSS
// target is about.
//
//	go test -run '^$' -bench ServerMemoryPerViewer -benchtime 1x ./sfu
func BenchmarkServerMemoryPerViewer(b *testing.B) {
	r := memRoom(b)
	kids := startMemChild(b) // before the baseline: its pipes are no viewer's
	before := memNow(b, "before")
	for i := range memViewers {
		kids.join(b, r, i)
	}
	waitLong(b, "media on every viewer", func() bool { return int(kids.media.Load()) == memViewers })
	sleepSteady()
	after := memNow(b, "after")
	reportMem(b, before, after)
}

// memLine is one line between the benchmark and its child, each way: an
// offer for viewer ID, its answer, or Media (the viewer got media).
type memLine struct {
	ID     int
	Offer  string `json:",omitempty"`
	Answer string `json:",omitempty"`
	Media  bool   `json:",omitempty"`
}

// memLinePrefix marks the protocol's lines in the child's stdout (the
// testing package writes there too).
const memLinePrefix = "VIEWERMEM "

// memChild is the child process holding the viewers' clients, and the
// server's participants it answers for.
type memChild struct {
	mu    sync.Mutex
	in    io.WriteCloser
	parts map[int]*Participant
	media atomic.Int32
}

func startMemChild(b *testing.B) *memChild {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestViewerMemChild$")
	cmd.Env = append(os.Environ(), "RELAYD_VIEWERMEM_CHILD=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	k := &memChild{in: in, parts: map[int]*Participant{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.readAnswers(b, out)
	}()
	b.Cleanup(func() {
		_ = in.Close() // the child closes its PCs and exits
		<-done
		_ = cmd.Wait()
	})
	return k
}

// readAnswers hands the child's answers to the participants.
func (k *memChild) readAnswers(b *testing.B, out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), memLinePrefix)
		if !ok {
			continue
		}
		var m memLine
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			b.Errorf("child: %v", err)
			return
		}
		k.mu.Lock()
		p := k.parts[m.ID]
		k.mu.Unlock()
		switch {
		case m.Media:
			k.media.Add(1)
		case m.Answer != "":
			if err := p.SetSubscriberAnswer(m.Answer); err != nil {
				b.Errorf("viewer %d: the server refused the answer: %v", m.ID, err)
			}
		}
	}
}

// send writes one line to the child.
func (k *memChild) send(m memLine) {
	j, _ := json.Marshal(m)
	k.mu.Lock()
	defer k.mu.Unlock()
	_, _ = fmt.Fprintf(k.in, "%s%s\n", memLinePrefix, j)
}

// memSink is viewer id's EventSink: its offers go to the child.
type memSink struct {
	k  *memChild
	id int
}

func (s memSink) Notify(ev Event) {
	if o, ok := ev.(SubscriberOffer); ok {
		s.k.send(memLine{ID: s.id, Offer: o.SDP})
	}
}

// join joins viewer id to r, its client in the child.
func (k *memChild) join(b *testing.B, r *Room, id int) {
	b.Helper()
	k.mu.Lock() // its answer may not come before it is known
	p, _, err := r.Join(ParticipantParams{Identity: fmt.Sprintf("viewer%d", id), Role: RoleViewer, Events: memSink{k, id}})
	if err == nil {
		k.parts[id] = p
	}
	k.mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Leave)
}

// TestViewerMemChild is BenchmarkServerMemoryPerViewer's child: it answers
// each viewer's offers on a pion PC of its own and says when media came,
// until its stdin ends. It does nothing as a test.
func TestViewerMemChild(t *testing.T) {
	if os.Getenv("RELAYD_VIEWERMEM_CHILD") == "" {
		t.Skip("BenchmarkServerMemoryPerViewer's child")
	}
	api := clientAPI(t)
	var outMu sync.Mutex
	say := func(m memLine) {
		j, _ := json.Marshal(m)
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Printf("%s%s\n", memLinePrefix, j)
	}
	pcs := map[int]*webrtc.PeerConnection{}
	defer func() {
		for _, pc := range pcs {
			_ = pc.Close()
		}
	}()
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), memLinePrefix)
		if !ok {
			continue
		}
		var m memLine
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		pc := pcs[m.ID]
		if pc == nil {
			var err error
			if pc, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
				t.Fatal(err)
			}
			pcs[m.ID] = pc
			id := m.ID
			var told atomic.Bool
			pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				buf := make([]byte, 1500)
				for n := 0; ; n++ {
					if _, _, err := tr.Read(buf); err != nil {
						return
					}
					if n == 25 && !told.Swap(true) {
						say(memLine{ID: id, Media: true})
					}
				}
			})
		}
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.Offer}); err != nil {
			t.Fatalf("viewer %d: offer: %v", m.ID, err)
		}
		answer, err := pc.CreateAnswer(nil)
		if err == nil {
			err = pc.SetLocalDescription(answer)
		}
		if err != nil {
			t.Fatalf("viewer %d: answer: %v", m.ID, err)
		}
		<-webrtc.GatheringCompletePromise(pc)
		say(memLine{ID: m.ID, Answer: pc.LocalDescription().SDP})
	}
}
