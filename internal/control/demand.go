package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control/resourcepb"
	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
)

// Limits of Lineage, which runs a find per resource of the tree.
const (
	// DefaultLineageTimeout bounds a lineage walk whose request sets no
	// timeout.
	DefaultLineageTimeout = 30 * time.Second
	// MaxLineageTimeout caps any lineage walk's timeout.
	MaxLineageTimeout = 5 * time.Minute
)

var errLineageTimedOut = errors.New("lineage timed out")

func (s *server) Lineage(ctx context.Context, req *connect.Request[controlv1.LineageRequest]) (*connect.Response[controlv1.LineageResponse], error) {
	id, err := required("id", req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	timeout, err := timeoutOf(req.Msg.GetTimeoutMs(), DefaultLineageTimeout, MaxLineageTimeout)
	if err != nil {
		return nil, err
	}
	depth := int(min(req.Msg.GetDepth(), node.MaxLineageDepth))
	walkCtx, cancel := context.WithTimeoutCause(ctx, timeout, errLineageTimedOut)
	defer cancel()
	root, err := s.b.Lineage(walkCtx, id, depth)
	if err != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(walkCtx), errLineageTimedOut) {
			return nil, connect.NewError(connect.CodeDeadlineExceeded,
				fmt.Errorf("no provider of %s answered within %v", id, timeout))
		}
		return nil, s.toConnectError("lineage", err)
	}
	return connect.NewResponse(&controlv1.LineageResponse{Root: lineageToWire(root)}), nil
}

func lineageToWire(n node.LineageNode) *controlv1.LineageNode {
	m := &controlv1.LineageNode{
		Resource: resourcepb.ToProto(n.Resource),
		Missing:  n.Missing,
	}
	if n.Provider != "" {
		m.Provider = n.Provider.String()
	}
	for _, c := range n.Sources {
		m.Sources = append(m.Sources, lineageToWire(c))
	}
	for _, c := range n.Derivatives {
		m.Derivatives = append(m.Derivatives, lineageToWire(c))
	}
	return m
}

func (s *server) Demand(ctx context.Context, req *connect.Request[controlv1.DemandRequest]) (*connect.Response[controlv1.DemandResponse], error) {
	ms := req.Msg.GetSinceMs()
	if ms < 0 {
		return nil, invalidArgument(fmt.Sprintf("since_ms is %d, want a positive number of milliseconds or 0 for everything kept", ms))
	}
	r := s.b.Demand(time.Duration(ms) * time.Millisecond)
	res := &controlv1.DemandResponse{
		FindsRun:          r.FindsRun,
		FindsUnmet:        r.FindsUnmet,
		FindsServed:       r.FindsServed,
		TopServedTerms:    termCountsToWire(r.TopServedTerms),
		ResultsServed:     r.ResultsServed,
		TopServedQueries:  termCountsToWire(r.TopServedQueries),
		TopRunTerms:       termCountsToWire(r.TopRunTerms),
		Unmet:             termCountsToWire(r.Unmet),
		ConnectsRequested: r.ConnectsRequested,
		ConnectsGranted:   r.ConnectsGranted,
		SinceUnix:         unixOrZero(r.Since),
	}
	for _, rd := range r.Resources {
		res.Resources = append(res.Resources, &controlv1.ResourceDemand{
			Id: rd.ID, Name: rd.Name, Found: rd.Found, Requested: rd.Requested, Granted: rd.Granted, Rated: rd.Rated,
		})
	}
	return connect.NewResponse(res), nil
}

func termCountsToWire(cs []node.TermCount) []*controlv1.TermCount {
	out := make([]*controlv1.TermCount, 0, len(cs))
	for _, c := range cs {
		out = append(out, &controlv1.TermCount{Term: c.Term, Count: c.Count, Results: c.Results})
	}
	return out
}
