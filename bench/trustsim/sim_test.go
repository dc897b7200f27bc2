package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// tiny is a configuration small enough for go test -race: it checks the
// code paths and the direction of the result, not the report's figures.
func tiny() config {
	c := defaults()
	c.Nodes, c.Sybils = 80, 20
	c.Rounds, c.Warmup = 16, 6
	c.Results = 8
	return c
}

func TestTinySimulation(t *testing.T) {
	base := tiny()
	rep := run(base, []byte("ABCD"), []float64{0.3}, 2)
	for _, m := range rep.Models {
		c := rep.Cells[m][0]
		if c.Trust.Interactions == 0 || c.Random.Interactions == 0 {
			t.Fatalf("%c: no interactions counted: %+v", m, c)
		}
		if c.Trust.Share() >= c.Random.Share() {
			t.Errorf("%c: trust ranking %.3f, random %.3f: trust should do better", m, c.Trust.Share(), c.Random.Share())
		}
		if c.Trust.Computes == 0 || c.Trust.MaxIter >= 10 || c.Trust.Unconverged > 0 {
			t.Errorf("%c: %d computations, max %d iterations, %d not converged", m, c.Trust.Computes, c.Trust.MaxIter, c.Trust.Unconverged)
		}
	}

	var md, svg bytes.Buffer
	rep.writeMarkdown(&md, base)
	if !strings.Contains(md.String(), "| C Sybil swarm | 30.0 % |") {
		t.Errorf("markdown table lacks model C's row:\n%s", md.String())
	}
	if err := rep.writeSVG(&svg, base); err != nil {
		t.Fatal(err)
	}
	if s := svg.String(); !strings.HasPrefix(s, "<svg") || !strings.HasSuffix(s, "</svg>\n") || strings.Count(s, "<polyline") != 4*2+4 {
		t.Errorf("SVG malformed or missing lines (%d polylines)", strings.Count(s, "<polyline"))
	}
}

func TestSimulationIsReproducible(t *testing.T) {
	c := tiny()
	c.Model, c.Fraction, c.Trust = 'C', 0.3, true
	a, b := simulate(c), simulate(c)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different outcomes:\n%+v\n%+v", a, b)
	}
	c.Seed++
	if d := simulate(c); reflect.DeepEqual(a.PerRound, d.PerRound) {
		t.Errorf("another seed gave the very same rounds")
	}
}
