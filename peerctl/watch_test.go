package peerctl_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/peerctl"
	"github.com/pullnet/pullnet/resource"
)

// streamed is a peerctl command running in the background, whose stdout
// the test reads line by line.
type streamed struct {
	lines  chan string
	cancel context.CancelFunc
	done   chan struct{} // closed when the command ends
	code   int
}

func (d *daemon) stream(args ...string) *streamed {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &streamed{lines: make(chan string, 100), cancel: cancel, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	go func() {
		var stderr strings.Builder
		code := peerctl.Run(ctx, append([]string{"--data", d.dir}, args...), pw, &stderr)
		pw.Close()
		s.code = code
		close(s.done)
	}()
	d.t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

func (s *streamed) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			t.Fatal("the command ended")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line within 10s")
		panic("unreachable")
	}
}

// stop interrupts the command and returns its exit code.
func (s *streamed) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
		return s.code
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not stop when interrupted")
		return -1
	}
}

func feedEvent(t *testing.T, feed *controltest.WatchFeed, ev node.WatchEvent) {
	t.Helper()
	select {
	case feed.Events <- ev:
	case <-time.After(10 * time.Second):
		t.Fatal("no watch took the event")
	}
}

var gpuBox = resource.Resource{ID: "bafkreigpuboxaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Kind: "compute", Name: "GPU box", Tags: []string{"gpu"}}

func TestWatchText(t *testing.T) {
	feed := controltest.NewWatchFeed()
	d := startDaemon(t, &controltest.Backend{WatchFunc: feed.Watch,
		Network: []node.Result{{Resource: gpuBox, Provider: controltest.PeerID2}}})
	s := d.stream("watch", "kind:compute", "tag:gpu", "--existing")
	added := s.line(t)
	for _, want := range []string{"added", shortIDOf(gpuBox.ID), "compute", "GPU box", shortIDOf(controltest.PeerID2.String())} {
		if !strings.Contains(added, want) {
			t.Errorf("line %q lacks %q", added, want)
		}
	}
	feedEvent(t, feed, node.WatchEvent{Type: node.EventRemoved, Resource: gpuBox, Provider: controltest.PeerID2, At: time.Now()})
	if l := s.line(t); !strings.HasPrefix(l, "removed  ") {
		t.Errorf("line %q, want a removal", l)
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("interrupted watch exited %d, want 0", code)
	}

	out := d.ok("watches")
	if !strings.Contains(out, "kind:compute tag:gpu") || !strings.Contains(out, "EVENTS") {
		t.Fatalf("watches:\n%s", out)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	if r := d.ok("unwatch", id); r != "removed watch "+id+"\n" {
		t.Errorf("unwatch printed %q", r)
	}
	if r := d.run("unwatch", id); r.code != peerctl.ExitError || !strings.Contains(r.stderr, id) {
		t.Errorf("second unwatch: %+v", r)
	}
	if r := d.run("watches"); r.code != 0 || r.stdout != "" {
		t.Errorf("watches after unwatch: %+v", r)
	}
}

func TestWatchJSON(t *testing.T) {
	feed := controltest.NewWatchFeed()
	d := startDaemon(t, &controltest.Backend{WatchFunc: feed.Watch})
	s := d.stream("watch", "kind:compute tag:gpu", "-o", "json")
	var started map[string]any
	if err := json.Unmarshal([]byte(s.line(t)), &started); err != nil || started["type"] != "started" || started["watch_id"] == "" {
		t.Fatalf("first line: %v %v", started, err)
	}
	id := started["watch_id"].(string)
	feedEvent(t, feed, node.WatchEvent{Type: node.EventAdded, Resource: gpuBox, Provider: controltest.PeerID2, At: time.Now()})
	var ev map[string]any
	if err := json.Unmarshal([]byte(s.line(t)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["watch_id"] != id || ev["type"] != "added" || ev["provider"] != controltest.PeerID2.String() ||
		ev["resource"].(map[string]any)["name"] != "GPU box" || ev["at"] == nil {
		t.Errorf("event line: %v", ev)
	}

	// A second stream attaches by id; unwatch ends both.
	s2 := d.stream("watch", "--id", id, "-o", "json")
	if l := s2.line(t); !strings.Contains(l, `"type":"started"`) {
		t.Fatalf("attached stream began with %s", l)
	}
	out := d.ok("watches", "-o", "json")
	var infos []map[string]any
	if err := json.Unmarshal([]byte(out), &infos); err != nil || len(infos) != 1 || infos[0]["id"] != id ||
		infos[0]["query"] != "kind:compute tag:gpu" || infos[0]["events"] != 1.0 {
		t.Fatalf("watches JSON %s: %v", out, err)
	}
	d.ok("unwatch", id)
	for _, st := range []*streamed{s, s2} {
		select {
		case <-st.done:
			if st.code != 0 {
				t.Errorf("stream of a removed watch exited %d", st.code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("stream went on after unwatch")
		}
	}
}

func TestWatchUsage(t *testing.T) {
	d := startDaemon(t, &controltest.Backend{})
	for _, args := range [][]string{{"watch"}, {"watch", "tag:gpu", "--id", "w1"}, {"unwatch"}} {
		if r := d.run(args...); r.code != peerctl.ExitError {
			t.Errorf("peerctl %v: %+v", args, r)
		}
	}
	if r := d.run("watch", `"open`); r.code != peerctl.ExitError || r.stderr == "" {
		t.Errorf("watch of a bad query: %+v", r)
	}
	if r := d.run("watch", "--id", "wnothere"); r.code != peerctl.ExitError || !strings.Contains(r.stderr, "wnothere") {
		t.Errorf("watch of an unknown id: %+v", r)
	}
}
