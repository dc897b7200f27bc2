package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/testswarm"
	"github.com/pullnet/pullnet/node"
)

// TestRateGossipTrustRank: a consumer rates one of two equal providers −1;
// a third node that trusts the consumer hears the rating by gossip, ranks
// that provider below the other, and can leave it out with MinTrust.
func TestRateGossipTrustRank(t *testing.T) {
	s := testswarm.New(t, 4, testswarm.Options{Topology: testswarm.FullMesh})
	bad, good, cons, obs := s.Nodes[0], s.Nodes[1], s.Nodes[2], s.Nodes[3]
	ctx := context.Background()
	var ids []string
	for _, p := range []*node.Node{bad, good} {
		r := gpuBox()
		r.Handle = "box"
		rec, err := p.Advertise(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitAnnounced(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	if err := obs.SetTrust(ctx, cons.ID(), 1); err != nil {
		t.Fatal(err)
	}
	found := findAll(t, cons, "kind:compute tag:gpu", 10)
	if len(found) != 2 {
		t.Fatalf("consumer found %d", len(found))
	}
	g, err := cons.Connect(ctx, ids[0], "")
	if err != nil || !g.Granted {
		t.Fatalf("connect: %v %+v", err, g)
	}
	r, err := cons.Rate(ctx, g.Session, -1, "never answered")
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != bad.ID() || r.Rater != cons.ID() || r.Score != -1 {
		t.Fatalf("rating %+v", r)
	}
	// The observer hears it by gossip (or pulls it) and distrusts bad.
	testswarm.WaitFor(t, 20*time.Second, "observer distrusts the rated provider", func() bool {
		return obs.Trust(bad.ID()).Value < 0
	})
	tr := obs.Trust(bad.ID())
	if tr.Evidence != 1 || len(tr.Contributors) != 1 || tr.Contributors[0].Rater != cons.ID() || tr.Contributors[0].Weight >= 0 {
		t.Fatalf("observer's trust in bad: %+v", tr)
	}
	why := obs.TrustWhy(bad.ID(), 3, 5)
	if len(why.Raters) != 1 || why.Raters[0].Rater.Peer != cons.ID() {
		t.Fatalf("why: %+v", why)
	}
	ctxF, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var order []string
	for res, err := range obs.Find(ctxF, "kind:compute tag:gpu", node.FindOptions{Ranked: true}) {
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, res.Provider.String())
		if res.Provider == bad.ID() && (res.Trust >= 0 || res.Rank >= res.Score/2) {
			t.Fatalf("bad's result: trust %v rank %v score %v", res.Trust, res.Rank, res.Score)
		}
	}
	if len(order) != 2 || order[0] != good.ID().String() {
		t.Fatalf("ranked order %v; want good (%s) first", order, good.ID())
	}
	var kept int
	for res, err := range obs.Find(ctxF, "kind:compute tag:gpu", node.FindOptions{MinTrust: -0.1}) {
		if err != nil {
			t.Fatal(err)
		}
		if res.Provider == bad.ID() {
			t.Fatal("min trust -0.1 kept the distrusted provider")
		}
		kept++
	}
	if kept != 1 {
		t.Fatalf("min trust: %d results", kept)
	}
	// A node that trusts no one hears the rating too, but it counts for
	// nothing there.
	if v := good.Trust(bad.ID()).Value; v != 0 {
		t.Fatalf("a node that does not trust the rater: trust %v", v)
	}
	// The provider rates its consumer back; the session is its too.
	if _, err := bad.Rate(ctx, g.Session, 1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Rate(ctx, g.Session, 1, ""); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("a stranger rated the session: %v", err)
	}
	if _, err := cons.Rate(ctx, g.Session, 2, ""); !errors.Is(err, node.ErrInvalid) {
		t.Fatalf("score 2: %v", err)
	}
}

// TestMinTrustPolicyAndAnchors: a provider whose policy asks for trust
// declines a peer it knows nothing of, with the reason, and grants it once
// its participant vouches for the peer; distrust persists across restart.
func TestMinTrustPolicyAndAnchors(t *testing.T) {
	s := testswarm.New(t, 2, testswarm.Options{})
	prov, cons := s.Nodes[0], s.Nodes[1]
	ctx := context.Background()
	rec, err := prov.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.WaitAnnounced(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := prov.SetPolicy(node.Policy{MinTrust: 0.1}); err != nil {
		t.Fatal(err)
	}
	findAll(t, cons, "kind:compute", 1)
	g, err := cons.Connect(ctx, rec.ID, "")
	if err != nil || g.Granted || !strings.Contains(g.Reason, "below its minimum") {
		t.Fatalf("unknown peer under min_trust 0.1: %v %+v", err, g)
	}
	if err := prov.SetTrust(ctx, cons.ID(), 0.5); err != nil {
		t.Fatal(err)
	}
	if v := prov.Trust(cons.ID()).Value; v < 0.1 {
		t.Fatalf("vouched-for peer's trust %v", v)
	}
	g, err = cons.Connect(ctx, rec.ID, "")
	if err != nil || !g.Granted {
		t.Fatalf("vouched-for peer: %v %+v", err, g)
	}
	if err := prov.SetTrust(ctx, cons.ID(), -1); err != nil {
		t.Fatal(err)
	}
	if v := prov.Trust(cons.ID()).Value; v > -0.9 {
		t.Fatalf("distrusted peer's trust %v", v)
	}
	anchors, err := prov.TrustAnchors(ctx)
	if err != nil || len(anchors) != 1 || anchors[0].Weight != -1 {
		t.Fatalf("anchors %+v %v", anchors, err)
	}
	if err := prov.SetTrust(ctx, cons.ID(), 0); err != nil {
		t.Fatal(err)
	}
	if v := prov.Trust(cons.ID()).Value; v != 0 {
		t.Fatalf("after removing the anchor: %v", v)
	}
	if err := prov.SetTrust(ctx, cons.ID(), 3); !errors.Is(err, node.ErrInvalid) {
		t.Fatalf("weight 3: %v", err)
	}
}

// TestNewcomerPullsRatings: a node that was not connected when a rating
// was gossiped pulls it from the first peer it meets, and trusts by it.
func TestNewcomerPullsRatings(t *testing.T) {
	s := testswarm.New(t, 4, testswarm.Options{Topology: func(s *testswarm.Swarm) error {
		_, err := s.Net.ConnectPeers(s.Nodes[0].ID(), s.Nodes[1].ID())
		return err
	}})
	prov, cons, newcomer := s.Nodes[0], s.Nodes[1], s.Nodes[2]
	ctx := context.Background()
	rec, err := prov.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.WaitAnnounced(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	g, err := cons.Connect(ctx, rec.ID, "")
	if err != nil || !g.Granted {
		t.Fatalf("connect: %v %+v", err, g)
	}
	if _, err := cons.Rate(ctx, g.Session, 1, ""); err != nil {
		t.Fatal(err)
	}
	if st := newcomer.Stats().Ratings; st.Held != 0 {
		t.Fatalf("newcomer holds %d ratings before meeting anyone", st.Held)
	}
	if _, err := s.Net.ConnectPeers(newcomer.ID(), cons.ID()); err != nil {
		t.Fatal(err)
	}
	testswarm.WaitFor(t, 20*time.Second, "newcomer pulls the rating", func() bool {
		return newcomer.Stats().Ratings.Held == 1
	})
	if err := newcomer.SetTrust(ctx, cons.ID(), 1); err != nil {
		t.Fatal(err)
	}
	if v := newcomer.Trust(prov.ID()).Value; v <= 0 {
		t.Fatalf("newcomer's trust in the well-rated provider: %v", v)
	}
}

// TestTrustTagsConnections: on a real host, the connection manager values
// a connected peer by this node's trust in it, so trimming drops the
// distrusted first.
func TestTrustTagsConnections(t *testing.T) {
	ctx := context.Background()
	loopback := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	a, err := node.New(ctx, node.Config{ListenAddrs: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := node.New(ctx, node.Config{ListenAddrs: loopback, Bootstrap: []peer.AddrInfo{a.AddrInfo()}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	testswarm.WaitFor(t, 10*time.Second, "b connects to a", func() bool { return len(a.Peers()) > 0 })
	tag := func() int {
		ti := a.Host().ConnManager().GetTagInfo(b.ID())
		if ti == nil {
			return 0
		}
		return ti.Value
	}
	if err := a.SetTrust(ctx, b.ID(), 1); err != nil {
		t.Fatal(err)
	}
	if tag() <= 0 {
		t.Fatalf("tag of a trusted peer: %d", tag())
	}
	if err := a.SetTrust(ctx, b.ID(), -1); err != nil {
		t.Fatal(err)
	}
	if tag() >= 0 {
		t.Fatalf("tag of a distrusted peer: %d", tag())
	}
}
