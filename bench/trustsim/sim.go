package main

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/trust"
)

// config is one simulation run: one threat model, one malicious fraction,
// one selection policy.
type config struct {
	Model    byte    // 'A'..'D', see models
	Fraction float64 // share of providers that are malicious
	Trust    bool    // rank by trust (else pick uniformly among results)

	Seed          uint64
	Nodes         int     // consumers + providers (Sybils come on top)
	ProviderShare float64 // share of Nodes that provide the resource class
	Sybils        int     // model C: the attacker's extra identities
	Rounds        int     // each consumer finds and interacts once per round
	Warmup        int     // rounds not counted
	Results       int     // providers returned by one find
	Recompute     int     // a consumer recomputes its trust every this many rounds
	Explore       float64 // chance to try an unknown result instead of the best
	Smear         float64 // per attacker identity and round: chance it buys a session from an honest provider to rate it -1
	Fabricate     int     // per attacker identity and round: fabricated +1 ratings inside the attack
	Params        trust.Params
}

var models = []struct {
	Key  byte
	Name string
}{
	{'A', "A individual"},
	{'B', "B collective"},
	{'C', "C Sybil swarm"},
	{'D', "D camouflage"},
}

// outcome is what a run measured after warm-up, plus convergence figures
// over all of its trust computations.
type outcome struct {
	Interactions int
	OnMalicious  int
	Computes     int
	MaxIter      int
	SumIter      int
	Unconverged  int
	// Share on malicious providers in each round, warm-up included.
	PerRound []float64
}

func (o outcome) Share() float64 {
	if o.Interactions == 0 {
		return 0
	}
	return float64(o.OnMalicious) / float64(o.Interactions)
}

// WholeShare is the share over every round, warm-up included.
func (o outcome) WholeShare() float64 {
	sum := 0.0
	for _, v := range o.PerRound {
		sum += v
	}
	return sum / float64(max(1, len(o.PerRound)))
}

func (o outcome) MeanIter() float64 {
	if o.Computes == 0 {
		return 0
	}
	return float64(o.SumIter) / float64(o.Computes)
}

// simulate runs one configuration. Everything random comes from one
// generator seeded by the seed and the configuration, so a run does not
// depend on which other runs happen or in what order.
func simulate(cfg config) outcome {
	frac := uint64(cfg.Fraction * 1000)
	policy := uint64(0)
	if cfg.Trust {
		policy = 1
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Model)<<32|frac<<8|policy))

	nProv := int(float64(cfg.Nodes)*cfg.ProviderShare + 0.5)
	nCons := cfg.Nodes - nProv
	nBad := int(float64(nProv)*cfg.Fraction + 0.5)

	consumers := make([]peer.ID, nCons)
	for i := range consumers {
		consumers[i] = peer.ID(fmt.Sprintf("c%04d", i))
	}
	providers := make([]peer.ID, nProv)
	for i := range providers {
		providers[i] = peer.ID(fmt.Sprintf("p%04d", i))
	}
	rng.Shuffle(len(providers), func(i, j int) { providers[i], providers[j] = providers[j], providers[i] })
	malicious := make(map[peer.ID]bool, nBad)
	for _, p := range providers[:nBad] {
		malicious[p] = true
	}
	honestProviders := providers[nBad:]

	// The identities the attacker controls and rates among: the
	// collective in B; the collective and the Sybil swarm in C.
	var attack []peer.ID
	switch cfg.Model {
	case 'B':
		attack = slices.Clone(providers[:nBad])
	case 'C':
		attack = slices.Clone(providers[:nBad])
		for i := range cfg.Sybils {
			attack = append(attack, peer.ID(fmt.Sprintf("s%04d", i)))
		}
	}

	g := trust.NewGraph()
	results := make([]*trust.Result, nCons)
	out := outcome{PerRound: make([]float64, cfg.Rounds)}
	found := make([]peer.ID, 0, cfg.Results)
	order := make([]int, nCons)
	for i := range order {
		order[i] = i
	}

	for round := range cfg.Rounds {
		// The attack's own ratings for this round. Fabricated sessions
		// cost the attacker nothing: it holds both ends. Smearing an
		// honest provider takes a real session with it, and the honest
		// provider then rates the attacker as the consumer it was (+1),
		// which is how an attacker earns a little real trust.
		if len(attack) > 1 {
			for _, a := range attack {
				for range cfg.Fabricate {
					b := attack[rng.IntN(len(attack))]
					g.Add(a, b, 1, 1)
				}
				if len(honestProviders) > 0 && rng.Float64() < cfg.Smear {
					h := honestProviders[rng.IntN(len(honestProviders))]
					g.Add(a, h, -1, 1)
					g.Add(h, a, 1, 1)
				}
			}
		}

		// Consumers whose turn it is recompute from the ratings every
		// node has by now (gossip is assumed complete; the gossip
		// section of REPUTATION.md measures how fast it is).
		if cfg.Trust {
			var snap *trust.Snapshot
			for i, c := range consumers {
				if (round+i)%cfg.Recompute != 0 {
					continue
				}
				if snap == nil {
					snap = g.Snapshot()
				}
				r := snap.Compute(c, nil, cfg.Params)
				results[i] = r
				out.Computes++
				out.SumIter += r.Iterations()
				out.MaxIter = max(out.MaxIter, r.Iterations())
				if !r.Converged() {
					out.Unconverged++
				}
			}
		}

		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		roundN, roundBad := 0, 0
		for _, i := range order {
			c := consumers[i]
			found = found[:0]
			for _, k := range rng.Perm(nProv)[:min(cfg.Results, nProv)] {
				found = append(found, providers[k])
			}
			p := found[rng.IntN(len(found))]
			if cfg.Trust && results[i] != nil {
				p = pick(rng, results[i], found, cfg.Explore)
			}
			good := !malicious[p] || cfg.Model == 'D' && rng.Float64() < 0.5
			score := 1.0
			if !good {
				score = -1
			}
			g.Add(c, p, score, 1)
			// Every provider rates the consumers it served +1: they
			// paid and behaved. Malicious ones too, to look normal.
			g.Add(p, c, 1, 1)
			roundN++
			if malicious[p] {
				roundBad++
			}
		}
		out.PerRound[round] = float64(roundBad) / float64(max(1, roundN))
		if round >= cfg.Warmup {
			out.Interactions += roundN
			out.OnMalicious += roundBad
		}
	}
	return out
}

// pick is the consumer's choice among find results, all equally relevant:
// the best trust.Factor, ties broken at random; with probability explore,
// a result the consumer has no evidence about at all instead, if any, so
// that new providers get tried.
func pick(rng *rand.Rand, r *trust.Result, found []peer.ID, explore float64) peer.ID {
	if explore > 0 && rng.Float64() < explore {
		var unknown []peer.ID
		for _, p := range found {
			if r.Score(p) == (trust.Score{}) {
				unknown = append(unknown, p)
			}
		}
		if len(unknown) > 0 {
			return unknown[rng.IntN(len(unknown))]
		}
	}
	best, ties := -1.0, 0
	var choice peer.ID
	for _, p := range found {
		f := 1.0 * trust.Factor(r.Score(p).Value) // relevance × trust; relevance is 1
		switch {
		case f > best:
			best, ties, choice = f, 1, p
		case f == best:
			// Reservoir sampling: each tied result equally likely.
			ties++
			if rng.IntN(ties) == 0 {
				choice = p
			}
		}
	}
	return choice
}
