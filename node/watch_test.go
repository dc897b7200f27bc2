package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/pullnet/pullnet/internal/testswarm"
	"github.com/pullnet/pullnet/node"
)

// collect runs a watch in the background and returns its events as they
// come.
func collect(t *testing.T, n *node.Node, q string, opt node.WatchOptions) <-chan node.WatchEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := make(chan node.WatchEvent, 100)
	go func() {
		for ev, err := range n.Watch(ctx, q, opt) {
			if err != nil {
				t.Errorf("watch: %v", err)
				return
			}
			out <- ev
		}
	}()
	return out
}

func next(t *testing.T, evs <-chan node.WatchEvent, what string) node.WatchEvent {
	t.Helper()
	select {
	case ev := <-evs:
		return ev
	case <-time.After(60 * time.Second):
		t.Fatalf("no %s event within 60s", what)
	}
	return node.WatchEvent{}
}

// TestWatchChain: a watcher at the end of a chain hears an advertise, an
// edit and a withdraw at the other end, through gossip or, when gossip has
// not found its way yet, through the periodic find and the owner's word.
func TestWatchChain(t *testing.T) {
	s := testswarm.New(t, 6, testswarm.Options{})
	prov, watcher := s.Nodes[0], s.Nodes[5]
	ctx := context.Background()
	evs := collect(t, watcher, "kind:compute tag:gpu", node.WatchOptions{Refind: 500 * time.Millisecond})

	r, err := prov.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}
	ev := next(t, evs, "added")
	if ev.Type != node.EventAdded || ev.Resource.ID != r.ID || ev.Provider != prov.ID() {
		t.Fatalf("first event = %+v", ev)
	}
	edit := gpuBox()
	edit.ID = r.ID
	edit.Name = "GPU box, repainted"
	if _, err := prov.Advertise(ctx, edit); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, evs, "updated"); ev.Type != node.EventUpdated || ev.Resource.Name != edit.Name {
		t.Fatalf("second event = %+v", ev)
	}
	if err := prov.Withdraw(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, evs, "removed"); ev.Type != node.EventRemoved || ev.Resource.ID != r.ID {
		t.Fatalf("third event = %+v", ev)
	}
}

// TestWatchExistingAndRefind: with Existing the current matches come first;
// a resource advertised while gossip cannot reach the watcher is still
// reported, by the periodic find.
func TestWatchExistingAndRefind(t *testing.T) {
	s := testswarm.New(t, 3, testswarm.Options{Topology: testswarm.FullMesh})
	prov, watcher := s.Nodes[0], s.Nodes[2]
	ctx := context.Background()
	r, err := prov.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.WaitAnnounced(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, watcher, "tag:gpu", node.WatchOptions{Existing: true, Refind: 200 * time.Millisecond})
	if ev := next(t, evs, "existing"); ev.Type != node.EventAdded || ev.Resource.ID != r.ID {
		t.Fatalf("existing = %+v", ev)
	}
	// Nothing new: the refinds must not report the same resource again.
	select {
	case ev := <-evs:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(time.Second):
	}
}
