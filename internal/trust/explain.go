package trust

import (
	"cmp"
	"math"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Contribution is one rater's part in a peer's score.
type Contribution struct {
	Rater      peer.ID
	RaterTrust float64 // the rater's Positive mass
	Sum        float64 // its opinion of the peer: sum of scores
	Count      int     // and how many receipts
	// Weight is the signed share of the peer's Positive+Negative mass this
	// opinion carries: positive opinions add to Positive, negative ones to
	// Negative. Together with the peer's teleport share (if it is self or
	// an anchor) the magnitudes add up to 1.
	Weight float64
}

// contributions returns the opinions about peer j from raters with
// nonzero trust, strongest (by |Weight|) first, ties by rater ID so the
// order is stable. Raters with no trust, or distrusted, are left out: they
// count for nothing.
func (r *Result) contributions(j int32, positiveOnly bool) []Contribution {
	s := r.snap
	if j >= int32(len(s.ids)) {
		return nil
	}
	mass := r.trust[j] + r.neg[j]
	var out []Contribution
	for _, e := range s.inEdge[s.inStart[j]:s.inStart[j+1]] {
		i := s.from[e]
		if !r.speaks(i) || positiveOnly && s.sum[e] <= 0 {
			continue
		}
		ti := r.voice[i] * r.rater[i]
		if ti == 0 {
			continue
		}
		w := 0.0
		switch v := s.sum[e]; {
		case v > 0:
			w = (1 - r.alpha) * ti * v / s.posTotal[i]
		case v < 0:
			w = (1 - r.alpha) * ti * v / s.negTotal[i]
		}
		if mass > 0 {
			w /= mass
		}
		out = append(out, Contribution{
			Rater:      s.ids[i],
			RaterTrust: r.trust[i],
			Sum:        s.sum[e],
			Count:      int(s.count[e]),
			Weight:     w,
		})
	}
	slices.SortFunc(out, func(a, b Contribution) int {
		if c := cmp.Compare(math.Abs(b.Weight), math.Abs(a.Weight)); c != 0 {
			return c
		}
		return cmp.Compare(a.Rater, b.Rater)
	})
	return out
}

// Contributors returns the n strongest raters behind p's score (all of
// them if n <= 0), strongest first.
func (r *Result) Contributors(p peer.ID, n int) []Contribution {
	j := r.lookup(p)
	if j < 0 {
		return nil
	}
	c := r.contributions(j, false)
	if n > 0 && len(c) > n {
		c = c[:n]
	}
	return c
}

// Explanation is a tree that shows how self's trust reaches a peer: who
// rated it and how, and, recursively, how those raters earned the trust
// that makes their opinion count, back to self and the anchors. Plain
// data, ready for JSON.
type Explanation struct {
	Peer     peer.ID `json:"peer"`
	Value    float64 `json:"value"`
	Positive float64 `json:"positive"`
	Negative float64 `json:"negative"`
	Evidence int     `json:"evidence"`
	// Self marks the node itself, where all trust starts.
	Self bool `json:"self,omitempty"`
	// Anchor is the participant's weight for this peer, if any.
	Anchor float64 `json:"anchor,omitempty"`
	// Teleport is the share of Positive+Negative that comes straight from
	// being self or an anchor rather than from ratings.
	Teleport float64 `json:"teleport,omitempty"`
	// Raters are the strongest opinions about this peer. At the top they
	// are all opinions, signed; below it only positive ones, because
	// those are what a rater's trust comes from.
	Raters []Link `json:"raters,omitempty"`
	// Omitted counts the opinions left out by width.
	Omitted int `json:"omitted,omitempty"`
	// Cut says why Raters stops short: "depth" (the limit) or "cycle"
	// (the peer is already on the path above).
	Cut string `json:"cut,omitempty"`
}

// Link is one opinion in an Explanation: a rater's opinion of the peer
// above it and the share of that peer's mass it carries, with the rater's
// own explanation.
type Link struct {
	Sum    float64     `json:"sum"`
	Count  int         `json:"count"`
	Weight float64     `json:"weight"`
	Rater  Explanation `json:"rater"`
}

// Why explains p's score as a tree of at most depth levels of raters below
// p, each level the width strongest opinions (width <= 0 means 5). Cycles
// are cut where a peer would reappear on its own path.
func (r *Result) Why(p peer.ID, depth, width int) Explanation {
	if width <= 0 {
		width = 5
	}
	j := r.lookup(p)
	if j < 0 {
		return Explanation{Peer: p}
	}
	return r.why(j, depth, width, map[int32]bool{}, false)
}

func (r *Result) why(j int32, depth, width int, path map[int32]bool, positiveOnly bool) Explanation {
	x := Explanation{
		Peer:     r.ids[j],
		Value:    r.value[j],
		Positive: r.trust[j],
		Negative: r.neg[j],
		Evidence: int(r.evidence[j]),
		Self:     j == r.self,
		Anchor:   r.anchor[j],
	}
	if mass := x.Positive + x.Negative; mass > 0 {
		x.Teleport = r.back * r.teleport[j] / mass
	}
	if x.Self {
		return x
	}
	c := r.contributions(j, positiveOnly)
	if len(c) == 0 {
		return x
	}
	if path[j] {
		x.Cut = "cycle"
		return x
	}
	if depth <= 0 {
		x.Cut = "depth"
		return x
	}
	path[j] = true
	defer delete(path, j)
	if len(c) > width {
		x.Omitted = len(c) - width
		c = c[:width]
	}
	for _, k := range c {
		x.Raters = append(x.Raters, Link{
			Sum:    k.Sum,
			Count:  k.Count,
			Weight: k.Weight,
			Rater:  r.why(r.lookup(k.Rater), depth-1, width, path, true),
		})
	}
	return x
}
