// Package trust computes a node's personalized trust in the peers it has
// ratings about, EigenTrust-style (Kamvar, Schlosser, Garcia-Molina 2003):
// trust starts at the node itself and at the peers its participant anchors,
// and flows along positive ratings, so a peer is trusted only as far as
// peers that are already trusted vouch for it. A swarm of identities that
// nobody trusted praising each other therefore gains nothing, and negative
// ratings count only as much as the trust of the peers that gave them.
//
// The package is pure math: it does no I/O, keeps no global state and logs
// nothing. A Graph aggregates ratings as they arrive; Compute turns a Graph
// into a Result for one point of view. REPUTATION.md at the repository's
// root gives the formulas, the defaults and the attack simulation that chose
// them.
package trust

import (
	"math"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// opinion is what one rater thinks of one subject: the sum of its scores
// over distinct session receipts and how many receipts that is. Keeping the
// sum, not the mean, lets repeated good (or bad) sessions weigh more than a
// single one, which is what one-receipt-one-rating is for.
type opinion struct {
	sum   float64
	count int
}

// Graph holds the aggregated opinions, rater → subject. It is built
// incrementally as ratings arrive, are replaced or expire, so that a node
// never has to re-read all its ratings to recompute trust. It is not safe
// for concurrent use: the caller locks.
type Graph struct {
	out   map[peer.ID]map[peer.ID]*opinion
	deg   map[peer.ID]int // edges touching the peer, in or out; for Size
	edges int
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	return &Graph{
		out: make(map[peer.ID]map[peer.ID]*opinion),
		deg: make(map[peer.ID]int),
	}
}

// Add changes rater's opinion of subject by deltaSum and deltaCount: a new
// rating adds (score, 1), a rating that replaces an earlier one of the same
// receipt adds (new-old, 0), and a withdrawn or expired one adds
// (-score, -1). The edge is dropped when its count reaches zero, so a graph
// that has seen ratings come and go holds only what is left. Self-ratings
// and non-finite deltas are ignored: a peer vouching for itself is no
// evidence.
func (g *Graph) Add(rater, subject peer.ID, deltaSum float64, deltaCount int) {
	if rater == subject || math.IsNaN(deltaSum) || math.IsInf(deltaSum, 0) {
		return
	}
	if deltaSum == 0 && deltaCount == 0 {
		return
	}
	row := g.out[rater]
	o := row[subject]
	if o == nil {
		if deltaCount <= 0 {
			// Nothing to replace or withdraw: the rating it refers to
			// was never added (or is already gone).
			return
		}
		if row == nil {
			row = make(map[peer.ID]*opinion)
			g.out[rater] = row
		}
		o = &opinion{}
		row[subject] = o
		g.edges++
		g.deg[rater]++
		g.deg[subject]++
	}
	o.sum += deltaSum
	o.count += deltaCount
	if o.count > 0 {
		return
	}
	delete(row, subject)
	if len(row) == 0 {
		delete(g.out, rater)
	}
	g.edges--
	for _, p := range [2]peer.ID{rater, subject} {
		if g.deg[p]--; g.deg[p] == 0 {
			delete(g.deg, p)
		}
	}
}

// Opinion returns rater's aggregated opinion of subject: the sum of its
// scores and the number of receipts behind them (0, 0 if none).
func (g *Graph) Opinion(rater, subject peer.ID) (sum float64, count int) {
	if o := g.out[rater][subject]; o != nil {
		return o.sum, o.count
	}
	return 0, 0
}

// Size returns how many peers appear in the graph, as rater or subject, and
// how many (rater, subject) opinions it holds.
func (g *Graph) Size() (peers, edges int) {
	return len(g.deg), g.edges
}

// Snapshot is an immutable copy of a Graph in compressed sparse row form,
// which is what the iteration runs on: arrays, not maps, so that a
// computation over 10,000 peers is a few passes over contiguous memory. One
// snapshot can serve any number of Compute calls, concurrently, from
// different points of view.
type Snapshot struct {
	ids   []peer.ID // sorted, so results do not depend on map order
	index map[peer.ID]int32

	// Opinions by rater: row i is start[i]:start[i+1].
	start []int32
	to    []int32
	sum   []float64
	count []int32
	// Per rater, the sums of its positive and of its negative opinions:
	// the normalizers of local trust and of local distrust.
	posTotal []float64
	negTotal []float64

	// The same opinions by subject (edge indices into the arrays above),
	// for explanations; from[e] is edge e's rater.
	inStart []int32
	inEdge  []int32
	from    []int32
}

// Snapshot copies the graph into a Snapshot. Later changes to g do not
// affect it.
func (g *Graph) Snapshot() *Snapshot {
	ids := make([]peer.ID, 0, len(g.deg))
	for p := range g.deg {
		ids = append(ids, p)
	}
	slices.Sort(ids)
	s := &Snapshot{
		ids:      ids,
		index:    make(map[peer.ID]int32, len(ids)),
		start:    make([]int32, len(ids)+1),
		to:       make([]int32, 0, g.edges),
		sum:      make([]float64, 0, g.edges),
		count:    make([]int32, 0, g.edges),
		posTotal: make([]float64, len(ids)),
		negTotal: make([]float64, len(ids)),
	}
	for i, p := range ids {
		s.index[p] = int32(i)
	}
	type entry struct {
		to int32
		o  *opinion
	}
	var row []entry
	inDeg := make([]int32, len(ids)+1)
	for i, p := range ids {
		s.start[i] = int32(len(s.to))
		row = row[:0]
		for subj, o := range g.out[p] {
			row = append(row, entry{s.index[subj], o})
		}
		// Sorted rows make every floating-point sum below come out the
		// same on every run, which a seeded simulation relies on.
		slices.SortFunc(row, func(a, b entry) int { return int(a.to - b.to) })
		for _, e := range row {
			s.to = append(s.to, e.to)
			s.sum = append(s.sum, e.o.sum)
			s.count = append(s.count, int32(e.o.count))
			if e.o.sum > 0 {
				s.posTotal[i] += e.o.sum
			} else {
				s.negTotal[i] -= e.o.sum
			}
			inDeg[e.to+1]++
		}
	}
	s.start[len(ids)] = int32(len(s.to))

	s.inStart = inDeg
	for j := 1; j < len(s.inStart); j++ {
		s.inStart[j] += s.inStart[j-1]
	}
	s.inEdge = make([]int32, len(s.to))
	s.from = make([]int32, len(s.to))
	fill := slices.Clone(s.inStart[:len(ids)])
	for i := range ids {
		for e := s.start[i]; e < s.start[i+1]; e++ {
			j := s.to[e]
			s.inEdge[fill[j]] = e
			s.from[e] = int32(i)
			fill[j]++
		}
	}
	return s
}

// Size returns the snapshot's peers and opinions, as Graph.Size.
func (s *Snapshot) Size() (peers, edges int) { return len(s.ids), len(s.to) }
