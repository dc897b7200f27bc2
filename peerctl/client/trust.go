package client

import (
	"context"
	"time"

	"connectrpc.com/connect"

	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
)

// Rating is a signed opinion of one session by one of its parties.
type Rating struct {
	Session    string `json:"session"`
	ResourceID string `json:"resource_id"`
	// Rater gave the rating; Subject is the other party of the session.
	Rater   string `json:"rater"`
	Subject string `json:"subject"`
	// Score runs from -1 (bad) to +1 (good).
	Score   float64   `json:"score"`
	Comment string    `json:"comment,omitempty"`
	Created time.Time `json:"created"`
}

func ratingFromWire(m *controlv1.Rating) Rating {
	return Rating{Session: m.GetSession(), ResourceID: m.GetResourceId(), Rater: m.GetRater(), Subject: m.GetSubject(),
		Score: m.GetScore(), Comment: m.GetComment(), Created: time.UnixMilli(m.GetCreatedUnixMs()).UTC()}
}

// Rate rates a session the daemon took part in, as consumer or provider,
// with a score from -1 to +1. Rating a session again replaces the earlier
// rating.
func (c *Client) Rate(ctx context.Context, session string, score float64, comment string) (Rating, error) {
	res, err := c.rpc.Rate(ctx, connect.NewRequest(&controlv1.RateRequest{Session: session, Score: score, Comment: comment}))
	if err != nil {
		return Rating{}, wrap(err)
	}
	return ratingFromWire(res.Msg.GetRating()), nil
}

// Ratings lists the ratings the daemon holds about peer (all when empty),
// newest first; limit 0 leaves it to the daemon.
func (c *Client) Ratings(ctx context.Context, peer string, limit int) ([]Rating, error) {
	res, err := c.rpc.Ratings(ctx, connect.NewRequest(&controlv1.RatingsRequest{Peer: peer, Limit: uint32(max(limit, 0))}))
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]Rating, 0, len(res.Msg.GetRatings()))
	for _, m := range res.Msg.GetRatings() {
		out = append(out, ratingFromWire(m))
	}
	return out, nil
}

// TrustScore is the daemon's trust in one peer.
type TrustScore struct {
	Peer string `json:"peer"`
	// Value runs from -1 (distrusted) through 0 (nothing known) to +1.
	Value float64 `json:"value"`
	// Positive and Negative are the trust masses behind the peer's
	// positive and negative ratings.
	Positive float64 `json:"positive"`
	Negative float64 `json:"negative"`
	// Evidence counts the ratings about the peer from raters the daemon
	// trusts.
	Evidence int `json:"evidence"`
	// Anchor is the participant's own weight for the peer, 0 if none.
	Anchor float64 `json:"anchor"`
	// Contributors are the strongest raters behind Value (only when one
	// peer was asked about).
	Contributors []TrustContribution `json:"contributors,omitempty"`
}

// TrustContribution is one rater's part in a peer's trust.
type TrustContribution struct {
	Rater string `json:"rater"`
	// RaterTrust is how much the rater's word counts.
	RaterTrust float64 `json:"rater_trust"`
	// Sum and Count are its opinion: the sum of its scores over Count
	// sessions.
	Sum   float64 `json:"sum"`
	Count int     `json:"count"`
	// Weight is the signed share of the peer's trust it carries.
	Weight float64 `json:"weight"`
}

// Trust returns the daemon's trust in peer, with its strongest
// contributors.
func (c *Client) Trust(ctx context.Context, peer string) (TrustScore, error) {
	res, err := c.rpc.Trust(ctx, connect.NewRequest(&controlv1.TrustRequest{Peer: peer}))
	if err != nil {
		return TrustScore{}, wrap(err)
	}
	if len(res.Msg.GetScores()) == 0 {
		return TrustScore{Peer: peer}, nil
	}
	return trustFromWire(res.Msg.GetScores()[0]), nil
}

