package control

import (
	"context"
	"fmt"
	"math"
	"strings"

	"connectrpc.com/connect"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
)

// Limits of the trust calls.
const (
	// MaxRatingsList caps the ratings one Ratings call returns.
	MaxRatingsList = 1000
	// MaxWhyDepth and MaxWhyWidth cap an explanation's tree.
	MaxWhyDepth = 6
	MaxWhyWidth = 20
)

// peerArg decodes a peer ID from a request field.
func peerArg(field, v string) (peer.ID, error) {
	v, err := required(field, v)
	if err != nil {
		return "", err
	}
	p, err := peer.Decode(v)
	if err != nil {
		return "", invalidArgument(fmt.Sprintf("%s %q is not a peer ID", field, v))
	}
	return p, nil
}

func (s *server) Rate(ctx context.Context, req *connect.Request[controlv1.RateRequest]) (*connect.Response[controlv1.RateResponse], error) {
	session, err := required("session", req.Msg.GetSession())
	if err != nil {
		return nil, err
	}
	score := req.Msg.GetScore()
	if math.IsNaN(score) || score < -1 || score > 1 {
		return nil, invalidArgument(fmt.Sprintf("score %v: want a value from -1 to 1", score))
	}
	r, err := s.b.Rate(ctx, session, score, req.Msg.GetComment())
	if err != nil {
		return nil, s.toConnectError("rate", err)
	}
	return connect.NewResponse(&controlv1.RateResponse{Rating: ratingToWire(r)}), nil
}

func ratingToWire(r node.Rating) *controlv1.Rating {
	return &controlv1.Rating{Session: r.Session, ResourceId: r.ResourceID, Rater: r.Rater.String(), Subject: r.Subject.String(),
		Score: r.Score, Comment: r.Comment, CreatedUnixMs: r.Created.UnixMilli()}
}

func (s *server) Ratings(ctx context.Context, req *connect.Request[controlv1.RatingsRequest]) (*connect.Response[controlv1.RatingsResponse], error) {
	var p peer.ID
	if strings.TrimSpace(req.Msg.GetPeer()) != "" {
		var err error
		if p, err = peerArg("peer", req.Msg.GetPeer()); err != nil {
			return nil, err
		}
	}
	limit := int(min(req.Msg.GetLimit(), MaxRatingsList))
	rs, err := s.b.Ratings(ctx, p, limit)
	if err != nil {
		return nil, s.toConnectError("ratings", err)
	}
	out := &controlv1.RatingsResponse{Ratings: make([]*controlv1.Rating, 0, len(rs))}
	for _, r := range rs {
		out.Ratings = append(out.Ratings, ratingToWire(r))
	}
	return connect.NewResponse(out), nil
}

func (s *server) Trust(ctx context.Context, req *connect.Request[controlv1.TrustRequest]) (*connect.Response[controlv1.TrustResponse], error) {
	out := &controlv1.TrustResponse{}
	if strings.TrimSpace(req.Msg.GetPeer()) != "" {
		p, err := peerArg("peer", req.Msg.GetPeer())
		if err != nil {
			return nil, err
		}
		out.Scores = append(out.Scores, trustToWire(s.b.Trust(p)))
		return connect.NewResponse(out), nil
	}
	for _, ts := range s.b.TrustScores(int(req.Msg.GetLimit())) {
		out.Scores = append(out.Scores, trustToWire(ts))
	}
	return connect.NewResponse(out), nil
}

func trustToWire(ts node.TrustScore) *controlv1.TrustScore {
	out := &controlv1.TrustScore{Peer: ts.Peer.String(), Value: ts.Value, Positive: ts.Positive, Negative: ts.Negative,
		Evidence: uint32(ts.Evidence), Anchor: ts.Anchor}
	for _, c := range ts.Contributors {
		out.Contributors = append(out.Contributors, &controlv1.TrustContribution{Rater: c.Rater.String(), RaterTrust: c.RaterTrust,
			Sum: c.Sum, Count: uint32(c.Count), Weight: c.Weight})
	}
	return out
}

func (s *server) TrustWhy(ctx context.Context, req *connect.Request[controlv1.TrustWhyRequest]) (*connect.Response[controlv1.TrustWhyResponse], error) {
	p, err := peerArg("peer", req.Msg.GetPeer())
	if err != nil {
		return nil, err
	}
	depth := int(min(req.Msg.GetDepth(), MaxWhyDepth))
	width := int(min(req.Msg.GetWidth(), MaxWhyWidth))
	x := s.b.TrustWhy(p, depth, width)
	return connect.NewResponse(&controlv1.TrustWhyResponse{Explanation: explanationToWire(x)}), nil
}

func explanationToWire(x node.TrustExplanation) *controlv1.TrustExplanation {
	out := &controlv1.TrustExplanation{Peer: x.Peer.String(), Value: x.Value, Positive: x.Positive, Negative: x.Negative,
		Evidence: uint32(x.Evidence), Self: x.Self, Anchor: x.Anchor, Teleport: x.Teleport, Omitted: uint32(x.Omitted), Cut: x.Cut}
	for _, l := range x.Raters {
		out.Raters = append(out.Raters, &controlv1.TrustLink{Sum: l.Sum, Count: uint32(l.Count), Weight: l.Weight, Rater: explanationToWire(l.Rater)})
	}
	return out
}

func (s *server) SetTrust(ctx context.Context, req *connect.Request[controlv1.SetTrustRequest]) (*connect.Response[controlv1.SetTrustResponse], error) {
	p, err := peerArg("peer", req.Msg.GetPeer())
	if err != nil {
		return nil, err
	}
	w := req.Msg.GetWeight()
	if math.IsNaN(w) || w < -1 || w > 1 {
		return nil, invalidArgument(fmt.Sprintf("weight %v: want a value from -1 to 1 (0 removes)", w))
	}
	if err := s.b.SetTrust(ctx, p, w); err != nil {
		return nil, s.toConnectError("trust", err)
	}
	return connect.NewResponse(&controlv1.SetTrustResponse{}), nil
}
