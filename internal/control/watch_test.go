package control_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
	"github.com/pullnet/pullnet/resource"
)

// receive returns the stream's next event, failing the test if it ends.
func receive(t *testing.T, s *connect.ServerStreamForClient[controlv1.WatchEvent]) *controlv1.WatchEvent {
	t.Helper()
	if !s.Receive() {
		t.Fatalf("watch stream ended: %v", s.Err())
	}
	return s.Msg()
}

func sendEvent(t *testing.T, feed *controltest.WatchFeed, ev node.WatchEvent) {
	t.Helper()
	select {
	case feed.Events <- ev:
	case <-time.After(10 * time.Second):
		t.Fatal("no watch took the event")
	}
}

func TestWatch(t *testing.T) {
	feed := controltest.NewWatchFeed()
	box := result("compute", "GPU box", controltest.PeerID2.String())
	box.Resource.Tags = []string{"gpu"}
	b := &controltest.Backend{WatchFunc: feed.Watch, Network: []node.Result{box}}
	sock := controltest.Start(t, b, control.Options{})
	for _, grpc := range []bool{false, true} {
		cl := newClient(t, sock, grpc)
		ctx, cancel := context.WithCancel(context.Background())
		s, err := cl.Watch(ctx, connect.NewRequest(&controlv1.WatchRequest{Query: "kind:compute tag:gpu", Existing: true}))
		if err != nil {
			t.Fatal(err)
		}
		start := receive(t, s)
		id := start.GetWatchId()
		if start.GetType() != control.WatchStarted || id == "" {
			t.Fatalf("first event = %v, want started with an id", start)
		}
		if ev := receive(t, s); ev.GetType() != node.EventAdded || ev.GetResource().GetName() != "GPU box" || ev.GetWatchId() != id ||
			ev.GetProvider() != controltest.PeerID2.String() {
			t.Fatalf("existing match = %v", ev)
		}
		at := time.UnixMilli(1_700_000_000_123)
		sendEvent(t, feed, node.WatchEvent{Type: node.EventRemoved, Resource: box.Resource, Provider: controltest.PeerID3, At: at})
		ev := receive(t, s)
		if ev.GetType() != node.EventRemoved || ev.GetAtUnixMs() != at.UnixMilli() || ev.GetProvider() != controltest.PeerID3.String() ||
			ev.GetResource().GetId() != box.Resource.ID {
			t.Fatalf("event = %v", ev)
		}
		cancel()
		s.Close()

		// The watch outlives its stream, and the same query is the same
		// watch.
		res, err := cl.Watches(context.Background(), connect.NewRequest(&controlv1.WatchesRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		ws := res.Msg.GetWatches()
		if len(ws) != 1 || ws[0].GetId() != id || ws[0].GetQuery() != "kind:compute tag:gpu" || ws[0].GetEvents() != 1 ||
			ws[0].GetCreatedUnix() == 0 || ws[0].GetLastEventUnix() == 0 {
			t.Fatalf("watches = %v", ws)
		}

		// Attaching by id; Unwatch ends the stream.
		s, err = cl.Watch(context.Background(), connect.NewRequest(&controlv1.WatchRequest{Id: id}))
		if err != nil {
			t.Fatal(err)
		}
		if ev := receive(t, s); ev.GetType() != control.WatchStarted || ev.GetWatchId() != id {
			t.Fatalf("attached stream began with %v", ev)
		}
		sendEvent(t, feed, node.WatchEvent{Type: node.EventAdded, Resource: resource.Resource{ID: "bafkx", Kind: "compute"}})
		if ev := receive(t, s); ev.GetResource().GetId() != "bafkx" {
			t.Fatalf("attached stream got %v", ev)
		}
		if _, err := cl.Unwatch(context.Background(), connect.NewRequest(&controlv1.UnwatchRequest{Id: id})); err != nil {
			t.Fatal(err)
		}
		if s.Receive() {
			t.Fatalf("stream went on after unwatch: %v", s.Msg())
		}
		if err := s.Err(); err != nil {
			t.Fatalf("stream ended with %v after unwatch, want a clean end", err)
		}
		s.Close()
		res, err = cl.Watches(context.Background(), connect.NewRequest(&controlv1.WatchesRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Msg.GetWatches()) != 0 {
			t.Fatalf("watches after unwatch = %v", res.Msg.GetWatches())
		}
	}
}

func TestWatchErrors(t *testing.T) {
	sock := controltest.Start(t, &controltest.Backend{}, control.Options{})
	cl := newClient(t, sock, false)
	ctx := context.Background()
	watchErr := func(req *controlv1.WatchRequest) error {
		s, err := cl.Watch(ctx, connect.NewRequest(req))
		if err != nil {
			return err
		}
		defer s.Close()
		for s.Receive() {
		}
		return s.Err()
	}
	wantCode(t, watchErr(&controlv1.WatchRequest{}), connect.CodeInvalidArgument, "query or id")
	wantCode(t, watchErr(&controlv1.WatchRequest{Query: "tag:gpu", Id: "w1"}), connect.CodeInvalidArgument, "not both")
	wantCode(t, watchErr(&controlv1.WatchRequest{Query: `"open`}), connect.CodeInvalidArgument, "invalid")
	wantCode(t, watchErr(&controlv1.WatchRequest{Id: "wnothere"}), connect.CodeNotFound, "wnothere")
	_, err := cl.Unwatch(ctx, connect.NewRequest(&controlv1.UnwatchRequest{Id: "wnothere"}))
	wantCode(t, err, connect.CodeNotFound, "wnothere")
	_, err = cl.Unwatch(ctx, connect.NewRequest(&controlv1.UnwatchRequest{}))
	wantCode(t, err, connect.CodeInvalidArgument, "id is required")
}

func TestWatchesOff(t *testing.T) {
	// A backend that cannot watch gets no registry from controltest, as a
	// server built without one.
	sock := controltest.Start(t, noWatchBackend{&controltest.Backend{}}, control.Options{})
	cl := newClient(t, sock, false)
	_, err := cl.Watches(context.Background(), connect.NewRequest(&controlv1.WatchesRequest{}))
	wantCode(t, err, connect.CodeUnimplemented, "no watches")
}

// noWatchBackend hides the Watch method of its Backend.
type noWatchBackend struct{ control.Backend }
