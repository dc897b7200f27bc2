package trust

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

type rating struct {
	rater, subject peer.ID
	score          float64
}

func graphOf(rs ...rating) *Graph {
	g := NewGraph()
	for _, r := range rs {
		g.Add(r.rater, r.subject, r.score, 1)
	}
	return g
}

func TestCompute(t *testing.T) {
	const self = peer.ID("self")
	type want struct {
		peer peer.ID
		sign int // -1, 0 or +1: the sign Value must have
	}
	tests := []struct {
		name    string
		ratings []rating
		anchors []Anchor
		want    []want
		check   func(t *testing.T, r *Result)
	}{
		{
			name:    "self-anchor only: own good experience trusted, the rest unknown",
			ratings: []rating{{self, "good", 1}, {"x", "y", 1}},
			want:    []want{{self, 1}, {"good", 1}, {"x", 0}, {"y", 0}, {"nobody", 0}},
		},
		{
			name:    "anchor chain A→B→C: trust flows down the chain and thins",
			ratings: []rating{{"A", "B", 1}, {"B", "C", 1}},
			anchors: []Anchor{{"A", 1}},
			want:    []want{{"A", 1}, {"B", 1}, {"C", 1}},
			check: func(t *testing.T, r *Result) {
				a, b, c := r.Score("A"), r.Score("B"), r.Score("C")
				if !(a.Positive > b.Positive && b.Positive > c.Positive) {
					t.Errorf("Positive should thin along the chain: A %v B %v C %v", a.Positive, b.Positive, c.Positive)
				}
				if c.Evidence != 1 {
					t.Errorf("C evidence = %d, want 1", c.Evidence)
				}
			},
		},
		{
			name:    "chain without the anchor: nobody self trusts vouches for A, so nothing counts",
			ratings: []rating{{"A", "B", 1}, {"B", "C", 1}},
			want:    []want{{"A", 0}, {"B", 0}, {"C", 0}},
		},
		{
			name:    "own negative opinion drops a peer below neutral",
			ratings: []rating{{self, "bad", -1}, {self, "good", 1}},
			want:    []want{{"bad", -1}, {"good", 1}},
			check: func(t *testing.T, r *Result) {
				if f := Factor(r.Score("bad").Value); f >= 0.5 {
					t.Errorf("Factor(bad) = %v, want below an unknown peer's 0.5", f)
				}
			},
		},
		{
			name: "a trusted peer's negative opinion counts; an untrusted one's does not",
			ratings: []rating{
				{self, "friend", 1}, {"friend", "bad", -1},
				{"stranger", "good", -1},
			},
			want: []want{{"bad", -1}, {"good", 0}},
		},
		{
			name: "mixed evidence from equally trusted raters nets out near zero",
			ratings: []rating{
				{self, "f1", 1}, {self, "f2", 1},
				{"f1", "m", 1}, {"f2", "m", -1},
			},
			check: func(t *testing.T, r *Result) {
				if v := r.Score("m").Value; math.Abs(v) > 1e-9 {
					t.Errorf("Value(m) = %v, want 0", v)
				}
				if e := r.Score("m").Evidence; e != 2 {
					t.Errorf("Evidence(m) = %d, want 2", e)
				}
			},
		},
		{
			name: "distrust anchor: the peer scores -1 and its ratings count for nothing",
			ratings: []rating{
				{self, "A", 1}, {"A", "B", 1}, {"A", "C", -1},
			},
			anchors: []Anchor{{"A", -1}},
			want:    []want{{"B", 0}, {"C", 0}},
			check: func(t *testing.T, r *Result) {
				if v := r.Score("A").Value; v != -1 {
					t.Errorf("Value(A) = %v, want -1", v)
				}
				for _, p := range []peer.ID{"B", "C"} {
					if s := r.Score(p); s.Positive != 0 || s.Negative != 0 || s.Evidence != 0 {
						t.Errorf("%s: %+v, want nothing from a distrusted rater", p, s)
					}
				}
			},
		},
		{
			name:    "weak distrust caps the Value at the weight",
			ratings: []rating{{self, "A", 1}},
			anchors: []Anchor{{"A", -0.3}},
			check: func(t *testing.T, r *Result) {
				if v := r.Score("A").Value; v != -0.3 {
					t.Errorf("Value(A) = %v, want -0.3", v)
				}
			},
		},
		{
			name:    "anchor unknown to the graph is still trusted",
			anchors: []Anchor{{"fresh", 0.5}},
			want:    []want{{"fresh", 1}, {self, 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Compute(graphOf(tc.ratings...), self, tc.anchors, Params{})
			if !r.Converged() {
				t.Errorf("did not converge in %d iterations", r.Iterations())
			}
			for _, w := range tc.want {
				v := r.Score(w.peer).Value
				if got := sign(v); got != w.sign {
					t.Errorf("Value(%q) = %v, want sign %d", string(w.peer), v, w.sign)
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func sign(v float64) int {
	switch {
	case v > 1e-12:
		return 1
	case v < -1e-12:
		return -1
	}
	return 0
}

// market builds a consumer/provider rating graph like the simulation's:
// consumers rate the providers they used (+1 good, -1 bad), providers rate
// the consumers they served +1. Providers 0..bad-1 are bad.
func market(rng *rand.Rand, consumers, providers, bad, sessions int) *Graph {
	g := NewGraph()
	for range sessions {
		c := peer.ID(fmt.Sprintf("c%d", rng.IntN(consumers)))
		pi := rng.IntN(providers)
		p := peer.ID(fmt.Sprintf("p%d", pi))
		score := 1.0
		if pi < bad {
			score = -1
		}
		g.Add(c, p, score, 1)
		g.Add(p, c, 1, 1)
	}
	return g
}

func TestSybilCliqueGainsNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	g := market(rng, 40, 20, 5, 400)
	const self = peer.ID("c0")
	before := Compute(g, self, nil, Params{}).Scores()

	// 50 fresh identities praise each other, the bad providers and a
	// newcomer, and smear every provider. Nobody trusted ever rated
	// any of them, so none of it may move a single score.
	for i := range 50 {
		s := peer.ID(fmt.Sprintf("sybil%d", i))
		for j := range 50 {
			g.Add(s, peer.ID(fmt.Sprintf("sybil%d", j)), 1, 1)
		}
		for p := range 20 {
			score := -1.0
			if p < 5 {
				score = 1
			}
			g.Add(s, peer.ID(fmt.Sprintf("p%d", p)), score, 1)
		}
		g.Add(s, "newcomer", 1, 1)
	}
	after := Compute(g, self, nil, Params{})
	got := after.Scores()
	if len(got) != len(before) {
		t.Errorf("scored peers: %d after the swarm, %d before", len(got), len(before))
	}
	for p, b := range before {
		a := got[p]
		if math.Abs(a.Value-b.Value) > 1e-12 || a.Evidence != b.Evidence {
			t.Errorf("%s: %+v after the swarm, %+v before", p, a, b)
		}
	}
	for _, p := range []peer.ID{"sybil0", "newcomer"} {
		if s := after.Score(p); s != (Score{}) {
			t.Errorf("%s: %+v, want the zero Score", p, s)
		}
	}
	for p := range 5 {
		if v := after.Score(peer.ID(fmt.Sprintf("p%d", p))).Value; v >= 0 {
			t.Errorf("bad provider p%d: Value %v, want < 0", p, v)
		}
	}
}

func TestAddDeltas(t *testing.T) {
	g := NewGraph()
	g.Add("a", "b", 1, 1)
	g.Add("a", "b", 0.5, 1)
	if s, c := g.Opinion("a", "b"); s != 1.5 || c != 2 {
		t.Fatalf("after two ratings: (%v, %d), want (1.5, 2)", s, c)
	}
	// The first rating (1) is replaced by -1: a delta of -2, count
	// unchanged.
	g.Add("a", "b", -2, 0)
	if s, c := g.Opinion("a", "b"); s != -0.5 || c != 2 {
		t.Fatalf("after replacing: (%v, %d), want (-0.5, 2)", s, c)
	}
	r := Compute(g, "a", nil, Params{})
	if v := r.Score("b").Value; v >= 0 {
		t.Errorf("Value(b) = %v after the replacement made the opinion negative", v)
	}
	g.Add("a", "b", 1, -1)
	g.Add("a", "b", 0.5, -1)
	if s, c := g.Opinion("a", "b"); s != 0 || c != 0 {
		t.Fatalf("after removing both: (%v, %d), want (0, 0)", s, c)
	}
	if p, e := g.Size(); p != 0 || e != 0 {
		t.Errorf("Size = %d peers, %d edges; want an empty graph", p, e)
	}
	g.Add("a", "a", 1, 1)          // self-rating
	g.Add("a", "c", 1, 0)          // replacement of nothing
	g.Add("a", "c", -1, -1)        // removal of nothing
	g.Add("a", "c", math.NaN(), 1) // garbage
	if p, e := g.Size(); p != 0 || e != 0 {
		t.Errorf("Size = %d peers, %d edges after ignored adds", p, e)
	}
	g.Add("a", "b", 1, 1)
	g.Add("b", "c", 1, 1)
	if p, e := g.Size(); p != 3 || e != 2 {
		t.Errorf("Size = %d peers, %d edges, want 3 and 2", p, e)
	}
}

func TestSnapshotIsACopy(t *testing.T) {
	g := graphOf(rating{"s", "a", 1})
	r := Compute(g, "s", nil, Params{})
	before := r.Score("a")
	g.Add("s", "a", -1, 0)
	g.Add("s", "b", 1, 1)
	if after := r.Score("a"); after != before {
		t.Errorf("Result changed with the graph: %+v, was %+v", after, before)
	}
}

func TestConvergesInUnderTenIterations(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// A random directed graph of 1,000 peers with 20 opinions each,
	// mostly positive.
	g := NewGraph()
	for i := range 1000 {
		for range 20 {
			j := rng.IntN(1000)
			score := 1.0
			if rng.Float64() < 0.2 {
				score = -1
			}
			g.Add(peer.ID(fmt.Sprintf("p%d", i)), peer.ID(fmt.Sprintf("p%d", j)), score, 1)
		}
	}
	// And the bipartite consumer/provider case, the slowest for the
	// power iteration: trust sloshes between the two sides.
	bip := market(rng, 600, 400, 100, 20000)
	for name, g := range map[string]*Graph{"random": g, "bipartite": bip} {
		s := g.Snapshot()
		for _, self := range []peer.ID{"p0", "p17", "c0", "c5"} {
			r := s.Compute(self, nil, Params{})
			if !r.Converged() || r.Iterations() >= 10 {
				t.Errorf("%s from %q: %d iterations, converged %v; want < 10", name, string(self), r.Iterations(), r.Converged())
			}
		}
	}
}

// The fixed point must not depend on when the iteration stopped: a tight
// epsilon gives the same Values to within a few hundredths.
func TestDefaultEpsilonIsCloseToTheFixedPoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := market(rng, 300, 200, 60, 6000).Snapshot()
	loose := s.Compute("c1", nil, Params{})
	tight := s.Compute("c1", nil, Params{Epsilon: 1e-12, MaxIterations: 1000})
	if !tight.Converged() {
		t.Fatal("tight run did not converge")
	}
	worst := 0.0
	for p, sc := range tight.Scores() {
		worst = max(worst, math.Abs(sc.Value-loose.Score(p).Value))
	}
	if worst > 0.02 {
		t.Errorf("largest Value difference from the fixed point: %v", worst)
	}
}

func TestScaleFree(t *testing.T) {
	// The same market at two sizes: a good provider's and a bad one's
	// Value should not drift with the number of peers.
	for _, n := range []int{1, 10} {
		rng := rand.New(rand.NewPCG(7, 8))
		g := market(rng, 30*n, 20*n, 5*n, 600*n)
		r := Compute(g, "c0", nil, Params{})
		var good, bad float64
		var ng, nb int
		for p := range 20 * n {
			sc := r.Score(peer.ID(fmt.Sprintf("p%d", p)))
			if sc.Evidence == 0 {
				continue
			}
			if p < 5*n {
				bad += sc.Value
				nb++
			} else {
				good += sc.Value
				ng++
			}
		}
		good /= float64(ng)
		bad /= float64(nb)
		if good < 0.2 || bad > -0.2 {
			t.Errorf("%d peers: mean Value good %.2f, bad %.2f; want clearly apart", 50*n, good, bad)
		}
	}
}

func TestConcurrentComputeOnOneSnapshot(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	s := market(rng, 50, 30, 5, 1000).Snapshot()
	want := s.Compute("c3", nil, Params{}).Scores()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := s.Compute(peer.ID(fmt.Sprintf("c%d", i)), nil, Params{})
			if i == 3 {
				for p, sc := range r.Scores() {
					if sc != want[p] {
						t.Errorf("%s: %+v, want %+v", p, sc, want[p])
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestFactor(t *testing.T) {
	for _, c := range []struct{ v, want float64 }{
		{0, 0.5}, {1, 1}, {-1, 0}, {0.5, 0.75}, {-0.5, 0.25}, {2, 1}, {-3, 0}, {math.NaN(), 0.5},
	} {
		if got := Factor(c.v); got != c.want {
			t.Errorf("Factor(%v) = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestContributorsAndWhy(t *testing.T) {
	// self trusts A (anchor) and used B; A and B both rated P, A well and
	// B badly; A earned its trust from self's anchor and from C, whom self
	// does not know. C and A rate each other: a cycle.
	g := graphOf(
		rating{"self", "B", 1},
		rating{"A", "P", 1}, rating{"A", "P", 1},
		rating{"B", "P", -1},
		rating{"C", "A", 1}, rating{"A", "C", 1},
		rating{"B", "C", 1},
	)
	r := Compute(g, "self", []Anchor{{"A", 1}}, Params{})
	c := r.Contributors("P", 0)
	if len(c) != 2 {
		t.Fatalf("contributors of P: %+v, want A and B", c)
	}
	byRater := map[peer.ID]Contribution{}
	total := 0.0
	for _, k := range c {
		byRater[k.Rater] = k
		total += math.Abs(k.Weight)
	}
	if a := byRater["A"]; a.Weight <= 0 || a.Sum != 2 || a.Count != 2 || a.RaterTrust != r.Score("A").Positive {
		t.Errorf("A's contribution: %+v", a)
	}
	if b := byRater["B"]; b.Weight >= 0 || b.Sum != -1 || b.Count != 1 {
		t.Errorf("B's contribution: %+v", b)
	}
	if math.Abs(total-1) > 1e-9 {
		t.Errorf("|weights| of P's contributors sum to %v, want 1", total)
	}
	if math.Abs(math.Abs(c[0].Weight)) < math.Abs(c[1].Weight) {
		t.Errorf("contributors not strongest first: %+v", c)
	}
	if got := r.Contributors("P", 1); len(got) != 1 || got[0] != c[0] {
		t.Errorf("Contributors(P, 1) = %+v", got)
	}

	x := r.Why("P", 3, 5)
	if x.Peer != "P" || len(x.Raters) != 2 {
		t.Fatalf("Why(P): %+v", x)
	}
	var viaA *Explanation
	for i := range x.Raters {
		if x.Raters[i].Rater.Peer == "A" {
			viaA = &x.Raters[i].Rater
		}
	}
	if viaA == nil || viaA.Anchor != 1 || viaA.Teleport <= 0 {
		t.Fatalf("A should be explained as an anchor: %+v", viaA)
	}
	// A earned trust from C (who is trusted through A and B); C's own
	// trust comes partly back from A: that is the cycle to cut.
	var viaC *Explanation
	for i := range viaA.Raters {
		if viaA.Raters[i].Rater.Peer == "C" {
			viaC = &viaA.Raters[i].Rater
		}
	}
	if viaC == nil {
		t.Fatalf("A's trust should show C: %+v", viaA)
	}
	cut := false
	for _, l := range viaC.Raters {
		if l.Rater.Peer == "A" && l.Rater.Cut == "cycle" && len(l.Rater.Raters) == 0 {
			cut = true
		}
	}
	if !cut {
		t.Errorf("cycle A→C→A not cut: %+v", viaC)
	}
	// Below the top only positive opinions explain trust.
	for _, l := range viaA.Raters {
		if l.Weight < 0 {
			t.Errorf("negative link below the top: %+v", l)
		}
	}
	if shallow := r.Why("P", 0, 5); len(shallow.Raters) != 0 || shallow.Cut != "depth" {
		t.Errorf("Why(P, 0, 5) = %+v, want no raters, cut by depth", shallow)
	}
	if narrow := r.Why("P", 1, 1); len(narrow.Raters) != 1 || narrow.Omitted != 1 {
		t.Errorf("Why(P, 1, 1) = %+v, want one rater and one omitted", narrow)
	}
	if me := r.Why("self", 3, 5); !me.Self || len(me.Raters) != 0 {
		t.Errorf("Why(self) = %+v", me)
	}
	if _, err := json.Marshal(x); err != nil {
		t.Errorf("explanation does not marshal: %v", err)
	}
}

func TestSilencingAPeerDistrustedOnBalance(t *testing.T) {
	// self found A good and M bad; A vouches for M (say M was a good
	// consumer of A's), and M praises B. Self's own complaint outweighs
	// A's word for M, so M's praise of B must not count.
	g := graphOf(
		rating{"self", "A", 1}, rating{"self", "M", -1},
		rating{"A", "M", 1}, rating{"M", "B", 1},
	)
	r := Compute(g, "self", nil, Params{})
	if s := r.Score("B"); s != (Score{}) {
		t.Errorf("B: %+v, want nothing from a silenced rater", s)
	}
	if v := r.Score("M").Value; v >= 0 {
		t.Errorf("M: Value %v, want < 0", v)
	}
	if c := r.Contributors("B", 0); len(c) != 0 {
		t.Errorf("B's contributors: %+v, want none", c)
	}
	plain := Compute(g, "self", nil, Params{DisableGating: true})
	if v := plain.Score("B").Value; v <= 0 {
		t.Errorf("without gating B should be trusted through M: Value %v", v)
	}
	// The anchor is never silenced: the participant's word stands.
	anchored := Compute(g, "self", []Anchor{{"M", 1}}, Params{})
	if v := anchored.Score("B").Value; v <= 0 {
		t.Errorf("M anchored: B's Value %v, want > 0", v)
	}
}

func TestRatersWhoContradictSelfAreHeardLess(t *testing.T) {
	// G vouches for R (R was a good consumer of G's). R praises the
	// provider self found bad, smears the one self found good, and
	// praises X. Two contradictions: R's voice drops to 1/5.
	g := graphOf(
		rating{"self", "G", 1}, rating{"self", "Bad", -1},
		rating{"G", "R", 1},
		rating{"R", "Bad", 1}, rating{"R", "G", -1}, rating{"R", "X", 1},
	)
	with := Compute(g, "self", nil, Params{}).Score("X")
	without := Compute(g, "self", nil, Params{DisableAgreement: true}).Score("X")
	if with.Positive <= 0 || with.Positive > 0.25*without.Positive {
		t.Errorf("X's Positive: %v with agreement, %v without; want about a fifth", with.Positive, without.Positive)
	}
	// A rater that agrees keeps its full voice.
	g2 := graphOf(
		rating{"self", "G", 1}, rating{"self", "Bad", -1},
		rating{"G", "R", 1},
		rating{"R", "Bad", -1}, rating{"R", "G", 1}, rating{"R", "X", 1},
	)
	a := Compute(g2, "self", nil, Params{}).Score("X")
	b := Compute(g2, "self", nil, Params{DisableAgreement: true}).Score("X")
	if a != b {
		t.Errorf("agreeing rater: %+v with agreement, %+v without", a, b)
	}
}
