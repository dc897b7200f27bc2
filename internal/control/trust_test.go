package control_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
	"github.com/pullnet/pullnet/resource"
)

// TestRateAndTrust: rating a granted session, listing ratings, reading and
// setting trust, and the errors a script can hit.
func TestRateAndTrust(t *testing.T) {
	box := resource.Resource{ID: "bafkbox", Kind: "compute", Name: "GPU box"}
	b := &controltest.Backend{
		Network: []node.Result{{Resource: box, Provider: controltest.PeerID2, Score: 1, Trust: -0.5, Rank: 0.25}},
		TrustOf: map[peer.ID]node.TrustScore{controltest.PeerID2: {Peer: controltest.PeerID2, Value: -0.5, Negative: 0.2, Evidence: 1,
			Contributors: []node.TrustContribution{{Rater: controltest.PeerID3, RaterTrust: 0.4, Sum: -1, Count: 1, Weight: -1}}}},
	}
	sock := controltest.Start(t, b, control.Options{})
	c := newClient(t, sock, false)
	ctx := context.Background()

	fr, err := c.Find(ctx, connect.NewRequest(&controlv1.FindRequest{Query: "kind:compute", Ranked: true}))
	if err != nil {
		t.Fatal(err)
	}
	for fr.Receive() {
		if m := fr.Msg(); m.GetTrust() != -0.5 || m.GetRank() != 0.25 {
			t.Fatalf("find result trust %v rank %v", m.GetTrust(), m.GetRank())
		}
	}
	bad, err := c.Find(ctx, connect.NewRequest(&controlv1.FindRequest{Query: "kind:compute", MinTrust: 2}))
	if err != nil {
		t.Fatal(err)
	}
	for bad.Receive() {
		t.Fatal("a find with min_trust 2 yielded a result")
	}
	wantCode(t, bad.Err(), connect.CodeInvalidArgument, "min_trust")

	g, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: box.ID}))
	if err != nil || !g.Msg.GetGranted() {
		t.Fatalf("connect: %v", err)
	}
	r, err := c.Rate(ctx, connect.NewRequest(&controlv1.RateRequest{Session: g.Msg.GetSession(), Score: -1, Comment: "slow"}))
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Msg.GetRating(); m.GetSubject() != controltest.PeerID2.String() || m.GetScore() != -1 || m.GetComment() != "slow" {
		t.Fatalf("rating %v", m)
	}
	_, err = c.Rate(ctx, connect.NewRequest(&controlv1.RateRequest{Session: g.Msg.GetSession(), Score: 1.5}))
	wantCode(t, err, connect.CodeInvalidArgument, "score")
	_, err = c.Rate(ctx, connect.NewRequest(&controlv1.RateRequest{Session: "nope", Score: 1}))
	wantCode(t, err, connect.CodeNotFound, "nope")
	_, err = c.Rate(ctx, connect.NewRequest(&controlv1.RateRequest{Score: 1}))
	wantCode(t, err, connect.CodeInvalidArgument, "session")

	rs, err := c.Ratings(ctx, connect.NewRequest(&controlv1.RatingsRequest{Peer: controltest.PeerID2.String()}))
	if err != nil || len(rs.Msg.GetRatings()) != 1 {
		t.Fatalf("ratings: %v %v", rs, err)
	}
	_, err = c.Ratings(ctx, connect.NewRequest(&controlv1.RatingsRequest{Peer: "not-a-peer"}))
	wantCode(t, err, connect.CodeInvalidArgument, "not a peer ID")

	tr, err := c.Trust(ctx, connect.NewRequest(&controlv1.TrustRequest{Peer: controltest.PeerID2.String()}))
	if err != nil {
		t.Fatal(err)
	}
	if s := tr.Msg.GetScores(); len(s) != 1 || s[0].GetValue() != -0.5 || len(s[0].GetContributors()) != 1 || s[0].GetContributors()[0].GetRater() != controltest.PeerID3.String() {
		t.Fatalf("trust: %v", tr.Msg)
	}
	if _, err := c.SetTrust(ctx, connect.NewRequest(&controlv1.SetTrustRequest{Peer: controltest.PeerID3.String(), Weight: 1})); err != nil {
		t.Fatal(err)
	}
	_, err = c.SetTrust(ctx, connect.NewRequest(&controlv1.SetTrustRequest{Peer: controltest.PeerID3.String(), Weight: -2}))
	wantCode(t, err, connect.CodeInvalidArgument, "weight")
	if got := b.Trust(controltest.PeerID3).Anchor; got != 1 {
		t.Fatalf("anchor %v", got)
	}
	why, err := c.TrustWhy(ctx, connect.NewRequest(&controlv1.TrustWhyRequest{Peer: controltest.PeerID2.String(), Depth: 100}))
	if err != nil {
		t.Fatal(err)
	}
	if x := why.Msg.GetExplanation(); len(x.GetRaters()) != 1 || x.GetRaters()[0].GetRater().GetPeer() != controltest.PeerID3.String() {
		t.Fatalf("why: %v", x)
	}
	_, err = c.TrustWhy(ctx, connect.NewRequest(&controlv1.TrustWhyRequest{}))
	wantCode(t, err, connect.CodeInvalidArgument, "peer")
}
