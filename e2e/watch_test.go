package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// watchStream is a running 'peerctl watch -o json', read line by line.
type watchStream struct {
	cmd    *exec.Cmd
	events chan watchEvent
	done   chan struct{}
}

type watchEvent struct {
	WatchID  string `json:"watch_id"`
	Type     string `json:"type"`
	Resource struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"resource"`
	Provider string    `json:"provider"`
	At       time.Time `json:"at"`
}

// watch starts 'peerctl watch ARGS -o json' on d in the background.
func (d *daemon) watch(args ...string) *watchStream {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "peerctl"), append([]string{"--data", d.data, "watch", "-o", "json"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	w := &watchStream{cmd: cmd, events: make(chan watchEvent, 100), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev watchEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				d.t.Errorf("watch printed %q: %v", sc.Text(), err)
				continue
			}
			w.events <- ev
		}
		_ = cmd.Wait()
		close(w.events)
	}()
	d.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		<-w.done
		if d.t.Failed() && stderr.Len() > 0 {
			d.t.Logf("peerctl watch stderr: %s", stderr.String())
		}
	})
	return w
}

// next waits for the stream's next event of type typ, skipping others.
func (w *watchStream) next(t *testing.T, typ string, timeout time.Duration) watchEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				t.Fatalf("peerctl watch ended while waiting for a %s event", typ)
			}
			if ev.Type == typ {
				return ev
			}
			t.Logf("watch event %s %s (waiting for %s)", ev.Type, ev.Resource.ID, typ)
		case <-deadline:
			t.Fatalf("no %s event within %v", typ, timeout)
		}
	}
}

type watchInfo struct {
	ID     string `json:"id"`
	Query  string `json:"query"`
	Events int64  `json:"events"`
}

// TestWatch watches, at the end of a chain of three daemons, what the
// first advertises and withdraws; the watch survives a restart of its
// daemon until unwatched.
func TestWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons")
	}
	root := t.TempDir()
	var ds []*daemon
	for i := range 3 {
		var boot []string
		if i > 0 {
			boot = []string{ds[i-1].loopbackAddr()}
		}
		ds = append(ds, startDaemon(t, filepath.Join(root, fmt.Sprintf("d%d", i)), boot...))
	}
	provider, watcher := ds[0], ds[2]
	var provStatus status
	provider.mustJSON(&provStatus, "status")

	const query = "kind:compute tag:gpu"
	w := watcher.watch(query)
	started := w.next(t, "started", 30*time.Second)
	if started.WatchID == "" {
		t.Fatalf("started event without a watch id: %+v", started)
	}

	var adv struct {
		ID string `json:"id"`
	}
	start := time.Now()
	provider.mustJSON(&adv, "advertise", "--kind", "compute", "--name", "GPU box", "--tag", "gpu")
	added := w.next(t, "added", 60*time.Second)
	t.Logf("advertise to added across the chain: %v", time.Since(start))
	if added.Resource.ID != adv.ID || added.Resource.Name != "GPU box" || added.Provider != provStatus.PeerID || added.WatchID != started.WatchID {
		t.Fatalf("added event = %+v, want %s from %s", added, adv.ID, provStatus.PeerID)
	}

	start = time.Now()
	if _, code := provider.peerctl("withdraw", adv.ID); code != 0 {
		t.Fatalf("withdraw: exit %d", code)
	}
	removed := w.next(t, "removed", 60*time.Second)
	t.Logf("withdraw to removed across the chain: %v", time.Since(start))
	if removed.Resource.ID != adv.ID {
		t.Fatalf("removed event = %+v, want %s", removed, adv.ID)
	}

	var list []watchInfo
	watcher.mustJSON(&list, "watches")
	if len(list) != 1 || list[0].ID != started.WatchID || list[0].Query != query || list[0].Events < 2 {
		t.Fatalf("watches = %+v", list)
	}

	// The watch is the daemon's: it is still there after a restart.
	watcher.stop()
	watcher = startDaemon(t, watcher.data, ds[1].loopbackAddr())
	watcher.mustJSON(&list, "watches")
	if len(list) != 1 || list[0].ID != started.WatchID || list[0].Query != query {
		t.Fatalf("watches after a restart = %+v", list)
	}
	// And it runs again: attached by id, it sees a new advertise.
	w = watcher.watch("--id", started.WatchID)
	w.next(t, "started", 30*time.Second)
	start = time.Now()
	provider.mustJSON(&adv, "advertise", "--kind", "compute", "--name", "second GPU box", "--tag", "gpu")
	if ev := w.next(t, "added", 60*time.Second); ev.Resource.ID != adv.ID {
		t.Fatalf("added event after the restart = %+v, want %s", ev, adv.ID)
	}
	t.Logf("advertise to added after the watcher's restart: %v", time.Since(start))

	if out, code := watcher.peerctl("unwatch", started.WatchID); code != 0 {
		t.Fatalf("unwatch: exit %d: %s", code, out)
	}
	watcher.mustJSON(&list, "watches")
	if len(list) != 0 {
		t.Fatalf("watches after unwatch = %+v", list)
	}
	// Unwatch ends the streams of the watch.
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		t.Fatal("peerctl watch went on after unwatch")
	}
}
