package node_test

import (
	"context"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/testswarm"
	"github.com/pullnet/pullnet/node"
)

func termCount(cs []node.TermCount, term string) node.TermCount {
	for _, c := range cs {
		if c.Term == term {
			return c
		}
	}
	return node.TermCount{}
}

// TestDemand counts a scripted sequence of finds and a connect on both
// sides: the finder's finds run and unmet, the provider's finds served, by
// term, and its resource found, requested and granted.
func TestDemand(t *testing.T) {
	s := testswarm.New(t, 2, testswarm.Options{})
	provider, finder := s.Nodes[0], s.Nodes[1]
	box := advertiseAnnounced(t, provider, gpuBox())

	for range 3 {
		if res := findAll(t, finder, "tag:gpu", 10); len(res) != 1 {
			t.Fatalf("find tag:gpu: %d results", len(res))
		}
	}
	for range 2 {
		if res := findAll(t, finder, "tag:nothing", 10); len(res) != 0 {
			t.Fatalf("find tag:nothing: %d results", len(res))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if g, err := finder.Connect(ctx, box.ID, "hi"); err != nil || !g.Granted {
		t.Fatalf("connect: %+v, %v", g, err)
	}

	fd := finder.Demand(0)
	if fd.FindsRun != 5 || fd.FindsUnmet != 2 || len(fd.Unmet) != 1 || fd.Unmet[0] != (node.TermCount{Term: "tag:nothing", Count: 2}) {
		t.Fatalf("finder's demand = %+v", fd)
	}
	if c := termCount(fd.TopRunTerms, "tag:gpu"); c.Count != 3 || c.Results != 3 {
		t.Fatalf("finder's run terms = %+v", fd.TopRunTerms)
	}

	pd := provider.Demand(24 * time.Hour)
	if pd.FindsServed < 3 || pd.ConnectsRequested != 1 || pd.ConnectsGranted != 1 || pd.Since.IsZero() {
		t.Fatalf("provider's demand = %+v", pd)
	}
	if c := termCount(pd.TopServedTerms, "tag:gpu"); c.Count < 3 || c.Results < 3 {
		t.Fatalf("provider's served terms = %+v", pd.TopServedTerms)
	}
	if len(pd.TopServedQueries) != 0 {
		t.Fatalf("whole queries kept without RecordQueries: %+v", pd.TopServedQueries)
	}
	if len(pd.Resources) != 1 {
		t.Fatalf("provider's resources = %+v", pd.Resources)
	}
	if r := pd.Resources[0]; r.ID != box.ID || r.Name != "GPU box" || r.Found < 3 || r.Requested != 1 || r.Granted != 1 {
		t.Fatalf("provider's resource = %+v", r)
	}
}

func TestDemandRecordQueries(t *testing.T) {
	s := testswarm.New(t, 2, testswarm.Options{Config: node.Config{RecordQueries: true}})
	provider, finder := s.Nodes[0], s.Nodes[1]
	advertiseAnnounced(t, provider, gpuBox())
	if res := findAll(t, finder, "tag:gpu region=eu", 10); len(res) != 1 {
		t.Fatalf("find: %d results", len(res))
	}
	pd := provider.Demand(0)
	if c := termCount(pd.TopServedQueries, "tag:gpu region=eu"); c.Count < 1 {
		t.Fatalf("served queries = %+v", pd.TopServedQueries)
	}
}

// TestDemandSurvivesRestart closes a node and starts another on the same
// datastore: the counts are still there.
func TestDemandSurvivesRestart(t *testing.T) {
	store := dssync.MutexWrap(ds.NewMapDatastore())
	cfg := node.Config{Datastore: store, ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range n.Find(ctx, "tag:alone", node.FindOptions{}) {
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n, err = node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if d := n.Demand(0); d.FindsRun != 1 || d.FindsUnmet != 1 || len(d.Unmet) != 1 || d.Unmet[0].Term != "tag:alone" {
		t.Fatalf("after restart: %+v", d)
	}
}
