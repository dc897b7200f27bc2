package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chainOf3 starts three daemons, each bootstrapping from the one before.
func chainOf3(t *testing.T) []*daemon {
	t.Helper()
	root := t.TempDir()
	var ds []*daemon
	for i := range 3 {
		var boot []string
		if i > 0 {
			boot = []string{ds[i-1].loopbackAddr()}
		}
		ds = append(ds, startDaemon(t, filepath.Join(root, fmt.Sprintf("d%d", i)), boot...))
	}
	return ds
}

type lineageNode struct {
	Resource struct {
		ID          string   `json:"id"`
		Name        string   `json:"name"`
		DerivedFrom []string `json:"derived_from"`
	} `json:"resource"`
	Provider    string        `json:"provider"`
	Missing     bool          `json:"missing"`
	Sources     []lineageNode `json:"sources"`
	Derivatives []lineageNode `json:"derivatives"`
}

// lineage runs peerctl lineage -o json; ok is false when it failed.
func (d *daemon) lineage(id string) (lineageNode, bool) {
	var ln lineageNode
	out, code := d.peerctl("lineage", id, "--timeout", "10s", "-o", "json")
	if code != 0 {
		return ln, false
	}
	if err := json.Unmarshal([]byte(out), &ln); err != nil {
		d.t.Fatalf("lineage output: %v\n%s", err, out)
	}
	return ln, true
}

// TestLineageAcrossDaemons advertises a lineage of three resources on three
// daemons (c derives from b, b from a) and walks it up from c and down from
// a, each from a daemon that provides neither end.
func TestLineageAcrossDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons")
	}
	ds := chainOf3(t)
	var a, b, c struct {
		ID string `json:"id"`
	}
	ds[0].mustJSON(&a, "advertise", "--kind", "dataset", "--name", "raw crawl")
	ds[1].mustJSON(&b, "advertise", "--kind", "dataset", "--name", "clean corpus", "--derived-from", a.ID)
	ds[2].mustJSON(&c, "advertise", "--kind", "model", "--name", "fine-tune", "--derived-from", b.ID)

	var up lineageNode
	poll(t, 90*time.Second, "the lineage of c to reach a", func() bool {
		ln, ok := ds[0].lineage(c.ID)
		up = ln
		return ok && len(ln.Sources) == 1 && !ln.Sources[0].Missing && len(ln.Sources[0].Sources) == 1 && !ln.Sources[0].Sources[0].Missing
	})
	if up.Resource.Name != "fine-tune" || up.Sources[0].Resource.ID != b.ID || up.Sources[0].Sources[0].Resource.ID != a.ID ||
		up.Sources[0].Sources[0].Resource.Name != "raw crawl" || len(up.Derivatives) != 0 {
		t.Fatalf("lineage of c: %+v", up)
	}

	var down lineageNode
	poll(t, 90*time.Second, "the lineage of a to reach c", func() bool {
		ln, ok := ds[2].lineage(a.ID)
		down = ln
		return ok && len(ln.Derivatives) == 1 && len(ln.Derivatives[0].Derivatives) == 1
	})
	if down.Derivatives[0].Resource.ID != b.ID || down.Derivatives[0].Derivatives[0].Resource.ID != c.ID || len(down.Sources) != 0 {
		t.Fatalf("lineage of a: %+v", down)
	}

	// From the middle, both ways at once, as a tree in text.
	out, code := ds[0].peerctl("lineage", b.ID, "--no-trunc")
	if code != 0 || !strings.Contains(out, "  ↑ "+a.ID+"  dataset  raw crawl") || !strings.Contains(out, "  ↓ "+c.ID+"  model  fine-tune") {
		t.Fatalf("lineage of b: exit %d\n%s", code, out)
	}
	// derived:ID is an ordinary find.
	if res, code := ds[1].find("derived:" + a.ID); code != 0 || !ids(res)[b.ID] || ids(res)[c.ID] {
		t.Fatalf("find derived:a: exit %d, %+v", code, res)
	}
}

type termCount struct {
	Term    string `json:"term"`
	Count   int64  `json:"count"`
	Results int64  `json:"results"`
}

type demandReport struct {
	FindsRun          int64       `json:"finds_run"`
	FindsUnmet        int64       `json:"finds_unmet"`
	FindsServed       int64       `json:"finds_served"`
	ConnectsRequested int64       `json:"connects_requested"`
	ConnectsGranted   int64       `json:"connects_granted"`
	TopServedTerms    []termCount `json:"top_served_terms"`
	TopRunTerms       []termCount `json:"top_run_terms"`
	Unmet             []termCount `json:"unmet"`
	Resources         []struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		Found     int64  `json:"found"`
		Requested int64  `json:"requested"`
		Granted   int64  `json:"granted"`
	} `json:"resources"`
}

