package peerctl_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/peerctl/client"
	"github.com/pullnet/pullnet/resource"
)

func TestWantCommands(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	b := &controltest.Backend{NetworkWants: []node.WantInfo{
		{ID: idA, Owner: controltest.PeerID2, Query: "kind:compute tag:gpu", Description: "training", Created: now, Expires: now.Add(time.Hour)},
		{ID: idB, Owner: controltest.PeerID3, Query: "kind:dataset tag:weather", Created: now, Expires: now.Add(time.Hour)},
	}}
	d := startDaemon(t, b)

	out := d.ok("want", "kind:compute", "tag:gpu", "--desc", "two GPUs", "--expires", "2d")
	if !strings.HasPrefix(out, "want ") || !strings.Contains(out, " published, expires ") {
		t.Fatalf("want output: %q", out)
	}
	var mine []client.Want
	if err := json.Unmarshal([]byte(d.ok("wants", "--mine", "-o", "json")), &mine); err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 || mine[0].Query != "kind:compute tag:gpu" || mine[0].Description != "two GPUs" ||
		mine[0].Expires.Sub(mine[0].Created) != 48*time.Hour {
		t.Fatalf("wants --mine: %+v", mine)
	}
	b.AddWantMatch(mine[0].ID, resource.Resource{ID: idC, Kind: "compute", Name: "GPU box", Owner: controltest.PeerID2.String()})
	if out := d.ok("wants", "--mine", "--no-trunc"); !strings.Contains(out, mine[0].ID+" matched by "+idC+"  compute  GPU box") {
		t.Fatalf("wants --mine text:\n%s", out)
	}

	if out := d.ok("wants", "tag:gpu", "--no-trunc"); !strings.Contains(out, idA) || strings.Contains(out, idB) {
		t.Fatalf("wants tag:gpu:\n%s", out)
	}
	if out := d.ok("wants"); !strings.Contains(out, "training") {
		t.Fatalf("wants:\n%s", out)
	}

	for _, args := range [][]string{
		{"want"},
		{"want", "tag:gpu", "--expires", "soon"},
		{"want", "os!=windows"},
		{"wants", "--mine", "tag:gpu"},
		{"unwant", "nope"},
	} {
		if r := d.run(args...); r.code == 0 {
			t.Errorf("peerctl %s succeeded", strings.Join(args, " "))
		}
	}
	if out := d.ok("unwant", mine[0].ID); !strings.Contains(out, "withdrew want") {
		t.Fatalf("unwant: %q", out)
	}
	if out := d.ok("wants", "--mine"); out != "you have no open wants\n" {
		t.Fatalf("wants --mine after unwant: %q", out)
	}
}
