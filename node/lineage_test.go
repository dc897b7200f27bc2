package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pullnet/pullnet/internal/testswarm"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

// advertiseAnnounced advertises r on n and waits until its terms are in
// the DHT.
func advertiseAnnounced(t *testing.T, n *node.Node, r resource.Resource) resource.Resource {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adv, err := n.Advertise(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.WaitAnnounced(ctx, adv.ID); err != nil {
		t.Fatal(err)
	}
	return adv
}

func lineage(t *testing.T, n *node.Node, id string, depth int) node.LineageNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := n.Lineage(ctx, id, depth)
	if err != nil {
		t.Fatalf("lineage %s: %v", id, err)
	}
	return ln
}

// TestLineage walks a lineage of three resources on three nodes, each
// derived from the one before, from both ends and the middle.
func TestLineage(t *testing.T) {
	s := testswarm.New(t, 3, testswarm.Options{})
	a := advertiseAnnounced(t, s.Nodes[0], resource.Resource{Kind: "dataset", Name: "raw crawl"})
	b := advertiseAnnounced(t, s.Nodes[1], resource.Resource{Kind: "dataset", Name: "clean corpus", DerivedFrom: []string{a.ID}})
	c := advertiseAnnounced(t, s.Nodes[2], resource.Resource{Kind: "model", Name: "fine-tune", DerivedFrom: []string{b.ID}})

	// From the end: sources up, two levels.
	got := lineage(t, s.Nodes[0], c.ID, 0)
	if got.Resource.ID != c.ID || got.Provider != s.Nodes[2].ID() || len(got.Derivatives) != 0 ||
		len(got.Sources) != 1 || got.Sources[0].Resource.ID != b.ID || got.Sources[0].Provider != s.Nodes[1].ID() ||
		len(got.Sources[0].Sources) != 1 || got.Sources[0].Sources[0].Resource.ID != a.ID || got.Sources[0].Sources[0].Resource.Name != "raw crawl" {
		t.Fatalf("lineage of c = %+v", got)
	}

	// From the start: derivatives down, two levels.
	got = lineage(t, s.Nodes[2], a.ID, 0)
	if len(got.Sources) != 0 || len(got.Derivatives) != 1 || got.Derivatives[0].Resource.ID != b.ID ||
		len(got.Derivatives[0].Derivatives) != 1 || got.Derivatives[0].Derivatives[0].Resource.ID != c.ID ||
		got.Derivatives[0].Derivatives[0].Provider != s.Nodes[2].ID() {
		t.Fatalf("lineage of a = %+v", got)
	}

	// From the middle: one up, one down.
	got = lineage(t, s.Nodes[0], b.ID, 0)
	if len(got.Sources) != 1 || got.Sources[0].Resource.ID != a.ID || len(got.Derivatives) != 1 || got.Derivatives[0].Resource.ID != c.ID {
		t.Fatalf("lineage of b = %+v", got)
	}

	// Depth 1 stops after one level.
	got = lineage(t, s.Nodes[1], a.ID, 1)
	if len(got.Derivatives) != 1 || len(got.Derivatives[0].Derivatives) != 0 {
		t.Fatalf("lineage of a at depth 1 = %+v", got)
	}
}

func TestLineageMissingAndCycle(t *testing.T) {
	s := testswarm.New(t, 2, testswarm.Options{})
	ghost := resource.NewID(s.Nodes[1].ID().String(), "never-advertised")
	x := advertiseAnnounced(t, s.Nodes[0], resource.Resource{Kind: "dataset", Name: "x", Handle: "x",
		DerivedFrom: []string{resource.NewID(s.Nodes[0].ID().String(), "y")}})
	y := advertiseAnnounced(t, s.Nodes[0], resource.Resource{Kind: "dataset", Name: "y", Handle: "y", DerivedFrom: []string{x.ID, ghost}})
	if len(x.DerivedFrom) != 1 || x.DerivedFrom[0] != y.ID {
		t.Fatalf("test set-up: x derives from %v, y is %s", x.DerivedFrom, y.ID)
	}

	// x ↔ y is a cycle: each is listed once, and the walk ends.
	got := lineage(t, s.Nodes[1], y.ID, node.MaxLineageDepth)
	count := map[string]int{}
	var missing []string
	var walk func(n node.LineageNode)
	walk = func(n node.LineageNode) {
		count[n.Resource.ID]++
		if n.Missing {
			missing = append(missing, n.Resource.ID)
		}
		for _, c := range n.Sources {
			walk(c)
		}
		for _, c := range n.Derivatives {
			walk(c)
		}
	}
	walk(got)
	if count[x.ID] != 1 || count[y.ID] != 1 || len(missing) != 1 || missing[0] != ghost {
		t.Fatalf("lineage of y = %+v (counts %v, missing %v)", got, count, missing)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Nodes[1].Lineage(ctx, ghost, 0); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("lineage of a missing root: %v, want ErrNotFound", err)
	}
	if _, err := s.Nodes[1].Lineage(ctx, "not-an-id", 0); !errors.Is(err, node.ErrInvalid) {
		t.Fatalf("lineage of a bad ID: %v, want ErrInvalid", err)
	}
}
