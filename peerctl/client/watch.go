package client

import (
	"context"
	"iter"
	"time"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control/resourcepb"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
	"github.com/pullnet/pullnet/resource"
)

// Watch event types. Every stream begins with one WatchStarted event, which
// carries only the watch's ID: once it arrives, the watch is in place.
const (
	WatchStarted = "started"
	WatchAdded   = "added"
	WatchUpdated = "updated"
	WatchRemoved = "removed"
)

// WatchOptions say which watch to stream: a new (or the same, if already
// made) watch of Query, or the existing watch ID. One of the two.
type WatchOptions struct {
	Query string
	ID    string
	// Existing streams the current matches first, as added events.
	Existing bool
}

// WatchEvent is one change to the resources matching a watch.
type WatchEvent struct {
	WatchID string `json:"watch_id"`
	// Type is WatchStarted, WatchAdded, WatchUpdated or WatchRemoved.
	Type string `json:"type"`
	// Resource, Provider and At are unset in the WatchStarted event.
	Resource resource.Resource `json:"resource,omitzero"`
	Provider string            `json:"provider,omitempty"`
	At       time.Time         `json:"at,omitzero"`
}

// WatchInfo describes one of the daemon's watches.
type WatchInfo struct {
	ID      string    `json:"id"`
	Query   string    `json:"query"`
	Created time.Time `json:"created"`
	// Events counts the watch's events since the daemon started.
	Events int64 `json:"events"`
	// LastEvent is when the latest came; zero if none has.
	LastEvent time.Time `json:"last_event,omitzero"`
}

// Watch starts or attaches to a watch and yields its events until ctx
// ends, the watch is removed (the sequence just ends) or the call fails.
// The watch stays in the daemon when the stream ends: Unwatch removes it.
func (c *Client) Watch(ctx context.Context, opt WatchOptions) iter.Seq2[WatchEvent, error] {
	return func(yield func(WatchEvent, error) bool) {
		stream, err := c.rpc.Watch(ctx, connect.NewRequest(&controlv1.WatchRequest{
			Query:    opt.Query,
			Id:       opt.ID,
			Existing: opt.Existing,
		}))
		if err != nil {
			yield(WatchEvent{}, wrap(err))
			return
		}
		defer stream.Close()
		for stream.Receive() {
			m := stream.Msg()
			ev := WatchEvent{WatchID: m.GetWatchId(), Type: m.GetType(), Provider: m.GetProvider()}
			if m.GetResource() != nil {
				ev.Resource = resourcepb.FromProto(m.GetResource())
			}
			if ms := m.GetAtUnixMs(); ms != 0 {
				ev.At = time.UnixMilli(ms).UTC()
			}
			if !yield(ev, nil) {
				return
			}
		}
		if err := stream.Err(); err != nil && ctx.Err() == nil {
			yield(WatchEvent{}, wrap(err))
		}
	}
}

// Watches lists the daemon's watches, oldest first.
func (c *Client) Watches(ctx context.Context) ([]WatchInfo, error) {
	res, err := c.rpc.Watches(ctx, connect.NewRequest(&controlv1.WatchesRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]WatchInfo, 0, len(res.Msg.GetWatches()))
	for _, w := range res.Msg.GetWatches() {
		out = append(out, WatchInfo{
			ID:        w.GetId(),
			Query:     w.GetQuery(),
			Created:   fromUnix(w.GetCreatedUnix()),
			Events:    w.GetEvents(),
			LastEvent: fromUnix(w.GetLastEventUnix()),
		})
	}
	return out, nil
}

// Unwatch removes watch id from the daemon, ending its streams.
func (c *Client) Unwatch(ctx context.Context, id string) error {
	_, err := c.rpc.Unwatch(ctx, connect.NewRequest(&controlv1.UnwatchRequest{Id: id}))
	return wrap(err)
}
