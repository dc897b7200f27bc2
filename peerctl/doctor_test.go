package peerctl_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

func TestDoctorHealthy(t *testing.T) {
	b := &controltest.Backend{Connected: []node.PeerInfo{{ID: controltest.PeerID2}}, Reach: "public"}
	r, err := b.Advertise(context.Background(), resource.Resource{Kind: "skill", Name: "go reviews"})
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, b)
	out := d.ok("doctor")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a line per check, got:\n%s", out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "ok  ") {
			t.Errorf("line %q: want ok", l)
		}
	}
	if !strings.Contains(out, "findable "+shortIDOf(r.ID)) || !strings.Contains(out, "1 connected, routing table 1") {
		t.Errorf("output:\n%s", out)
	}
	if out := d.ok("doctor", "--no-trunc"); !strings.Contains(out, "findable "+r.ID) {
		t.Errorf("--no-trunc output:\n%s", out)
	}
}

func TestDoctorProblems(t *testing.T) {
	b := &controltest.Backend{Reach: "private"}
	if _, err := b.Advertise(context.Background(), resource.Resource{Kind: "skill", Name: "go reviews"}); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, b)

	res := d.run("doctor")
	if res.code != 1 || res.stderr != "peerctl: doctor: 3 of 4 checks failed\n" {
		t.Fatalf("exit %d, stderr %q; want 1 and the count of failures", res.code, res.stderr)
	}
	for _, want := range []string{"FAIL  peers", "FAIL  reachability", "FAIL  findable", "ok    clock", "— fix: connect to the network"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}

	res = d.run("doctor", "-o", "json")
	if res.code != 1 {
		t.Fatalf("-o json: exit %d", res.code)
	}
	var rep struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
			Fix  string `json:"fix"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, res.stdout)
	}
	if rep.OK || len(rep.Checks) != 4 || rep.Checks[0].Name != "peers" || rep.Checks[0].OK || rep.Checks[0].Fix == "" {
		t.Errorf("json report %+v", rep)
	}

	if res := d.run("doctor", "--timeout", "0s"); res.code != 2 || !strings.Contains(res.stderr, "--timeout") {
		t.Errorf("--timeout 0s: exit %d, stderr %q", res.code, res.stderr)
	}
}