func (r demandReport) term(list []termCount, term string) termCount {
	for _, c := range list {
		if c.Term == term {
			return c
		}
	}
	return termCount{}
}

// TestDemandCounts runs a scripted sequence of finds and a connect across
// three daemons and checks what the finder and the provider counted.
func TestDemandCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons")
	}
	ds := chainOf3(t)
	provider, finder := ds[0], ds[2]
	var box struct {
		ID string `json:"id"`
	}
	provider.mustJSON(&box, "advertise", "--kind", "compute", "--name", "GPU box", "--tag", "gpu")
	poll(t, 90*time.Second, "the finder to find the GPU box", func() bool {
		res, _ := finder.find("tag:gpu")
		return ids(res)[box.ID]
	})

	// The finds above, while the box was not yet findable, count too: the
	// script's counts are what it adds.
	var f0, p0 demandReport
	finder.mustJSON(&f0, "demand")
	provider.mustJSON(&p0, "demand")

	for range 3 {
		if res, code := finder.find("tag:gpu"); code != 0 || !ids(res)[box.ID] {
			t.Fatalf("find tag:gpu: exit %d, %+v", code, res)
		}
	}
	for range 2 {
		if res, code := finder.find("tag:nothing"); code != 1 || len(res) != 0 {
			t.Fatalf("find tag:nothing: exit %d, %+v", code, res)
		}
	}
	var grant struct {
		Granted bool `json:"granted"`
	}
	finder.mustJSON(&grant, "connect", box.ID)
	if !grant.Granted {
		t.Fatal("connect was declined")
	}

	var f1, p1 demandReport
	finder.mustJSON(&f1, "demand", "--since", "1h")
	if f1.FindsRun-f0.FindsRun != 5 || f1.FindsUnmet-f0.FindsUnmet != 2 {
		t.Fatalf("finder: finds run %d → %d, unmet %d → %d; want +5 and +2", f0.FindsRun, f1.FindsRun, f0.FindsUnmet, f1.FindsUnmet)
	}
	if u := f1.term(f1.Unmet, "tag:nothing"); u.Count != 2 {
		t.Fatalf("finder's unmet queries: %+v", f1.Unmet)
	}
	if got, was := f1.term(f1.TopRunTerms, "tag:gpu"), f0.term(f0.TopRunTerms, "tag:gpu"); got.Count-was.Count != 3 || got.Results-was.Results != 3 {
		t.Fatalf("finder's tag:gpu went from %+v to %+v", was, got)
	}

	provider.mustJSON(&p1, "demand", "--since", "24h")
	if p1.FindsServed-p0.FindsServed < 3 {
		t.Fatalf("provider: finds served %d → %d", p0.FindsServed, p1.FindsServed)
	}
	if got, was := p1.term(p1.TopServedTerms, "tag:gpu"), p0.term(p0.TopServedTerms, "tag:gpu"); got.Count-was.Count < 3 {
		t.Fatalf("provider's served tag:gpu went from %+v to %+v", was, got)
	}
	if p1.ConnectsRequested != 1 || p1.ConnectsGranted != 1 || len(p1.Resources) != 1 {
		t.Fatalf("provider's demand: %+v", p1)
	}
	if r := p1.Resources[0]; r.ID != box.ID || r.Name != "GPU box" || r.Found < 3 || r.Requested != 1 || r.Granted != 1 {
		t.Fatalf("provider's resource: %+v", r)
	}
	// No whole query of the finder's is kept by the provider: only terms.
	out, _ := provider.peerctl("demand", "-o", "json")
	if strings.Contains(out, "tag:nothing") {
		t.Fatalf("the provider knows of a query it never served: %s", out)
	}

	// The text report shows the conversion.
	out, code := provider.peerctl("demand")
	if code != 0 || !strings.Contains(out, "Conversion: found") || !strings.Contains(out, "→ requested 1") || !strings.Contains(out, "→ granted 1 (100%)") {
		t.Fatalf("demand text: exit %d\n%s", code, out)
	}

	// Counts survive a restart.
	var before demandReport
	finder.mustJSON(&before, "demand")
	finder.stop()
	finder = startDaemon(t, finder.data, ds[1].loopbackAddr())
	var f2 demandReport
	finder.mustJSON(&f2, "demand")
	if f2.FindsRun != before.FindsRun || f2.FindsUnmet != before.FindsUnmet || f2.term(f2.Unmet, "tag:nothing").Count != 2 {
		t.Fatalf("after a restart the finder counts %+v; before, %+v", f2, before)
	}
}
