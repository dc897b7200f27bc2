package node_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/testswarm"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/protocol/connect"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/resource"
)

func gpuBox() resource.Resource {
	return resource.Resource{
		Kind: "compute", Name: "GPU box", Description: "two A100s for stable diffusion",
		Tags:   []string{"gpu", "cuda"},
		Attrs:  map[string]string{"gpu.count": "2", "region": "eu"},
		Access: resource.Access{Type: resource.AccessURL, Value: "https://gpu.example.org"},
	}
}

// findAll runs one find and collects its results.
func findAll(t *testing.T, n *node.Node, q string, limit int) []node.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []node.Result
	for r, err := range n.Find(ctx, q, node.FindOptions{Limit: limit}) {
		if err != nil {
			t.Fatalf("find %q: %v", q, err)
		}
		out = append(out, r)
	}
	return out
}

// waitFound polls find until it returns the resource id.
func waitFound(t *testing.T, n *node.Node, q, id string) node.Result {
	t.Helper()
	var got node.Result
	testswarm.WaitFor(t, 30*time.Second, "find "+q+" to return "+id, func() bool {
		for _, r := range findAll(t, n, q, 10) {
			if r.Resource.ID == id {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// TestChainAdvertiseFindConnect runs the whole path on six nodes in a chain:
// the finder at one end starts out knowing only its neighbour.
func TestChainAdvertiseFindConnect(t *testing.T) {
	s := testswarm.New(t, 6, testswarm.Options{})
	provider, finder := s.Nodes[0], s.Nodes[5]
	ctx := context.Background()

	adv, err := provider.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}
	near := gpuBox()
	near.Name = "small GPU box"
	near.Attrs = map[string]string{"gpu.count": "1", "region": "eu"}
	nearAdv, err := provider.Advertise(ctx, near)
	if err != nil {
		t.Fatal(err)
	}
	if adv.ID == "" || adv.Owner != provider.ID().String() || adv.Seq != 1 {
		t.Fatalf("advertise returned %+v", adv)
	}

	res := waitFound(t, finder, "kind:compute tag:gpu", adv.ID)
	if res.Provider != provider.ID() || len(res.Addrs) == 0 || res.Elapsed <= 0 {
		t.Fatalf("result lacks provider, addrs or time: %+v", res)
	}
	// The attribute filter keeps the near miss out.
	for _, r := range findAll(t, finder, "kind:compute gpu.count>=2", 10) {
		if r.Resource.ID == nearAdv.ID {
			t.Fatalf("gpu.count>=2 matched a box with one GPU")
		}
	}
	waitFound(t, finder, `"stable diffusion" region=eu`, adv.ID)

	g, err := finder.Connect(ctx, adv.ID, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if !g.Granted || g.Session == "" || g.Access != gpuBox().Access || g.Provider != provider.ID() {
		t.Fatalf("grant = %+v", g)
	}
	rc, err := signed.OpenReceipt(g.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Provider != provider.ID() || rc.Consumer != finder.ID() || rc.Session != g.Session || rc.ResourceID != adv.ID {
		t.Fatalf("receipt = %+v", rc)
	}

	if err := provider.Withdraw(ctx, adv.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range findAll(t, finder, "kind:compute tag:gpu", 10) {
		if r.Resource.ID == adv.ID {
			t.Fatal("withdrawn resource still found")
		}
	}
	g, err = finder.Connect(ctx, adv.ID, "")
	if err != nil {
		t.Fatal(err) // the provider is remembered from the find: it declines
	}
	if g.Granted || g.Reason == "" {
		t.Fatalf("connect to a withdrawn resource: %+v", g)
	}
}

func TestEditKeepsIDBumpsSeq(t *testing.T) {
	s := testswarm.New(t, 2, testswarm.Options{})
	ctx := context.Background()
	a, err := s.Nodes[0].Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}
	edit := gpuBox()
	edit.ID = a.ID
	edit.Name = "GPU box, now with three GPUs"
	edit.Attrs = map[string]string{"gpu.count": "3"}
	b, err := s.Nodes[0].Advertise(ctx, edit)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != a.ID || b.Seq != a.Seq+1 {
		t.Fatalf("edit: id %s→%s seq %d→%d", a.ID, b.ID, a.Seq, b.Seq)
	}
	got := waitFound(t, s.Nodes[1], "gpu.count=3", a.ID)
	if got.Resource.Seq != b.Seq || got.Resource.Name != edit.Name {
		t.Fatalf("found %+v, want the edit", got.Resource)
	}
	if len(s.Nodes[0].Resources()) != 1 {
		t.Fatalf("an edit added a resource: %v", s.Nodes[0].Resources())
	}
	// Editing someone else's resource is not possible.
	if _, err := s.Nodes[1].Advertise(ctx, edit); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("edit of a foreign resource: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	s := testswarm.New(t, 2, testswarm.Options{})
	ctx := context.Background()
	n := s.Nodes[0]
	for _, q := range []string{"", `"unterminated`, "kind:", "foo:bar", "a |"} {
		for _, err := range n.Find(ctx, q, node.FindOptions{}) {
			if !errors.Is(err, node.ErrInvalid) {
				t.Errorf("find %q: %v, want ErrInvalid", q, err)
			}
		}
	}
	bad := gpuBox()
	bad.Kind = "Not a kind!"
	if _, err := n.Advertise(ctx, bad); !errors.Is(err, node.ErrInvalid) {
		t.Errorf("advertise with a bad kind: %v", err)
	}
	if err := n.Withdraw(ctx, "nope"); !errors.Is(err, node.ErrNotFound) {
		t.Errorf("withdraw unknown: %v", err)
	}
	// A connect for an ID the provider does not have is declined with a reason.
	resp, err := connect.Ask(ctx, s.Nodes[1].Host(), n.ID(), connect.Request{ResourceID: resource.NewID(n.ID().String(), "nope")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Granted || resp.Reason == "" {
		t.Fatalf("unknown resource: %+v", resp)
	}
	// And Connect to an ID nobody provides says so instead of hanging.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.Nodes[1].Connect(cctx, resource.NewID(n.ID().String(), "nope"), ""); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("connect to unprovided ID: %v", err)
	}
}

func TestPolicies(t *testing.T) {
	s := testswarm.New(t, 3, testswarm.Options{Config: node.Config{ApprovalTimeout: 20 * time.Second}})
	ctx := context.Background()
	prov, alice, bob := s.Nodes[0], s.Nodes[1], s.Nodes[2]
	r, err := prov.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}
	waitFound(t, alice, "tag:gpu", r.ID)
	waitFound(t, bob, "tag:gpu", r.ID)

	if err := prov.SetPolicy(node.Policy{Mode: node.PolicyAllowlist, Allow: []peer.ID{alice.ID()}}); err != nil {
		t.Fatal(err)
	}
	if g, err := alice.Connect(ctx, r.ID, ""); err != nil || !g.Granted {
		t.Fatalf("allowed peer: %+v %v", g, err)
	}
	if g, err := bob.Connect(ctx, r.ID, ""); err != nil || g.Granted || g.Reason == "" {
		t.Fatalf("peer not on the list: %+v %v", g, err)
	}

	if err := prov.SetPolicy(node.Policy{Mode: node.PolicyManual}); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		g   node.Grant
		err error
	}
	ask := func(n *node.Node, msg string) chan answer {
		ch := make(chan answer, 1)
		go func() {
			g, err := n.Connect(ctx, r.ID, msg)
			ch <- answer{g, err}
		}()
		return ch
	}
	waitRequest := func(msg string) node.Request {
		var req node.Request
		testswarm.WaitFor(t, 10*time.Second, "a pending request", func() bool {
			i := slices.IndexFunc(prov.Requests(), func(r node.Request) bool { return r.Message == msg })
			if i >= 0 {
				req = prov.Requests()[i]
			}
			return i >= 0
		})
		return req
	}
	aliceAns := ask(alice, "please")
	req := waitRequest("please")
	if req.Consumer != alice.ID() || req.ResourceID != r.ID {
		t.Fatalf("pending request = %+v", req)
	}
	if err := prov.Approve(req.Session); err != nil {
		t.Fatal(err)
	}
	if a := <-aliceAns; a.err != nil || !a.g.Granted || a.g.Session != req.Session {
		t.Fatalf("approved: %+v %v", a.g, a.err)
	}
	bobAns := ask(bob, "me too")
	req = waitRequest("me too")
	if err := prov.Decline(req.Session, "busy this week"); err != nil {
		t.Fatal(err)
	}
	if a := <-bobAns; a.err != nil || a.g.Granted || a.g.Reason != "busy this week" {
		t.Fatalf("declined: %+v %v", a.g, a.err)
	}
	if err := prov.Approve("no-such-session"); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("approve unknown: %v", err)
	}
}

func TestRestartKeepsIdentityAndResources(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cfg := node.Config{DataDir: dir, ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}}
	a, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}
	id := a.ID()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	b, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.ID() != id {
		t.Fatalf("peer ID changed across restart: %s → %s", id, b.ID())
	}
	got := b.Resources()
	if len(got) != 1 || got[0].ID != r.ID || got[0].Seq != r.Seq {
		t.Fatalf("resources after restart: %+v", got)
	}
}
