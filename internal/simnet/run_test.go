package simnet

import (
	"context"
	"testing"
	"time"

	"github.com/pullnet/pullnet/node"
)

// TestShortRun drives a small network through the simulator's workload and
// checks only invariants: every find for a term some live provider has
// announced returns a result, no result comes from a departed provider or
// a withdrawn resource, and withdrawn resources stay gone. Timings are the
// simulator's business, not this test's.
func TestShortRun(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector slows the simulated network past its deadlines; CI runs this package without -race too (README)")
	}
	w := DefaultWorkload(50)
	w.Resources, w.Tags = 1, 2
	w.FindRate, w.FindTime, w.FindTimeout = 25, 2*time.Second, 20*time.Second
	w.RestTime, w.Probes, w.Withdraw = 0, 2, 0.2
	opts := Options{N: 50, Seed: 1, Latency: Latency{Min: 2 * time.Millisecond, Max: 20 * time.Millisecond}, DialRTTs: 1,
		ConnLow: 16, ConnHigh: 32, ConnGrace: 10 * time.Second,
		LocalTopics: true, NodeConfig: node.Config{NoAnnounce: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, opts, w, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Advertise.Failed > 0 {
		t.Errorf("%d of %d advertises failed", rep.Advertise.Failed, rep.Advertise.Resources)
	}
	if rep.Advertise.ProbesFound != rep.Advertise.Probes {
		t.Errorf("%d of %d freshly advertised resources were found", rep.Advertise.ProbesFound, rep.Advertise.Probes)
	}
	f := rep.Find
	if f.Finds == 0 || f.Success != 1 || f.RareOK != 1 {
		t.Errorf("finds: %d, success %.3f (rare terms %.3f), want every find with a live provider to succeed", f.Finds, f.Success, f.RareOK)
	}
	if f.Stale > 0 {
		t.Errorf("%d of %d results came from departed providers or withdrawn resources", f.Stale, f.Results)
	}
	if wr := rep.Withdraw; wr == nil || wr.Withdrawn == 0 || wr.Returned > 0 {
		t.Errorf("withdrawals: %+v, want some withdrawn and none returned", wr)
	}
}
