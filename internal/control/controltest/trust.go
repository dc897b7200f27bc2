package controltest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/node"
)

// Rate rates a session this node holds (as consumer or provider), as a
// node would: the score must be in -1…+1 and the session known; rating a
// session again replaces the earlier rating.
func (b *Backend) Rate(ctx context.Context, session string, score float64, comment string) (node.Rating, error) {
	if score < -1 || score > 1 {
		return node.Rating{}, fmt.Errorf("rate %s: %w: score %v", session, node.ErrInvalid, score)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := node.Rating{Session: session, Rater: b.ID(), Score: score, Comment: comment, Created: time.Now().Truncate(time.Millisecond)}
	if i := slices.IndexFunc(b.held, func(g node.Grant) bool { return g.Session == session }); i >= 0 {
		r.ResourceID, r.Subject = b.held[i].ResourceID, b.held[i].Provider
	} else if i := slices.IndexFunc(b.granted, func(s node.SessionInfo) bool { return s.Session == session }); i >= 0 {
		r.ResourceID, r.Subject = b.granted[i].ResourceID, b.granted[i].Peer
	} else {
		return node.Rating{}, fmt.Errorf("rate %s: %w: no such session", session, node.ErrNotFound)
	}
	b.ratings = slices.DeleteFunc(b.ratings, func(o node.Rating) bool { return o.Session == session && o.Rater == r.Rater })
	b.ratings = append(b.ratings, r)
	return r, nil
}

// Ratings returns the ratings Rate made plus NetworkRatings, about p (or
// all), newest first.
func (b *Backend) Ratings(ctx context.Context, p peer.ID, limit int) ([]node.Rating, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []node.Rating
	for _, r := range append(slices.Clone(b.ratings), b.NetworkRatings...) {
		if p == "" || r.Subject == p {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(x, y node.Rating) int { return y.Created.Compare(x.Created) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Trust returns TrustOf[p] with the anchor SetTrust gave p; an unknown
// peer scores 0.
func (b *Backend) Trust(p peer.ID) node.TrustScore {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts, ok := b.TrustOf[p]
	if !ok {
		ts = node.TrustScore{Peer: p}
	}
	ts.Anchor = b.anchors[p]
	return ts
}

// TrustScores lists TrustOf, most trusted first, without contributors.
func (b *Backend) TrustScores(limit int) []node.TrustScore {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []node.TrustScore
	for p, ts := range b.TrustOf {
		ts.Contributors = nil
		ts.Anchor = b.anchors[p]
		out = append(out, ts)
	}
	slices.SortFunc(out, func(x, y node.TrustScore) int {
		if c := cmp.Compare(y.Value, x.Value); c != 0 {
			return c
		}
		return cmp.Compare(x.Peer, y.Peer)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// TrustWhy explains p's score as one level: p's contributors in TrustOf,
// each rater reached from this node directly.
func (b *Backend) TrustWhy(p peer.ID, depth, width int) node.TrustExplanation {
	ts := b.Trust(p)
	x := node.TrustExplanation{Peer: p, Value: ts.Value, Positive: ts.Positive, Negative: ts.Negative, Evidence: ts.Evidence, Anchor: ts.Anchor}
	for _, c := range ts.Contributors {
		x.Raters = append(x.Raters, node.TrustLink{Sum: c.Sum, Count: c.Count, Weight: c.Weight,
			Rater: node.TrustExplanation{Peer: c.Rater, Positive: c.RaterTrust, Cut: "depth"}})
	}
	return x
}

// SetTrust records an anchor like a node: weight in -1…+1, 0 removes.
func (b *Backend) SetTrust(ctx context.Context, p peer.ID, weight float64) error {
	if weight < -1 || weight > 1 || p == b.ID() {
		return fmt.Errorf("trust %s: %w: weight %v", p, node.ErrInvalid, weight)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.anchors == nil {
		b.anchors = map[peer.ID]float64{}
	}
	if weight == 0 {
		delete(b.anchors, p)
	} else {
		b.anchors[p] = weight
	}
	return nil
}
