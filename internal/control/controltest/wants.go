package controltest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

// Want records a want of this node's, as a node would: the query must parse
// and be indexable, the lifetime defaults to node.DefaultWantTTL and is
// capped at node.MaxWantTTL.
func (b *Backend) Want(ctx context.Context, q, description string, ttl time.Duration) (node.WantInfo, error) {
	if ttl == 0 {
		ttl = node.DefaultWantTTL
	}
	if ttl < 0 || ttl > node.MaxWantTTL {
		return node.WantInfo{}, fmt.Errorf("want: %w: lifetime %v", node.ErrInvalid, ttl)
	}
	parsed, err := query.Parse(q)
	if err != nil {
		return node.WantInfo{}, fmt.Errorf("want %q: %w: %v", q, node.ErrInvalid, err)
	}
	if len(parsed.IndexTerms()) == 0 {
		return node.WantInfo{}, fmt.Errorf("want %q: %w: %v", q, node.ErrInvalid, query.ErrNotIndexable)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now().Truncate(time.Second)
	w := node.WantInfo{
		ID:    resource.NewID(b.ID().String(), fmt.Sprintf("want-%d", len(b.myWants)+1)),
		Owner: b.ID(), Query: parsed.String(), Description: description,
		Created: now, Expires: now.Add(ttl),
	}
	b.myWants = append(b.myWants, w)
	return w, nil
}

// AddWantMatch records r as a match of this node's want id.
func (b *Backend) AddWantMatch(id string, r resource.Resource) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.myWants {
		if b.myWants[i].ID == id {
			b.myWants[i].Matches = append(b.myWants[i].Matches, r)
		}
	}
}

// Wants lists NetworkWants whose query shares an index term with q, or all
// of them when q is empty.
func (b *Backend) Wants(ctx context.Context, q string) ([]node.WantInfo, error) {
	var terms []string
	if q != "" {
		parsed, err := query.Parse(q)
		if err != nil {
			return nil, fmt.Errorf("wants %q: %w: %v", q, node.ErrInvalid, err)
		}
		terms = parsed.IndexTerms()
	}
	out := []node.WantInfo{}
	for _, w := range b.NetworkWants {
		wq, err := query.Parse(w.Query)
		if err != nil {
			continue
		}
		if len(terms) == 0 || slices.ContainsFunc(wq.IndexTerms(), func(t string) bool { return slices.Contains(terms, t) }) {
			out = append(out, w)
		}
	}
	return out, nil
}

// MyWants lists this node's wants with their matches.
func (b *Backend) MyWants(ctx context.Context) ([]node.WantInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]node.WantInfo, 0, len(b.myWants))
	for _, w := range b.myWants {
		w.Matches = slices.Clone(w.Matches)
		out = append(out, w)
	}
	return out, nil
}

// Unwant withdraws one of this node's wants.
func (b *Backend) Unwant(ctx context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.myWants, func(w node.WantInfo) bool { return w.ID == strings.TrimSpace(id) })
	if i < 0 {
		return fmt.Errorf("unwant: %w: no want %s", node.ErrNotFound, id)
	}
	b.myWants = slices.Delete(b.myWants, i, i+1)
	return nil
}
