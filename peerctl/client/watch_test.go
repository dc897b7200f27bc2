package client_test

import (
	"context"
	"encoding/json"
	"iter"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/peerctl/client"
	"github.com/pullnet/pullnet/resource"
)

func TestWatch(t *testing.T) {
	feed := controltest.NewWatchFeed()
	box := node.Result{Resource: resource.Resource{ID: "bafkbox", Kind: "compute", Name: "GPU box", Tags: []string{"gpu"}}, Provider: controltest.PeerID2}
	c := start(t, &controltest.Backend{WatchFunc: feed.Watch, Network: []node.Result{box}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pull, stop := iter.Pull2(c.Watch(ctx, client.WatchOptions{Query: "kind:compute tag:gpu", Existing: true}))
	defer stop()
	next := func(t *testing.T) client.WatchEvent {
		t.Helper()
		ev, err, ok := pull()
		if !ok || err != nil {
			t.Fatalf("watch stream ended: %v", err)
		}
		return ev
	}

	started := next(t)
	if started.Type != client.WatchStarted || started.WatchID == "" {
		t.Fatalf("first event = %+v", started)
	}
	js, _ := json.Marshal(started)
	if string(js) != `{"watch_id":"`+started.WatchID+`","type":"started"}` {
		t.Errorf("started event JSON = %s", js)
	}
	if ev := next(t); ev.Type != client.WatchAdded || ev.Resource.ID != "bafkbox" || ev.Provider != controltest.PeerID2.String() {
		t.Fatalf("existing match = %+v", ev)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	select {
	case feed.Events <- node.WatchEvent{Type: node.EventRemoved, Resource: box.Resource, Provider: controltest.PeerID2, At: at}:
	case <-time.After(10 * time.Second):
		t.Fatal("no watch took the event")
	}
	ev := next(t)
	if ev.Type != client.WatchRemoved || !ev.At.Equal(at) || ev.WatchID != started.WatchID {
		t.Fatalf("event = %+v", ev)
	}
	js, _ = json.Marshal(ev)
	for _, want := range []string{`"watch_id":"` + started.WatchID + `"`, `"type":"removed"`, `"resource":{"id":"bafkbox"`, `"provider":"` + controltest.PeerID2.String() + `"`, `"at":"2026-03-01T12:00:00Z"`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON %s lacks %s", js, want)
		}
	}

	ws, err := c.Watches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].ID != started.WatchID || ws[0].Query != "kind:compute tag:gpu" || ws[0].Events != 1 || ws[0].LastEvent.IsZero() {
		t.Fatalf("watches = %+v", ws)
	}
	if err := c.Unwatch(ctx, started.WatchID); err != nil {
		t.Fatal(err)
	}
	// The stream ends, without an error, when its watch is removed.
	if ev, err, ok := pull(); ok {
		t.Fatalf("stream went on after unwatch: %+v, %v", ev, err)
	}
	if err := c.Unwatch(ctx, started.WatchID); client.Code(err) != connect.CodeNotFound {
		t.Fatalf("second unwatch: %v", err)
	}
	for _, err := range c.Watch(ctx, client.WatchOptions{Query: `"open`}) {
		if client.Code(err) != connect.CodeInvalidArgument {
			t.Fatalf("watch of a bad query: %v", err)
		}
		break
	}
}
