package control

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control/resourcepb"
	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
)

// Limits of Wants, which looks up the DHT and asks the peers it finds.
const (
	// DefaultWantsTimeout bounds a listing of the network's wants whose
	// request sets no timeout.
	DefaultWantsTimeout = 10 * time.Second
	// MaxWantsTimeout caps any listing's timeout.
	MaxWantsTimeout = 2 * time.Minute
)

func (s *server) Want(ctx context.Context, req *connect.Request[controlv1.WantRequest]) (*connect.Response[controlv1.WantResponse], error) {
	q, err := required("query", req.Msg.GetQuery())
	if err != nil {
		return nil, err
	}
	ms := req.Msg.GetExpiresMs()
	if ms < 0 {
		return nil, invalidArgument(fmt.Sprintf("expires_ms is %d, want a positive number of milliseconds or 0 for 7 days", ms))
	}
	w, err := s.b.Want(ctx, q, req.Msg.GetDescription(), time.Duration(ms)*time.Millisecond)
	if err != nil {
		return nil, s.toConnectError("want", err)
	}
	return connect.NewResponse(&controlv1.WantResponse{Id: w.ID, ExpiresUnix: w.Expires.Unix()}), nil
}

func (s *server) Wants(ctx context.Context, req *connect.Request[controlv1.WantsRequest]) (*connect.Response[controlv1.WantsResponse], error) {
	var (
		ws  []node.WantInfo
		err error
	)
	if req.Msg.GetMine() {
		ws, err = s.b.MyWants(ctx)
	} else {
		timeout, terr := timeoutOf(req.Msg.GetTimeoutMs(), DefaultWantsTimeout, MaxWantsTimeout)
		if terr != nil {
			return nil, terr
		}
		lctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ws, err = s.b.Wants(lctx, req.Msg.GetQuery())
	}
	if err != nil {
		return nil, s.toConnectError("wants", err)
	}
	res := &controlv1.WantsResponse{Wants: make([]*controlv1.WantInfo, 0, len(ws))}
	for _, w := range ws {
		m := &controlv1.WantInfo{
			Id: w.ID, Owner: w.Owner.String(), Query: w.Query, Description: w.Description,
			CreatedUnix: unixOrZero(w.Created), ExpiresUnix: unixOrZero(w.Expires),
		}
		for _, r := range w.Matches {
			m.Matches = append(m.Matches, resourcepb.ToProto(r))
		}
		res.Wants = append(res.Wants, m)
	}
	return connect.NewResponse(res), nil
}

func (s *server) Unwant(ctx context.Context, req *connect.Request[controlv1.UnwantRequest]) (*connect.Response[controlv1.UnwantResponse], error) {
	id, err := required("id", req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	if err := s.b.Unwant(ctx, id); err != nil {
		return nil, s.toConnectError("unwant", err)
	}
	return connect.NewResponse(&controlv1.UnwantResponse{}), nil
}