// TrustScores lists every peer the daemon has evidence about or an anchor
// for, most trusted first; limit 0 means all.
func (c *Client) TrustScores(ctx context.Context, limit int) ([]TrustScore, error) {
	res, err := c.rpc.Trust(ctx, connect.NewRequest(&controlv1.TrustRequest{Limit: uint32(max(limit, 0))}))
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]TrustScore, 0, len(res.Msg.GetScores()))
	for _, m := range res.Msg.GetScores() {
		out = append(out, trustFromWire(m))
	}
	return out, nil
}

func trustFromWire(m *controlv1.TrustScore) TrustScore {
	ts := TrustScore{Peer: m.GetPeer(), Value: m.GetValue(), Positive: m.GetPositive(), Negative: m.GetNegative(),
		Evidence: int(m.GetEvidence()), Anchor: m.GetAnchor()}
	for _, c := range m.GetContributors() {
		ts.Contributors = append(ts.Contributors, TrustContribution{Rater: c.GetRater(), RaterTrust: c.GetRaterTrust(),
			Sum: c.GetSum(), Count: int(c.GetCount()), Weight: c.GetWeight()})
	}
	return ts
}

// TrustExplanation is the chain of evidence behind a peer's trust: who
// rated it, and recursively how those raters earned the trust that makes
// their word count, back to the daemon itself and its anchors.
type TrustExplanation struct {
	Peer     string  `json:"peer"`
	Value    float64 `json:"value"`
	Positive float64 `json:"positive"`
	Negative float64 `json:"negative"`
	Evidence int     `json:"evidence"`
	// Self marks the daemon itself, where all trust starts.
	Self bool `json:"self,omitempty"`
	// Anchor is the participant's weight for the peer; Teleport the share
	// of its trust that comes from being self or an anchor.
	Anchor   float64     `json:"anchor,omitempty"`
	Teleport float64     `json:"teleport,omitempty"`
	Raters   []TrustLink `json:"raters,omitempty"`
	// Omitted counts opinions left out for width; Cut says why Raters
	// stops short ("depth" or "cycle").
	Omitted int    `json:"omitted,omitempty"`
	Cut     string `json:"cut,omitempty"`
}

// TrustLink is one rater's opinion in a TrustExplanation.
type TrustLink struct {
	Sum    float64          `json:"sum"`
	Count  int              `json:"count"`
	Weight float64          `json:"weight"`
	Rater  TrustExplanation `json:"rater"`
}

// TrustWhy explains the daemon's trust in peer, depth levels of raters
// deep and width raters wide (0 leaves each to the daemon).
func (c *Client) TrustWhy(ctx context.Context, peer string, depth, width int) (TrustExplanation, error) {
	res, err := c.rpc.TrustWhy(ctx, connect.NewRequest(&controlv1.TrustWhyRequest{Peer: peer, Depth: uint32(max(depth, 0)), Width: uint32(max(width, 0))}))
	if err != nil {
		return TrustExplanation{}, wrap(err)
	}
	return explanationFromWire(res.Msg.GetExplanation()), nil
}

func explanationFromWire(m *controlv1.TrustExplanation) TrustExplanation {
	x := TrustExplanation{Peer: m.GetPeer(), Value: m.GetValue(), Positive: m.GetPositive(), Negative: m.GetNegative(),
		Evidence: int(m.GetEvidence()), Self: m.GetSelf(), Anchor: m.GetAnchor(), Teleport: m.GetTeleport(),
		Omitted: int(m.GetOmitted()), Cut: m.GetCut()}
	for _, l := range m.GetRaters() {
		x.Raters = append(x.Raters, TrustLink{Sum: l.GetSum(), Count: int(l.GetCount()), Weight: l.GetWeight(), Rater: explanationFromWire(l.GetRater())})
	}
	return x
}

// SetTrust vouches for peer (weight in (0, 1]), against it (weight in
// [-1, 0)), or removes the anchor (weight 0).
func (c *Client) SetTrust(ctx context.Context, peer string, weight float64) error {
	_, err := c.rpc.SetTrust(ctx, connect.NewRequest(&controlv1.SetTrustRequest{Peer: peer, Weight: weight}))
	return wrap(err)
}
