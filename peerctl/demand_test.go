package peerctl_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/peerctl"
	"github.com/pullnet/pullnet/peerctl/client"
	"github.com/pullnet/pullnet/resource"
)

const (
	idA = "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"
	idB = "bafkreibbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"
	idC = "bafkreicccccccccccccccccccccccccccccccccccccccccccccccccccc3"
	idX = "bafkreixxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx9"
)

func lineageBackend() *controltest.Backend {
	return &controltest.Backend{Network: []node.Result{
		{Resource: resource.Resource{ID: idA, Kind: "dataset", Name: "raw crawl"}, Provider: controltest.PeerID2},
		{Resource: resource.Resource{ID: idB, Kind: "dataset", Name: "clean corpus", DerivedFrom: []string{idA, idX}}, Provider: controltest.PeerID3},
		{Resource: resource.Resource{ID: idC, Kind: "model", Name: "fine-tune", DerivedFrom: []string{idB}}, Provider: controltest.PeerID},
	}}
}

func TestLineageText(t *testing.T) {
	d := startDaemon(t, lineageBackend())
	out := d.ok("lineage", idB)
	want := "bafk…bbbbb2  dataset  clean corpus  (12D3…CVe2Xo)\n" +
		"  ↑ bafk…aaaaa1  dataset  raw crawl  (12D3…c298L3)\n" +
		"  ↑ bafk…xxxxx9  (missing: no provider answered)\n" +
		"  ↓ bafk…ccccc3  model  fine-tune  (12D3…9HyQ6X)\n"
	if out != want {
		t.Fatalf("lineage text:\n%s\nwant:\n%s", out, want)
	}
	// Derivatives of derivatives are indented one more level.
	out = d.ok("lineage", idA, "--no-trunc")
	if !strings.Contains(out, "\n  ↓ "+idB+"  dataset  clean corpus") || !strings.Contains(out, "\n    ↓ "+idC+"  model  fine-tune") {
		t.Fatalf("lineage of a:\n%s", out)
	}
	if out := d.ok("lineage", idA, "--depth", "1", "--no-trunc"); strings.Contains(out, idC) {
		t.Fatalf("depth 1 went two levels:\n%s", out)
	}
}

func TestLineageJSON(t *testing.T) {
	d := startDaemon(t, lineageBackend())
	var root struct {
		Resource struct {
			ID          string   `json:"id"`
			DerivedFrom []string `json:"derived_from"`
		} `json:"resource"`
		Provider string `json:"provider"`
		Sources  []struct {
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
			Missing bool `json:"missing"`
		} `json:"sources"`
		Derivatives []struct {
			Resource struct {
				Name string `json:"name"`
			} `json:"resource"`
		} `json:"derivatives"`
	}
	out := d.ok("lineage", idB, "-o", "json")
	if err := json.Unmarshal([]byte(out), &root); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if root.Resource.ID != idB || root.Provider != controltest.PeerID3.String() || len(root.Sources) != 2 ||
		root.Sources[0].Resource.ID != idA || !root.Sources[1].Missing || len(root.Derivatives) != 1 || root.Derivatives[0].Resource.Name != "fine-tune" {
		t.Fatalf("lineage JSON: %s", out)
	}
}

func TestLineageErrors(t *testing.T) {
	d := startDaemon(t, lineageBackend())
	if r := d.run("lineage"); r.code != peerctl.ExitError || !strings.Contains(r.stderr, "missing the resource ID") {
		t.Fatalf("no ID: %+v", r)
	}
	if r := d.run("lineage", idA, "--depth", "11"); r.code != peerctl.ExitError || !strings.Contains(r.stderr, "--depth 11") {
		t.Fatalf("depth 11: %+v", r)
	}
	if r := d.run("lineage", "bafknothere"); r.code != peerctl.ExitError || !strings.Contains(r.stderr, "bafknothere") {
		t.Fatalf("unknown resource: %+v", r)
	}
}

// demandBackend records the window Demand is asked for.
type demandBackend struct {
	controltest.Backend
	since chan time.Duration
}

func (b *demandBackend) Demand(since time.Duration) node.DemandReport {
	b.since <- since
	return b.Backend.Demand(since)
}

func newDemandBackend() *demandBackend {
	return &demandBackend{since: make(chan time.Duration, 1), Backend: controltest.Backend{DemandReport: node.DemandReport{
		Since: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), FindsRun: 5, FindsUnmet: 2, FindsServed: 4, ConnectsRequested: 2, ConnectsGranted: 1,
		TopServedTerms: []node.TermCount{{Term: "tag:gpu", Count: 3, Results: 3}, {Term: "kind:compute", Count: 1, Results: 1}},
		TopRunTerms:    []node.TermCount{{Term: "tag:gpu", Count: 3, Results: 3}, {Term: "tag:nothing", Count: 2}},
		Unmet:          []node.TermCount{{Term: "tag:nothing", Count: 2}},
		Resources:      []node.ResourceDemand{{ID: idA, Name: "GPU box", Found: 4, Requested: 2, Granted: 1}},
	}}}
}

func TestDemandText(t *testing.T) {
	b := newDemandBackend()
	dd := startDaemonWith(t, b)
	out := dd.ok("demand", "--since", "24h")
	if got := <-b.since; got != 24*time.Hour {
		t.Fatalf("asked for the last %v", got)
	}
	for _, want := range []string{
		"(last 24h)",
		"finds run       5 (2 unmet, 40%)",
		"finds served    4",
		"connects        2 requested, 1 granted",
		"Top terms others asked (finds served)\n  TERM          FINDS  RESULTS\n  tag:gpu       3      3\n  kind:compute  1      1\n",
		"Unmet demand (your finds that found nothing)\n  QUERY        FINDS\n  tag:nothing  2\n",
		"  bafk…aaaaa1  GPU box  4      2          1        0",
		"Conversion: found 4 → requested 2 (50%) → granted 1 (50%)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demand output lacks %q:\n%s", want, out)
		}
	}
	dd.ok("demand", "--since", "7d")
	if got := <-b.since; got != 7*24*time.Hour {
		t.Fatalf("--since 7d asked for %v", got)
	}
	dd.ok("demand")
	if got := <-b.since; got != 0 {
		t.Fatalf("no --since asked for %v", got)
	}
	if r := dd.run("demand", "--since", "yesterday"); r.code != peerctl.ExitError || !strings.Contains(r.stderr, "--since") {
		t.Fatalf("bad --since: %+v", r)
	}
}

func TestDemandJSON(t *testing.T) {
	b := newDemandBackend()
	d := startDaemonWith(t, b)
	var got map[string]any
	out := d.ok("demand", "-o", "json")
	<-b.since
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got["finds_run"] != 5.0 || got["finds_unmet"] != 2.0 || got["finds_served"] != 4.0 || got["connects_granted"] != 1.0 {
		t.Fatalf("demand JSON: %s", out)
	}
	if unmet := got["unmet"].([]any); len(unmet) != 1 || unmet[0].(map[string]any)["term"] != "tag:nothing" {
		t.Fatalf("demand JSON unmet: %s", out)
	}
}

// startDaemonWith is startDaemon over any backend.
func startDaemonWith(t *testing.T, b control.Backend) *daemon {
	t.Helper()
	dir := shortTempDir(t)
	controltest.StartAt(t, client.SocketPath(dir), b, control.Options{DataDir: dir})
	return &daemon{t: t, dir: dir}
}
