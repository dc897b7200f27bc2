package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pullnet/pullnet/internal/testswarm"
	"github.com/pullnet/pullnet/node"
)

// doctorCheck runs Doctor on n and returns the report and its check named name.
func doctorCheck(t *testing.T, n *node.Node, name string) (node.DoctorReport, node.DoctorCheck) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep := n.Doctor(ctx)
	for _, c := range rep.Checks {
		if c.Name == name {
			return rep, c
		}
	}
	t.Fatalf("doctor has no check %q: %+v", name, rep.Checks)
	return rep, node.DoctorCheck{}
}

func TestDoctorFindableThenRecordsLost(t *testing.T) {
	s := testswarm.New(t, 6, testswarm.Options{})
	prov := s.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := prov.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.WaitAnnounced(ctx, r.ID); err != nil {
		t.Fatal(err)
	}

	rep, c := doctorCheck(t, prov, "findable "+r.ID)
	if !c.OK || !strings.Contains(c.Detail, "held by") || !strings.Contains(c.Detail, "next reprovide in") || c.Fix != "" {
		t.Fatalf("findable after announcing: %+v", c)
	}
	if !rep.OK {
		t.Fatalf("healthy node: doctor not OK: %+v", rep.Checks)
	}
	_, peers := doctorCheck(t, prov, "peers")
	if !peers.OK || !strings.Contains(peers.Detail, "routing table") {
		t.Fatalf("peers: %+v", peers)
	}

	// Every peer that held the records goes away, and fresh peers, which
	// hold nothing, take their place: the provider's records are gone
	// from the DHT until it announces again.
	for _, n := range s.Nodes[1:] {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		key, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := s.Net.AddPeer(key, testswarm.Addr(100+i))
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := node.New(context.Background(), node.Config{Host: h, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = fresh.Close() })
		if _, err := s.Net.LinkPeers(prov.ID(), fresh.ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Net.ConnectPeers(prov.ID(), fresh.ID()); err != nil {
			t.Fatal(err)
		}
	}
	var lost node.DoctorCheck
	testswarm.WaitFor(t, 60*time.Second, "doctor to ask the fresh peers", func() bool {
		rep, lost = doctorCheck(t, prov, "findable "+r.ID)
		return !lost.OK && strings.Contains(lost.Detail, "held by 0 of") && !strings.Contains(lost.Detail, "held by 0 of 0")
	})
	for _, c := range rep.Checks {
		t.Logf("%v %s: %s — %s", c.OK, c.Name, c.Detail, c.Fix)
	}
	if rep.OK || lost.Fix == "" || !strings.Contains(lost.Fix, "reprovide") {
		t.Fatalf("records lost: report OK=%v, check %+v", rep.OK, lost)
	}
}

func TestDoctorPartitionedUntilAnnounced(t *testing.T) {
	s := testswarm.New(t, 3, testswarm.Options{})
	prov := s.Nodes[0]
	for _, n := range s.Nodes[1:] { // the DHT may have met node 2 already
		if err := s.Net.UnlinkPeers(prov.ID(), n.ID()); err != nil {
			t.Fatal(err)
		}
		_ = s.Net.DisconnectPeers(prov.ID(), n.ID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := prov.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}

	rep, c := doctorCheck(t, prov, "findable "+r.ID)
	if rep.OK || c.OK || c.Fix == "" {
		t.Fatalf("partitioned: report OK=%v, check %+v", rep.OK, c)
	}
	_, peers := doctorCheck(t, prov, "peers")
	if peers.OK || peers.Fix == "" {
		t.Fatalf("partitioned: peers %+v", peers)
	}

	// Back on the network, the provider's retry announces the resource.
	for _, n := range s.Nodes[1:] {
		if _, err := s.Net.LinkPeers(prov.ID(), n.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Net.ConnectPeers(prov.ID(), s.Nodes[1].ID()); err != nil {
		t.Fatal(err)
	}
	if err := prov.WaitAnnounced(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	testswarm.WaitFor(t, 30*time.Second, "doctor to find the resource held", func() bool {
		rep, c = doctorCheck(t, prov, "findable "+r.ID)
		return c.OK
	})
	if !strings.Contains(c.Detail, "announced") {
		t.Fatalf("after announcing: %+v", c)
	}
}
