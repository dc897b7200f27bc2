package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type doctorReport struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
		Fix    string `json:"fix"`
	} `json:"checks"`
}

// doctor runs peerctl doctor -o json and decodes its report.
func (d *daemon) doctor() (doctorReport, int) {
	d.t.Helper()
	out, code := d.peerctl("doctor", "--timeout", "10s", "-o", "json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		d.t.Fatalf("peerctl doctor: exit %d: %v\n%s", code, err, out)
	}
	return rep, code
}

// findable returns the report's check of resource id.
func (r doctorReport) findable(t *testing.T, id string) (ok bool, detail, fix string) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == "findable "+id {
			return c.OK, c.Detail, c.Fix
		}
	}
	t.Fatalf("no findable check for %s in %+v", id, r)
	return false, "", ""
}

// TestDoctor: a daemon whose records the network holds is healthy; a
// daemon alone, and one whose records the network has lost, are not
// findable, and peerctl doctor says so with exit status 1.
func TestDoctor(t *testing.T) {
	root := t.TempDir()
	holder := startDaemon(t, filepath.Join(root, "holder"))
	prov := startDaemon(t, filepath.Join(root, "prov"), holder.loopbackAddr())
	var adv struct {
		ID string `json:"id"`
	}
	prov.mustJSON(&adv, "advertise", "--kind", "dataset", "--name", "weather", "--tag", "climate")

	// Healthy once the announcement has gone out.
	poll(t, 30*time.Second, "doctor to pass", func() bool {
		_, code := prov.doctor()
		return code == 0
	})
	out, code := prov.peerctl("doctor")
	if code != 0 || !strings.Contains(out, "ok    findable") || !strings.Contains(out, "held by 1 of 1 closest peers") {
		t.Fatalf("healthy: exit %d:\n%s", code, out)
	}
	t.Logf("healthy:\n%s", out)

	// Alone, with nobody to hold its records.
	alone := startDaemon(t, filepath.Join(root, "alone"))
	var lone struct {
		ID string `json:"id"`
	}
	alone.mustJSON(&lone, "advertise", "--kind", "dataset", "--name", "rainfall")
	out, code = alone.peerctl("doctor")
	if code != 1 || !strings.Contains(out, "FAIL  findable") || !strings.Contains(out, "FAIL  peers") || !strings.Contains(out, "fix: ") {
		t.Fatalf("alone: exit %d:\n%s", code, out)
	}
	t.Logf("alone:\n%s", out)
	rep, _ := alone.doctor()
	if ok, _, fix := rep.findable(t, lone.ID); ok || rep.OK || fix == "" {
		t.Errorf("alone: %+v", rep)
	}

	// The peer that held the records goes; a fresh one, which holds
	// nothing, takes its place: the records are gone from the DHT.
	holder.stop()
	fresh := startDaemon(t, filepath.Join(root, "fresh"), prov.loopbackAddr())
	_ = fresh
	poll(t, 30*time.Second, "doctor to see the records gone", func() bool {
		rep, code := prov.doctor()
		ok, detail, fix := rep.findable(t, adv.ID)
		return code == 1 && !ok && strings.Contains(detail, "held by 0 of 1 closest peers") && strings.Contains(fix, "reprovide")
	})
	out, _ = prov.peerctl("doctor")
	t.Logf("records lost:\n%s", out)
}
