package trust

import (
	"math"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Defaults for the zero values of Params. REPUTATION.md explains them; in
// short:
//
//   - Alpha 0.5: half of all trust returns to the node itself (and its
//     anchors) at every step, so its own experience weighs at least as much
//     as all hearsay together, trust halves with each hop it travels, and a
//     clique that some trust leaks into can amplify it at most 1/Alpha = 2
//     times by passing it around. It also bounds convergence: the iterates
//     approach the fixed point at least as fast as (1-Alpha)^k, and rating
//     graphs are nearly bipartite (consumers rate providers, providers rate
//     consumers), which makes that bound tight.
//   - Epsilon 0.005: stop when one step moves less than 0.5 % of all trust
//     (trust sums to 1); with Alpha 0.5 the distance left to the fixed point
//     is then below Epsilon too. About nine iterations on a bipartite
//     graph, fewer on one that mixes.
//   - MaxIterations 50: a guard, never reached in the simulation.
const (
	DefaultAlpha         = 0.5
	DefaultEpsilon       = 0.005
	DefaultMaxIterations = 50
)

// Params tunes Compute. Each zero value means the default above.
type Params struct {
	// Alpha is the share of trust that teleports back to the node and its
	// anchors at every step, in (0,1).
	Alpha float64
	// Epsilon is the L1 change between two iterates below which the
	// iteration stops.
	Epsilon float64
	// MaxIterations bounds the iteration whether or not it converged.
	MaxIterations int
	// DisableGating turns off silencing peers distrusted on balance.
	DisableGating bool
	// DisableAgreement turns off lowering the voice of raters that
	// contradict self's own opinions.
	DisableAgreement bool
}

func (p Params) withDefaults() Params {
	if !(p.Alpha > 0 && p.Alpha < 1) {
		p.Alpha = DefaultAlpha
	}
	if !(p.Epsilon > 0) {
		p.Epsilon = DefaultEpsilon
	}
	if p.MaxIterations <= 0 {
		p.MaxIterations = DefaultMaxIterations
	}
	return p
}

// Anchor is a peer the participant has vouched for or against directly.
// Weight in (0,1] makes the peer a teleport target besides the node itself
// (the node has weight 1), so trust starts there as well as at home. Weight
// in [-1,0) distrusts the peer: its ratings count for nothing and its Value
// is at most Weight. Weight 0 is no anchor; weights beyond ±1 are clamped.
type Anchor struct {
	Peer   peer.ID
	Weight float64
}

// Score is what a node thinks of one peer.
type Score struct {
	// Value summarizes the rest in [-1,1]: 0 means no evidence, above 0
	// trusted, below 0 distrusted. It is what ranking and policy use.
	Value float64
	// Positive is the trust mass that reaches the peer: the EigenTrust
	// value, through positive opinions, plus its teleport share if it is
	// the node itself or an anchor. All peers' Positive sums to 1.
	Positive float64
	// Negative is the trust mass behind negative opinions of the peer:
	// each rater spends its trust on its negative opinions in the same
	// proportion and with the same (1-Alpha) factor as on its positive
	// ones.
	Negative float64
	// Evidence counts the ratings about the peer (the receipts behind the
	// opinions) from raters that have trust and are heard: not
	// distrusted, not silenced.
	Evidence int
}

// Factor turns a Score.Value into a ranking multiplier in [0,1]: (1+v)/2.
// Unknown peers (0) rank in the middle at 0.5, so a fresh identity is
// neither favoured nor buried; trusted peers rank above, up to 1;
// distrusted below, down to 0. Linear, so that relevance still decides
// between peers the node knows equally little about.
func Factor(v float64) float64 {
	if math.IsNaN(v) {
		return 0.5
	}
	return (1 + max(-1, min(1, v))) / 2
}

// Result is trust from one node's point of view at one moment. It keeps
// only the Snapshot it was computed from, never the Graph, so the caller
// may go on changing the Graph. It is safe for concurrent reads.
type Result struct {
	snap  *Snapshot
	extra map[peer.ID]int32 // self and anchors the graph does not know
	ids   []peer.ID         // snap.ids followed by the extra peers
	self  int32
	alpha float64

	teleport map[int32]float64 // normalized: self and positive anchors
	anchor   []float64         // the participant's weights, + and -, by index

	trust []float64 // t, the Positive mass
	// rater is the iterate before trust: the trust that raters spent to
	// make it. Negative mass, evidence and explanations use it too, so
	// that Positive and Negative come from the very same step and a
	// peer's contributions add up to exactly its mass.
	rater     []float64
	neg       []float64
	value     []float64
	evidence  []int32
	smoothing float64
	voice     []float64 // see Compute
	silenced  []bool    // see iterate
	back      float64   // teleport mass per unit of p in the last iteration

	iterations int
	converged  bool
}

// speaks reports whether rater i's opinions count: it has trust (in the
// iterate its opinions were spread from) and a voice, and is not silenced.
func (r *Result) speaks(i int32) bool {
	return r.rater[i] > 0 && r.voice[i] > 0 && !r.silenced[i]
}

// freezeAt: silencing is last re-decided when a step moves less than
// freezeAt·Epsilon.
const freezeAt = 8

// iterate runs the power iteration from t until one step moves less than
// Epsilon and silences no one new or again, and returns the last iterate
// and the one before it; prev is scratch space. Each step also takes the
// step of distrust from the same iterate, into r.neg, so Positive and
// Negative always come from the same trust.
//
// Between steps, every peer more distrusted than trusted (Negative above
// Positive) is silenced for the next step, as if the participant had
// distrusted it: a peer the node believes serves badly should not vouch
// for anyone either. This is what breaks a collective of bad providers
// praising each other: the complaints of the consumers they served
// outweigh the praise, and then the praise stops counting. Self and
// positive anchors are never silenced. Silencing is re-decided at every
// step, so a peer silenced early, before trust had reached it, gets its
// voice back.
func (r *Result) iterate(t, prev []float64, params Params) (last, before []float64) {
	s, alpha := r.snap, r.alpha
	graphN := int32(len(s.ids))
	next := prev
	r.converged = false
	frozen := false
	for r.iterations < params.MaxIterations {
		clear(next)
		clear(r.neg)
		lost := 0.0
		for i := range graphN {
			ti := t[i]
			if ti == 0 {
				continue
			}
			v := r.voice[i]
			if r.silenced[i] {
				v = 0
			}
			lost += (1 - v) * ti
			if v == 0 {
				continue
			}
			fp, fn := 0.0, 0.0
			if s.posTotal[i] > 0 {
				fp = (1 - alpha) * v * ti / s.posTotal[i]
			} else {
				lost += v * ti // no positive opinion: its trust goes home
			}
			if s.negTotal[i] > 0 {
				fn = (1 - alpha) * v * ti / s.negTotal[i]
			}
			for e := s.start[i]; e < s.start[i+1]; e++ {
				if w := s.sum[e]; w > 0 {
					next[s.to[e]] += fp * w
				} else {
					r.neg[s.to[e]] -= fn * w
				}
			}
		}
		for i := graphN; i < int32(len(t)); i++ {
			lost += t[i]
		}
		back := alpha + (1-alpha)*lost
		r.back = back
		for i, w := range r.teleport {
			next[i] += back * w
		}
		diff := 0.0
		for i := range t {
			diff += math.Abs(next[i] - t[i])
		}
		t, next = next, t
		r.iterations++
		changed := false
		if !params.DisableGating && !frozen {
			for i := range graphN {
				silence := i != r.self && r.anchor[i] <= 0 && r.neg[i] > t[i]
				if silence != r.silenced[i] {
					r.silenced[i] = silence
					changed = true
				}
			}
			// Decide who is silenced on a nearly converged iterate,
			// then stop: a peer whose Negative and Positive are about
			// equal could otherwise flip at every step.
			frozen = diff < freezeAt*params.Epsilon
		}
		if diff < params.Epsilon && !changed {
			r.converged = true
			break
		}
	}
	return t, next
}

// agreement lowers the voice of raters that contradict self's own
// opinions: over the peers both a rater and self hold a nonzero opinion
// of, voice = (1+agree)/(1+agree+2·disagree). Self's own experience is the
// one thing nobody else can fake, so a rater that praises the providers
// self found bad, or smears those it found good, is heard less. Raters
// that share no subject with self keep their full voice.
func (r *Result) agreement() {
	s := r.snap
	if r.self >= int32(len(s.ids)) || s.start[r.self] == s.start[r.self+1] {
		return
	}
	n := len(r.ids)
	mine := make([]int8, n) // sign of self's opinion
	for e := s.start[r.self]; e < s.start[r.self+1]; e++ {
		switch {
		case s.sum[e] > 0:
			mine[s.to[e]] = 1
		case s.sum[e] < 0:
			mine[s.to[e]] = -1
		}
	}
	// Only raters of what self rated can share a subject with it.
	seen := make([]bool, n)
	for e := s.start[r.self]; e < s.start[r.self+1]; e++ {
		j := s.to[e]
		if mine[j] == 0 {
			continue
		}
		for _, e := range s.inEdge[s.inStart[j]:s.inStart[j+1]] {
			i := s.from[e]
			if i == r.self || seen[i] || r.voice[i] == 0 {
				continue
			}
			seen[i] = true
			agree, disagree := 0, 0
			for f := s.start[i]; f < s.start[i+1]; f++ {
				m, v := mine[s.to[f]], s.sum[f]
				switch {
				case m == 0 || v == 0:
				case (m > 0) == (v > 0):
					agree++
				default:
					disagree++
				}
			}
			r.voice[i] = float64(1+agree) / float64(1+agree+2*disagree)
		}
	}
}

// Compute returns self's trust in every peer of g, anchored at self and at
// anchors. It is Snapshot then Snapshot.Compute; a caller that computes
// from several points of view over one graph snapshots once.
func Compute(g *Graph, self peer.ID, anchors []Anchor, p Params) *Result {
	return g.Snapshot().Compute(self, anchors, p)
}

// Compute returns self's trust in every peer of the snapshot, anchored at
// self and at anchors (see Anchor). The iteration is personalized
// EigenTrust, from t = p:
//
//	c_ij = max(s_ij,0) / Σ_k max(s_ik,0)       local trust of i in j
//	t'_j = (1-α)·Σ_i v_i·t_i·c_ij + α'·p_j     p: self 1, anchors by weight, normalized
//	N_j  = (1-α)·Σ_i v_i·t_i·max(-s_ij,0) / Σ_k max(-s_ik,0)
//
// until a step moves t less than Epsilon in L1. Trust that does not flow
// along opinions (a rater with no positive opinion, or the share 1-v_i a
// rater is not heard with) goes back to p, so t always sums to 1 (α' is α
// plus that share). N, the mass behind negative opinions, is taken from the
// same iterate, each rater spending its trust on its negative opinions as
// on its positive ones.
//
// v_i is rater i's voice: 1 by default; 0 for a distrusted anchor; 0 for a
// peer more distrusted than trusted (see iterate); and lowered for a rater
// that contradicts self's own opinions (see agreement). Both of the last
// two are extensions to EigenTrust, against raters who earn trust as
// consumers and spend it praising bad providers; Params turns them off.
//
// Value = (P-N)/(P+N+m), where m is the mean Positive of the peers with
// evidence: see Score.
func (s *Snapshot) Compute(self peer.ID, anchors []Anchor, params Params) *Result {
	params = params.withDefaults()
	alpha := params.Alpha
	r := &Result{
		snap:     s,
		ids:      s.ids,
		alpha:    alpha,
		teleport: make(map[int32]float64),
	}
	r.self = r.indexOrAdd(self)
	weights := make(map[int32]float64)
	for _, a := range anchors {
		w := a.Weight
		if math.IsNaN(w) || a.Peer == self {
			continue
		}
		w = max(-1, min(1, w))
		if w == 0 {
			delete(weights, r.lookup(a.Peer))
			continue
		}
		weights[r.indexOrAdd(a.Peer)] = w // a later entry for a peer wins
	}
	total := 1.0
	r.teleport[r.self] = 1
	r.anchor = make([]float64, len(r.ids))
	for i, w := range weights {
		r.anchor[i] = w
	}
	for i, w := range r.anchor { // in index order: sums come out the same every run
		if w > 0 {
			r.teleport[int32(i)] = w
			total += w
		}
	}
	for i := range r.teleport {
		r.teleport[i] /= total
	}

	n := len(r.ids)
	graphN := int32(len(s.ids))
	// voice is the share of a rater's trust that backs its opinions; the
	// rest goes back to p, as the trust of a rater with no positive
	// opinion does. 0 for a distrusted anchor; below 1 for a rater that
	// contradicts self's own experience; 0 for a peer distrusted on
	// balance once gating has run.
	r.voice = make([]float64, n)
	for i := range graphN {
		r.voice[i] = 1
		if r.anchor[i] < 0 {
			r.voice[i] = 0
		}
	}
	if !params.DisableAgreement {
		r.agreement()
	}

	t := make([]float64, n)
	for i, w := range r.teleport {
		t[i] = w
	}
	r.neg = make([]float64, n)
	r.silenced = make([]bool, n)
	r.trust, r.rater = r.iterate(t, make([]float64, n), params)

	r.evidence = make([]int32, n)
	for i := range graphN {
		if r.speaks(i) {
			for e := s.start[i]; e < s.start[i+1]; e++ {
				r.evidence[s.to[e]] += s.count[e]
			}
		}
	}
	t = r.trust

	// Value = (P-N)/(P+N+m). The smoothing mass m is the mean Positive of
	// the peers with evidence (self aside): a peer with typical praise and
	// no complaint scores 0.5, one with no evidence 0, and since m scales
	// with the masses the Value does not drift as the network grows.
	known, mass := 0, 0.0
	for j := range n {
		if int32(j) == r.self || r.anchor[int32(j)] < 0 {
			continue
		}
		if r.evidence[j] > 0 || r.anchor[int32(j)] > 0 {
			known++
			mass += t[j]
		}
	}
	r.smoothing = 1
	if known > 0 && mass > 0 {
		r.smoothing = mass / float64(known)
	}
	r.value = make([]float64, n)
	for j := range n {
		P, N := t[j], r.neg[j]
		if P+N > 0 {
			r.value[j] = (P - N) / (P + N + r.smoothing)
		}
		if w := r.anchor[int32(j)]; w < 0 {
			r.value[j] = min(r.value[j], w)
		}
	}
	r.value[r.self] = 1
	return r
}

// lookup returns p's index in the result, or -1.
func (r *Result) lookup(p peer.ID) int32 {
	if i, ok := r.snap.index[p]; ok {
		return i
	}
	if i, ok := r.extra[p]; ok {
		return i
	}
	return -1
}

// indexOrAdd gives self and anchors an index even when the graph has no
// opinion by or about them yet: a fresh node still trusts itself.
func (r *Result) indexOrAdd(p peer.ID) int32 {
	if i := r.lookup(p); i >= 0 {
		return i
	}
	if r.extra == nil {
		r.extra = make(map[peer.ID]int32)
		r.ids = append([]peer.ID(nil), r.snap.ids...)
	}
	i := int32(len(r.ids))
	r.ids = append(r.ids, p)
	r.extra[p] = i
	return i
}

// Score returns self's view of p; the zero Score for a peer it knows
// nothing about.
func (r *Result) Score(p peer.ID) Score {
	i := r.lookup(p)
	if i < 0 {
		return Score{}
	}
	return r.score(i)
}

func (r *Result) score(i int32) Score {
	return Score{
		Value:    r.value[i],
		Positive: r.trust[i],
		Negative: r.neg[i],
		Evidence: int(r.evidence[i]),
	}
}

// Scores returns every peer with evidence or trust: self, anchors, and
// every peer that trusted raters have rated.
func (r *Result) Scores() map[peer.ID]Score {
	out := make(map[peer.ID]Score)
	for i, p := range r.ids {
		if r.trust[i] > 0 || r.evidence[i] > 0 || r.neg[i] > 0 || r.anchor[int32(i)] != 0 {
			out[p] = r.score(int32(i))
		}
	}
	return out
}

// Iterations returns how many iterations Compute ran.
func (r *Result) Iterations() int { return r.iterations }

// Converged reports whether the last iteration moved less than Epsilon
// (otherwise MaxIterations stopped it).
func (r *Result) Converged() bool { return r.converged }

// Smoothing returns the mass m in Value = (P-N)/(P+N+m).
func (r *Result) Smoothing() float64 { return r.smoothing }
