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
)

func TestLineage(t *testing.T) {
	a := result("dataset", "raw", controltest.PeerID2.String())
	b := result("dataset", "clean", controltest.PeerID2.String())
	b.Resource.DerivedFrom = []string{a.Resource.ID}
	c := result("model", "tuned", controltest.PeerID3.String())
	c.Resource.DerivedFrom = []string{b.Resource.ID, "bafkmissing"}
	sock := controltest.Start(t, &controltest.Backend{Network: []node.Result{a, b, c}}, control.Options{})
	for _, grpc := range []bool{false, true} {
		cl := newClient(t, sock, grpc)
		res, err := cl.Lineage(context.Background(), connect.NewRequest(&controlv1.LineageRequest{Id: b.Resource.ID}))
		if err != nil {
			t.Fatal(err)
		}
		root := res.Msg.GetRoot()
		if root.GetResource().GetName() != "clean" || root.GetProvider() != controltest.PeerID2.String() ||
			len(root.GetSources()) != 1 || root.GetSources()[0].GetResource().GetId() != a.Resource.ID ||
			len(root.GetDerivatives()) != 1 || root.GetDerivatives()[0].GetResource().GetName() != "tuned" {
			t.Fatalf("lineage of b = %v", root)
		}
		res, err = cl.Lineage(context.Background(), connect.NewRequest(&controlv1.LineageRequest{Id: c.Resource.ID, Depth: 1}))
		if err != nil {
			t.Fatal(err)
		}
		srcs := res.Msg.GetRoot().GetSources()
		if len(srcs) != 2 || len(srcs[0].GetSources()) != 0 || !srcs[1].GetMissing() || srcs[1].GetResource().GetId() != "bafkmissing" {
			t.Fatalf("lineage of c at depth 1 = %v", res.Msg.GetRoot())
		}
	}
	cl := newClient(t, sock, false)
	_, err := cl.Lineage(context.Background(), connect.NewRequest(&controlv1.LineageRequest{}))
	wantCode(t, err, connect.CodeInvalidArgument, "id is required")
	_, err = cl.Lineage(context.Background(), connect.NewRequest(&controlv1.LineageRequest{Id: "bafknothere"}))
	wantCode(t, err, connect.CodeNotFound, "bafknothere")
	_, err = cl.Lineage(context.Background(), connect.NewRequest(&controlv1.LineageRequest{Id: a.Resource.ID, TimeoutMs: -1}))
	wantCode(t, err, connect.CodeInvalidArgument, "timeout_ms")
}

func TestLineageTimeout(t *testing.T) {
	b := &controltest.Backend{LineageFunc: func(ctx context.Context, id string, depth int) (node.LineageNode, error) {
		<-ctx.Done()
		return node.LineageNode{}, ctx.Err()
	}}
	sock := controltest.Start(t, b, control.Options{})
	_, err := newClient(t, sock, false).Lineage(context.Background(), connect.NewRequest(&controlv1.LineageRequest{Id: "bafkx", TimeoutMs: 50}))
	wantCode(t, err, connect.CodeDeadlineExceeded, "within 50ms")
}

// sinceBackend remembers the window Demand was asked for.
type sinceBackend struct {
	controltest.Backend
	since time.Duration
}

func (b *sinceBackend) Demand(since time.Duration) node.DemandReport {
	b.since = since
	return b.Backend.Demand(since)
}

func TestDemand(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := &sinceBackend{Backend: controltest.Backend{DemandReport: node.DemandReport{
		Since: start, FindsRun: 5, FindsUnmet: 2, FindsServed: 7, ConnectsRequested: 3, ConnectsGranted: 2,
		TopServedTerms: []node.TermCount{{Term: "tag:gpu", Count: 7, Results: 6}},
		ResultsServed:  6, TopServedQueries: []node.TermCount{{Term: "kind:compute tag:gpu", Count: 4}},
		TopRunTerms: []node.TermCount{{Term: "tag:gpu", Count: 3, Results: 3}, {Term: "tag:nothing", Count: 2}},
		Unmet:       []node.TermCount{{Term: "tag:nothing", Count: 2}},
		Resources:   []node.ResourceDemand{{ID: "bafkbox", Name: "GPU box", Found: 6, Requested: 3, Granted: 2}},
	}}}
	sock := controltest.Start(t, b, control.Options{})
	cl := newClient(t, sock, true)
	res, err := cl.Demand(context.Background(), connect.NewRequest(&controlv1.DemandRequest{SinceMs: 24 * 3600 * 1000}))
	if err != nil {
		t.Fatal(err)
	}
	m := res.Msg
	if m.GetResultsServed() != 6 || len(m.GetTopServedQueries()) != 1 || m.GetTopServedQueries()[0].GetTerm() != "kind:compute tag:gpu" {
		t.Errorf("results served / queries not passed on: %v", m)
	}
	if b.since != 24*time.Hour || m.GetFindsRun() != 5 || m.GetFindsUnmet() != 2 || m.GetFindsServed() != 7 ||
		m.GetConnectsRequested() != 3 || m.GetConnectsGranted() != 2 || m.GetSinceUnix() != start.Unix() ||
		len(m.GetTopServedTerms()) != 1 || m.GetTopServedTerms()[0].GetResults() != 6 || len(m.GetTopRunTerms()) != 2 ||
		len(m.GetUnmet()) != 1 || m.GetUnmet()[0].GetTerm() != "tag:nothing" ||
		len(m.GetResources()) != 1 || m.GetResources()[0].GetName() != "GPU box" || m.GetResources()[0].GetFound() != 6 {
		t.Fatalf("demand = %v (since %v)", m, b.since)
	}
	_, err = cl.Demand(context.Background(), connect.NewRequest(&controlv1.DemandRequest{SinceMs: -5}))
	wantCode(t, err, connect.CodeInvalidArgument, "since_ms")
}
