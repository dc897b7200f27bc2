// Command trustsim simulates pullnet's reputation under attack: honest
// consumers find a resource class offered by many providers, some of them
// malicious, rank the results by relevance × trust.Factor of their own
// trust.Compute (the code a node runs), pick, interact and rate honestly.
// It reports, per threat model and malicious fraction, the share of honest
// consumers' interactions that land on malicious providers after warm-up,
// with trust ranking and with picking at random among the results.
//
//	go run ./bench/trustsim [-seed 1] [-nodes 500] [-plot docs/reputation-sim.svg]
//
// Everything is in process and seeded; the same flags give the same table.
// REPUTATION.md explains the model and holds the figures.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/trust"
)

func main() {
	base := defaults()
	flag.Uint64Var(&base.Seed, "seed", base.Seed, "random seed")
	flag.IntVar(&base.Nodes, "nodes", base.Nodes, "consumers + providers (model C's Sybils come on top)")
	flag.Float64Var(&base.ProviderShare, "providers", base.ProviderShare, "share of nodes that provide the resource class")
	flag.IntVar(&base.Sybils, "sybils", base.Sybils, "model C: the attacker's extra identities")
	flag.IntVar(&base.Rounds, "rounds", base.Rounds, "rounds; each consumer finds and interacts once per round")
	flag.IntVar(&base.Warmup, "warmup", base.Warmup, "rounds not counted")
	flag.IntVar(&base.Results, "results", base.Results, "providers returned by one find")
	flag.IntVar(&base.Recompute, "recompute", base.Recompute, "a consumer recomputes its trust every this many rounds")
	flag.Float64Var(&base.Explore, "explore", base.Explore, "chance a consumer tries an unknown result instead of the best")
	flag.Float64Var(&base.Smear, "smear", base.Smear, "per attacker identity and round: chance it buys a real session from an honest provider to rate it -1")
	flag.IntVar(&base.Fabricate, "fabricate", base.Fabricate, "per attacker identity and round: fabricated +1 ratings inside the attack")
	flag.Float64Var(&base.Params.Alpha, "alpha", 0, "trust.Params.Alpha (0: the package default)")
	flag.Float64Var(&base.Params.Epsilon, "epsilon", 0, "trust.Params.Epsilon (0: the package default)")
	fracs := flag.String("fractions", "0.1,0.3,0.5,0.7", "malicious shares of providers")
	only := flag.String("models", "ABCD", "threat models to run")
	quick := flag.Bool("quick", false, "a smaller, faster run (fewer rounds and fractions) to try changes")
	plot := flag.String("plot", "", "write the SVG plot to this file")
	doSweep := flag.Bool("sweep", true, "also run the attack intensity sweep (models B and C)")
	bench := flag.Bool("bench10k", true, "also time one trust.Compute over 10,000 peers with 20 opinions each")
	flag.Parse()

	if *quick {
		base.Rounds, base.Warmup = 30, 10
		*doSweep = *doSweep && isSet("sweep")
		if !isSet("fractions") {
			*fracs = "0.3,0.7"
		}
	}
	var fractions []float64
	for _, f := range strings.Split(*fracs, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v < 0 || v >= 1 {
			log.Fatalf("bad fraction %q", f)
		}
		fractions = append(fractions, v)
	}
	var ms []byte
	for _, m := range models {
		if strings.ContainsRune(*only, rune(m.Key)) {
			ms = append(ms, m.Key)
		}
	}
	start := time.Now()
	rep := run(base, ms, fractions, runtime.GOMAXPROCS(0))

	rep.writeMarkdown(os.Stdout, base)
	if *doSweep {
		cfgs, outs := sweep(base, runtime.GOMAXPROCS(0))
		writeSweep(os.Stdout, cfgs, outs)
	}
	if *bench {
		d, it := time10k()
		fmt.Printf("\nOne trust.Compute over 10,000 peers (20 opinions each, snapshot included): %v median of 11, %d iterations.\n", d.Round(100*time.Microsecond), it)
	}
	fmt.Printf("\nRun time %v on %d CPUs.\n", time.Since(start).Round(time.Second), runtime.NumCPU())
	if *plot != "" {
		f, err := os.Create(*plot)
		if err != nil {
			log.Fatal(err)
		}
		if err := rep.writeSVG(f, base); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// defaults is the configuration REPUTATION.md reports.
func defaults() config {
	return config{
		Seed:          1,
		Nodes:         500,
		ProviderShare: 0.4,
		Sybils:        200,
		Rounds:        60,
		Warmup:        20,
		Results:       20,
		Recompute:     3,
		Explore:       0.05,
		Smear:         0.1,
		Fabricate:     2,
	}
}

// cell is one (model, fraction): the trust-ranked and the random run.
type cell struct {
	Model    byte
	Fraction float64
	Trust    outcome
	Random   outcome
}

type report struct {
	Fractions []float64
	Models    []byte
	Cells     map[byte][]cell // by model, in Fractions order
}

// run simulates every (model, fraction, policy) on workers goroutines.
func run(base config, ms []byte, fractions []float64, workers int) report {
	rep := report{Fractions: fractions, Models: ms, Cells: map[byte][]cell{}}
	var cfgs []config
	// Trust runs are the slow ones: queue them first.
	for _, policy := range []bool{true, false} {
		for _, m := range ms {
			for _, f := range fractions {
				cfg := base
				cfg.Model, cfg.Fraction, cfg.Trust = m, f, policy
				cfgs = append(cfgs, cfg)
			}
		}
	}
	outs := runAll(cfgs, workers)
	for _, m := range ms {
		rep.Cells[m] = make([]cell, len(fractions))
		for fi, f := range fractions {
			rep.Cells[m][fi] = cell{Model: m, Fraction: f}
		}
	}
	for k, cfg := range cfgs {
		fi := slices.Index(fractions, cfg.Fraction)
		if cfg.Trust {
			rep.Cells[cfg.Model][fi].Trust = outs[k]
		} else {
			rep.Cells[cfg.Model][fi].Random = outs[k]
		}
	}
	return rep
}

// runAll simulates cfgs on workers goroutines. Each run has its own
// generator, so the outcomes do not depend on the scheduling.
func runAll(cfgs []config, workers int) []outcome {
	outs := make([]outcome, len(cfgs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(func() {
			for k := range next {
				outs[k] = simulate(cfgs[k])
			}
		})
	}
	for k := range cfgs {
		next <- k
	}
	close(next)
	wg.Wait()
	return outs
}

// sweepSmears are the attack intensities the sweep tries.
var sweepSmears = []float64{0, 0.1, 0.3, 1}

// sweep runs models B and C at 30 % and 70 % malicious with the attack
// buying more and more real sessions from honest providers, with plain
// EigenTrust and with this package's two extensions, to show where each
// breaks.
func sweep(base config, workers int) (cfgs []config, outs []outcome) {
	for _, m := range []byte("BC") {
		for _, f := range []float64{0.3, 0.7} {
			for _, smear := range sweepSmears {
				for _, plain := range []bool{true, false} {
					cfg := base
					cfg.Model, cfg.Fraction, cfg.Trust, cfg.Smear = m, f, true, smear
					cfg.Params.DisableGating, cfg.Params.DisableAgreement = plain, plain
					cfgs = append(cfgs, cfg)
				}
			}
		}
	}
	return cfgs, runAll(cfgs, workers)
}

func writeSweep(w io.Writer, cfgs []config, outs []outcome) {
	fmt.Fprintf(w, "\nAttack intensity sweep: share on malicious providers (trust ranking, rounds after warm-up) as each attacker identity buys real sessions from honest providers to smear them, earning their +1 as a consumer:\n\n")
	fmt.Fprintf(w, "| model | malicious | sessions bought per attacker identity per round | attacker sessions per honest consumer session | plain EigenTrust | with silencing + agreement |\n|---|---|---|---|---|---|\n")
	for k := 0; k+1 < len(cfgs); k += 2 {
		c := cfgs[k]
		nProv := int(float64(c.Nodes)*c.ProviderShare + 0.5)
		nCons := c.Nodes - nProv
		ids := int(float64(nProv)*c.Fraction + 0.5)
		if c.Model == 'C' {
			ids += c.Sybils
		}
		ratio := c.Smear * float64(ids) / float64(nCons)
		fmt.Fprintf(w, "| %s | %s | %g | %.2f | %s | %s |\n", modelName(c.Model), pct(c.Fraction), c.Smear, ratio, pct(outs[k].Share()), pct(outs[k+1].Share()))
	}
}

// target returns issue 6's ceiling for a cell, or -1 if it sets none.
func target(m byte, f float64) float64 {
	switch {
	case f == 0.3 && m == 'D':
		return 0.15
	case f == 0.3:
		return 0.05
	case f == 0.7 && (m == 'A' || m == 'B'):
		return 0.10
	}
	return -1
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + " %" }

func (rep report) writeMarkdown(w io.Writer, base config) {
	fmt.Fprintf(w, "Share of honest consumers' interactions on malicious providers, rounds %d–%d (seed %d, %d nodes, %d%% providers, %d results per find):\n\n",
		base.Warmup+1, base.Rounds, base.Seed, base.Nodes, int(100*base.ProviderShare+0.5), base.Results)
	fmt.Fprintf(w, "| model | malicious | random pick | trust ranking | target | met | trust, whole run |\n|---|---|---|---|---|---|---|\n")
	maxIter, sumIter, computes, unconv := 0, 0, 0, 0
	for _, m := range rep.Models {
		for _, c := range rep.Cells[m] {
			t, met := "–", ""
			if tg := target(m, c.Fraction); tg >= 0 {
				t = "≤ " + pct(tg)
				met = "yes"
				if c.Trust.Share() > tg {
					met = "**no**"
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", modelName(m), pct(c.Fraction), pct(c.Random.Share()), pct(c.Trust.Share()), t, met, pct(c.Trust.WholeShare()))
			maxIter = max(maxIter, c.Trust.MaxIter)
			sumIter += c.Trust.SumIter
			computes += c.Trust.Computes
			unconv += c.Trust.Unconverged
		}
	}
	if computes > 0 {
		fmt.Fprintf(w, "\nTrust computations: %d, iterations mean %.2f, max %d, not converged %d.\n",
			computes, float64(sumIter)/float64(computes), maxIter, unconv)
	}
}

func modelName(m byte) string {
	for _, x := range models {
		if x.Key == m {
			return x.Name
		}
	}
	return string(m)
}

// time10k times one Compute, snapshot included, over a random graph of
// 10,000 peers with 20 opinions each (80 % positive), the median of 11.
func time10k() (time.Duration, int) {
	const n = 10000
	rng := rand.New(rand.NewPCG(10000, 20))
	ids := make([]peer.ID, n)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprintf("12D3KooWpeer%08d", i))
	}
	g := trust.NewGraph()
	for _, r := range ids {
		for range 20 {
			s := 1.0
			if rng.Float64() < 0.2 {
				s = -1
			}
			g.Add(r, ids[rng.IntN(n)], s, 1)
		}
	}
	var ds []time.Duration
	it := 0
	for range 11 {
		t0 := time.Now()
		r := trust.Compute(g, ids[0], nil, trust.Params{})
		ds = append(ds, time.Since(t0))
		it = r.Iterations()
	}
	slices.Sort(ds)
	return ds[len(ds)/2], it
}
