package client_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/peerctl/client"
	"github.com/pullnet/pullnet/resource"
)

func TestLineage(t *testing.T) {
	a := node.Result{Resource: resource.Resource{ID: "bafka", Kind: "dataset", Name: "raw"}, Provider: controltest.PeerID2}
	b := node.Result{Resource: resource.Resource{ID: "bafkb", Kind: "model", Name: "tuned", DerivedFrom: []string{"bafka", "bafkgone"}}, Provider: controltest.PeerID3}
	c := start(t, &controltest.Backend{Network: []node.Result{a, b}})
	ctx := context.Background()
	root, err := c.Lineage(ctx, "bafka", client.LineageOptions{Depth: 2, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if root.Resource.Name != "raw" || root.Provider != controltest.PeerID2.String() || len(root.Sources) != 0 ||
		len(root.Derivatives) != 1 || root.Derivatives[0].Resource.ID != "bafkb" || root.Derivatives[0].Provider != controltest.PeerID3.String() {
		t.Fatalf("lineage of a = %+v", root)
	}
	root, err = c.Lineage(ctx, "bafkb", client.LineageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(root.Sources) != 2 || root.Sources[0].Resource.ID != "bafka" || !root.Sources[1].Missing {
		t.Fatalf("lineage of b = %+v", root)
	}
	js, _ := json.Marshal(root)
	for _, want := range []string{`"resource":{"id":"bafkb"`, `"derived_from":["bafka","bafkgone"]`, `"sources":[`, `"missing":true`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON %s lacks %s", js, want)
		}
	}
	if _, err := c.Lineage(ctx, "bafknone", client.LineageOptions{}); client.Code(err) != connect.CodeNotFound {
		t.Fatalf("lineage of an unknown resource: %v", err)
	}
}

func TestDemand(t *testing.T) {
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := start(t, &controltest.Backend{DemandReport: node.DemandReport{
		Since: since, FindsRun: 5, FindsUnmet: 2, FindsServed: 3, ConnectsRequested: 1, ConnectsGranted: 1,
		TopServedTerms: []node.TermCount{{Term: "tag:gpu", Count: 3, Results: 3}},
		Unmet:          []node.TermCount{{Term: "tag:nothing", Count: 2}},
		Resources:      []node.ResourceDemand{{ID: "bafkbox", Name: "GPU box", Found: 3, Requested: 1, Granted: 1}},
	}})
	d, err := c.Demand(context.Background(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Since.Equal(since) || d.FindsRun != 5 || d.FindsUnmet != 2 || d.FindsServed != 3 || d.ConnectsRequested != 1 ||
		d.ConnectsGranted != 1 || len(d.TopServedTerms) != 1 || d.TopServedTerms[0] != (client.TermCount{Term: "tag:gpu", Count: 3, Results: 3}) ||
		d.TopRunTerms == nil || len(d.Unmet) != 1 || len(d.Resources) != 1 || d.Resources[0].Found != 3 {
		t.Fatalf("demand = %+v", d)
	}
	js, _ := json.Marshal(d)
	for _, want := range []string{`"finds_run":5`, `"finds_unmet":2`, `"top_served_terms":[{"term":"tag:gpu","count":3,"results":3}]`,
		`"top_run_terms":[]`, `"unmet":[{"term":"tag:nothing"`, `"resources":[{"id":"bafkbox","name":"GPU box","found":3,"requested":1,"granted":1,"rated":0}]`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON %s lacks %s", js, want)
		}
	}
}
