package controltest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pullnet/pullnet/node"
)

// Lineage calls LineageFunc when it is set. Otherwise it walks the
// resources in Network as a node would: sources up through DerivedFrom
// (Missing when not in Network), derivatives down (the resources in
// Network that name one in DerivedFrom), each depth levels (zero means
// node.DefaultLineageDepth), listing a resource once.
func (b *Backend) Lineage(ctx context.Context, id string, depth int) (node.LineageNode, error) {
	if b.LineageFunc != nil {
		return b.LineageFunc(ctx, id, depth)
	}
	if depth <= 0 {
		depth = node.DefaultLineageDepth
	}
	depth = min(depth, node.MaxLineageDepth)
	lookup := func(id string) (node.LineageNode, bool) {
		for _, res := range b.Network {
			if res.Resource.ID == id {
				return node.LineageNode{Resource: res.Resource, Provider: res.Provider}, true
			}
		}
		ln := node.LineageNode{Missing: true}
		ln.Resource.ID = id
		return ln, false
	}
	root, ok := lookup(id)
	if !ok {
		return node.LineageNode{}, fmt.Errorf("lineage %s: %w", id, node.ErrNotFound)
	}
	seen := map[string]bool{id: true}
	var up, down func(nd *node.LineageNode, depth int)
	up = func(nd *node.LineageNode, depth int) {
		if depth == 0 || nd.Missing {
			return
		}
		for _, s := range nd.Resource.DerivedFrom {
			if seen[s] {
				continue
			}
			seen[s] = true
			src, _ := lookup(s)
			up(&src, depth-1)
			nd.Sources = append(nd.Sources, src)
		}
	}
	down = func(nd *node.LineageNode, depth int) {
		if depth == 0 {
			return
		}
		for _, res := range b.Network {
			if seen[res.Resource.ID] || !slices.Contains(res.Resource.DerivedFrom, nd.Resource.ID) {
				continue
			}
			seen[res.Resource.ID] = true
			d := node.LineageNode{Resource: res.Resource, Provider: res.Provider}
			down(&d, depth-1)
			nd.Derivatives = append(nd.Derivatives, d)
		}
	}
	up(&root, depth)
	down(&root, depth)
	return root, nil
}

// Demand returns DemandReport, whatever the window.
func (b *Backend) Demand(since time.Duration) node.DemandReport { return b.DemandReport }
