package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/resource"
)

// Bounds of a Lineage walk.
const (
	// DefaultLineageDepth is the depth of a walk that asks for none.
	DefaultLineageDepth = 3
	// MaxLineageDepth caps the depth of a walk in each direction.
	MaxLineageDepth = 10
	// MaxLineageNodes caps the resources in one lineage tree.
	MaxLineageNodes = 200
	// lineageParallel bounds the finds a walk runs at once.
	lineageParallel = 8
)

// LineageNode is one resource of a lineage tree: the resource, who provides
// it, and, walked from it, the resources it derives from (Sources) and
// those that derive from it (Derivatives). Sources are walked only up from
// the root, derivatives only down.
type LineageNode struct {
	Resource resource.Resource
	// Provider is the peer that answered for the resource.
	Provider peer.ID
	// Missing is set for a source that no provider answered for; only
	// Resource.ID is known then.
	Missing     bool
	Sources     []LineageNode
	Derivatives []LineageNode
}

// Lineage walks the lineage of resource id: its sources up (the resources
// named in DerivedFrom, theirs in turn) and its derivatives down (what a
// find of derived:ID returns, recursively), each to depth levels (zero means
// DefaultLineageDepth, at most MaxLineageDepth). A resource reached twice
// (a diamond or a cycle) is listed once, and the tree holds at most
// MaxLineageNodes resources. Finds run until each provider has answered or
// ctx ends; a source not found by then is Missing. It fails with
// ErrNotFound when the root itself cannot be found.
func (n *Node) Lineage(ctx context.Context, id string, depth int) (LineageNode, error) {
	id = strings.TrimSpace(id)
	if _, err := cid.Decode(id); err != nil {
		return LineageNode{}, fmt.Errorf("lineage: %w: %q is not a resource ID", ErrInvalid, id)
	}
	if depth <= 0 {
		depth = DefaultLineageDepth
	}
	depth = min(depth, MaxLineageDepth)
	w := &lineageWalk{n: n, seen: map[string]bool{}, sem: make(chan struct{}, lineageParallel)}
	w.claim(id)
	root := w.resolve(ctx, id)
	if root.Missing {
		if err := ctx.Err(); err != nil {
			return LineageNode{}, fmt.Errorf("lineage %s: %w", id, err)
		}
		return LineageNode{}, fmt.Errorf("lineage %s: %w: no peer on the network provides it", id, ErrNotFound)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.up(ctx, &root, depth) }()
	go func() { defer wg.Done(); w.down(ctx, &root, depth) }()
	wg.Wait()
	return root, nil
}

type lineageWalk struct {
	n   *Node
	sem chan struct{}

	mu    sync.Mutex
	seen  map[string]bool
	count int
}

// claim reserves a place in the tree for id, unless it has one already or
// the tree is full.
func (w *lineageWalk) claim(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[id] || w.count >= MaxLineageNodes {
		return false
	}
	w.seen[id] = true
	w.count++
	return true
}

func (w *lineageWalk) acquire(ctx context.Context) bool {
	select {
	case w.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *lineageWalk) release() { <-w.sem }

// resolve finds resource id: in the node's own catalog, else by a find of
// id:ID.
func (w *lineageWalk) resolve(ctx context.Context, id string) LineageNode {
	if rec, ok := w.n.catalog.Get(id); ok {
		return LineageNode{Resource: rec.Resource.Clone(), Provider: w.n.ID()}
	}
	missing := LineageNode{Resource: resource.Resource{ID: id}, Missing: true}
	if !w.acquire(ctx) {
		return missing
	}
	defer w.release()
	h, err := w.n.finder.First(ctx, resource.Term(resource.TermID, id))
	if err != nil {
		return missing
	}
	w.n.rememberProvider(id, h.Provider)
	return LineageNode{Resource: h.Record.Resource.Clone(), Provider: h.Provider}
}

// up fills in nd's sources, depth levels up.
func (w *lineageWalk) up(ctx context.Context, nd *LineageNode, depth int) {
	if depth <= 0 || nd.Missing {
		return
	}
	var ids []string
	for _, s := range nd.Resource.DerivedFrom {
		if w.claim(s) {
			ids = append(ids, s)
		}
	}
	if len(ids) == 0 {
		return
	}
	nd.Sources = make([]LineageNode, len(ids))
	var wg sync.WaitGroup
	for i, s := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd.Sources[i] = w.resolve(ctx, s)
			w.up(ctx, &nd.Sources[i], depth-1)
		}()
	}
	wg.Wait()
}

// down fills in nd's derivatives, depth levels down.
func (w *lineageWalk) down(ctx context.Context, nd *LineageNode, depth int) {
	if depth <= 0 || nd.Missing {
		return
	}
	id := nd.Resource.ID
	var kids []LineageNode
	// The node's own derivatives are known without asking; the DHT may not
	// list the node as a provider of their terms yet.
	for _, rec := range w.n.catalog.Live() {
		if slices.Contains(rec.Resource.DerivedFrom, id) && w.claim(rec.Resource.ID) {
			kids = append(kids, LineageNode{Resource: rec.Resource.Clone(), Provider: w.n.ID()})
		}
	}
	if w.acquire(ctx) {
		for h, err := range w.n.finder.Find(ctx, resource.Term(resource.TermDerived, id), MaxLineageNodes) {
			if err != nil {
				break
			}
			if !w.claim(h.Record.Resource.ID) {
				continue
			}
			w.n.rememberProvider(h.Record.Resource.ID, h.Provider)
			kids = append(kids, LineageNode{Resource: h.Record.Resource.Clone(), Provider: h.Provider})
		}
		w.release()
	}
	if len(kids) == 0 {
		return
	}
	slices.SortFunc(kids, func(a, b LineageNode) int { return strings.Compare(a.Resource.ID, b.Resource.ID) })
	var wg sync.WaitGroup
	for i := range kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.down(ctx, &kids[i], depth-1)
		}()
	}
	wg.Wait()
	nd.Derivatives = kids
}
