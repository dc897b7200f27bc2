package control

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control/resourcepb"
	"github.com/pullnet/pullnet/internal/watches"
	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
)

// WatchStarted is the type of the first event of every Watch stream: it
// carries only the watch's id, and tells the client that the watch is in
// place, so that what happens from then on reaches it.
const WatchStarted = "started"

// errWatchesOff answers the watch calls of a server without a registry.
var errWatchesOff = connect.NewError(connect.CodeUnimplemented, errors.New("this daemon keeps no watches"))

// Watch registers a standing query (or attaches to the watch of id) and
// streams its events until the client goes away or the watch is removed.
// The watch itself outlives the stream.
func (s *server) Watch(ctx context.Context, req *connect.Request[controlv1.WatchRequest], stream *connect.ServerStream[controlv1.WatchEvent]) error {
	reg := s.opts.Watches
	if reg == nil {
		return errWatchesOff
	}
	q, id := req.Msg.GetQuery(), req.Msg.GetId()
	var (
		info watches.Info
		err  error
	)
	switch {
	case q != "" && id != "":
		return invalidArgument("give a query to start a watch or the id of one to attach to, not both")
	case id != "":
		info, err = reg.Get(id)
	case q != "":
		info, err = reg.Create(ctx, q)
	default:
		return invalidArgument("query or id is required")
	}
	if err != nil {
		return s.toConnectError("watch", err)
	}
	// Subscribed before the existing matches are found, so that nothing
	// happening meanwhile is missed.
	events, cancel, err := reg.Subscribe(info.ID, false)
	if err != nil {
		return s.toConnectError("watch", err)
	}
	defer cancel()
	if err := stream.Send(&controlv1.WatchEvent{WatchId: info.ID, Type: WatchStarted}); err != nil {
		return err
	}
	if req.Msg.GetExisting() {
		if err := s.sendExisting(ctx, stream, info); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				// The watch was removed, or the daemon is stopping, which
				// leaves the watch saved: the client should know which.
				if _, err := reg.Get(info.ID); err == nil {
					return connect.NewError(connect.CodeUnavailable, fmt.Errorf("the daemon is stopping; watch %s stays and resumes when it starts again", info.ID))
				}
				return nil
			}
			if err := stream.Send(watchEventToWire(info.ID, ev)); err != nil {
				return err
			}
		}
	}
}

// sendExisting sends the current matches of the watch's query, found as a
// find would, as "added" events.
func (s *server) sendExisting(ctx context.Context, stream *connect.ServerStream[controlv1.WatchEvent], info watches.Info) error {
	findCtx, cancel := context.WithTimeoutCause(ctx, DefaultFindTimeout, errFindTimedOut)
	defer cancel()
	for res, err := range s.b.Find(findCtx, info.Query, node.FindOptions{Limit: MaxFindLimit}) {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(context.Cause(findCtx), errFindTimedOut) {
				return nil
			}
			return s.toConnectError("watch", fmt.Errorf("finding the current matches: %w", err))
		}
		ev := node.WatchEvent{Type: node.EventAdded, Resource: res.Resource, Provider: res.Provider}
		if err := stream.Send(watchEventToWire(info.ID, ev)); err != nil {
			return err
		}
	}
	return nil
}

func watchEventToWire(id string, ev node.WatchEvent) *controlv1.WatchEvent {
	m := &controlv1.WatchEvent{
		WatchId:  id,
		Type:     ev.Type,
		Resource: resourcepb.ToProto(ev.Resource),
	}
	if ev.Provider != "" {
		m.Provider = ev.Provider.String()
	}
	if !ev.At.IsZero() {
		m.AtUnixMs = ev.At.UnixMilli()
	}
	return m
}

func (s *server) Watches(ctx context.Context, _ *connect.Request[controlv1.WatchesRequest]) (*connect.Response[controlv1.WatchesResponse], error) {
	reg := s.opts.Watches
	if reg == nil {
		return nil, errWatchesOff
	}
	infos := reg.List()
	out := make([]*controlv1.WatchInfo, 0, len(infos))
	for _, w := range infos {
		out = append(out, &controlv1.WatchInfo{
			Id:            w.ID,
			Query:         w.Query,
			CreatedUnix:   unixOrZero(w.Created),
			Events:        w.Events,
			LastEventUnix: unixOrZero(w.LastEvent),
		})
	}
	return connect.NewResponse(&controlv1.WatchesResponse{Watches: out}), nil
}

func (s *server) Unwatch(ctx context.Context, req *connect.Request[controlv1.UnwatchRequest]) (*connect.Response[controlv1.UnwatchResponse], error) {
	reg := s.opts.Watches
	if reg == nil {
		return nil, errWatchesOff
	}
	id, err := required("id", req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	if err := reg.Delete(ctx, id); err != nil {
		return nil, s.toConnectError("unwatch", err)
	}
	return connect.NewResponse(&controlv1.UnwatchResponse{}), nil
}
