package trust

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// randomGraph returns n peers with about perRater opinions each, 80 %
// positive, the shape the 10,000-peer target in issue 6 describes.
func randomGraph(n, perRater int) *Graph {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	ids := make([]peer.ID, n)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprintf("12D3KooWpeer%08d", i))
	}
	g := NewGraph()
	for _, r := range ids {
		for range perRater {
			score := 1.0
			if rng.Float64() < 0.2 {
				score = -1
			}
			g.Add(r, ids[rng.IntN(n)], score, 1)
		}
	}
	return g
}

// One full recomputation as a node does it: snapshot the graph, iterate,
// score every peer.
func benchCompute(b *testing.B, n int) {
	g := randomGraph(n, 20)
	self := peer.ID(fmt.Sprintf("12D3KooWpeer%08d", 0))
	var it int
	for b.Loop() {
		r := Compute(g, self, nil, Params{})
		it = r.Iterations()
	}
	b.ReportMetric(float64(it), "iterations")
}

func BenchmarkCompute1k(b *testing.B)  { benchCompute(b, 1000) }
func BenchmarkCompute10k(b *testing.B) { benchCompute(b, 10000) }

// The iteration alone, on a snapshot already taken.
func BenchmarkSnapshotCompute10k(b *testing.B) {
	s := randomGraph(10000, 20).Snapshot()
	self := peer.ID(fmt.Sprintf("12D3KooWpeer%08d", 0))
	for b.Loop() {
		s.Compute(self, nil, Params{})
	}
}

// The shape ratings really have: 6,000 consumers rating the providers they
// used, 4,000 providers rating the consumers they served, 20 sessions per
// consumer. Nearly bipartite, so the iteration needs its most steps here.
func BenchmarkCompute10kMarket(b *testing.B) {
	rng := rand.New(rand.NewPCG(10, 20))
	g := market(rng, 6000, 4000, 1000, 120000)
	var it int
	for b.Loop() {
		it = Compute(g, "c0", nil, Params{}).Iterations()
	}
	b.ReportMetric(float64(it), "iterations")
}
