package client

import (
	"context"
	"time"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control/resourcepb"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
	"github.com/pullnet/pullnet/resource"
)

// Want is a participant's signed, expiring record of what it is looking
// for: one's own (with the resources that have matched it since) or
// another's.
type Want struct {
	ID          string              `json:"id"`
	Owner       string              `json:"owner"`
	Query       string              `json:"query"`
	Description string              `json:"description,omitempty"`
	Created     time.Time           `json:"created,omitzero"`
	Expires     time.Time           `json:"expires,omitzero"`
	Matches     []resource.Resource `json:"matches,omitempty"`
}

// Want publishes a want for query, living ttl (0: the daemon's default, 7
// days), and returns its ID and expiry.
func (c *Client) Want(ctx context.Context, query, description string, ttl time.Duration) (id string, expires time.Time, err error) {
	res, err := c.rpc.Want(ctx, connect.NewRequest(&controlv1.WantRequest{
		Query: query, Description: description, ExpiresMs: millis(ttl),
	}))
	if err != nil {
		return "", time.Time{}, wrap(err)
	}
	return res.Msg.GetId(), fromUnix(res.Msg.GetExpiresUnix()), nil
}

// WantsOptions tune a listing of wants.
type WantsOptions struct {
	// Mine lists the daemon's own wants and their matches instead of the
	// network's.
	Mine bool
	// Timeout bounds a listing of the network's wants; 0 leaves it to the
	// daemon (10s).
	Timeout time.Duration
}

// Wants lists the network's open wants whose query shares a term with query
// (empty: those the daemon's resources could serve) or, with Mine, the
// daemon's own.
func (c *Client) Wants(ctx context.Context, query string, opt WantsOptions) ([]Want, error) {
	res, err := c.rpc.Wants(ctx, connect.NewRequest(&controlv1.WantsRequest{
		Query: query, Mine: opt.Mine, TimeoutMs: millis(opt.Timeout),
	}))
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]Want, 0, len(res.Msg.GetWants()))
	for _, m := range res.Msg.GetWants() {
		w := Want{
			ID: m.GetId(), Owner: m.GetOwner(), Query: m.GetQuery(), Description: m.GetDescription(),
			Created: fromUnix(m.GetCreatedUnix()), Expires: fromUnix(m.GetExpiresUnix()),
		}
		for _, r := range m.GetMatches() {
			w.Matches = append(w.Matches, resourcepb.FromProto(r))
		}
		out = append(out, w)
	}
	return out, nil
}

// Unwant withdraws one of the daemon's wants.
func (c *Client) Unwant(ctx context.Context, id string) error {
	_, err := c.rpc.Unwant(ctx, connect.NewRequest(&controlv1.UnwantRequest{Id: id}))
	return wrap(err)
}
