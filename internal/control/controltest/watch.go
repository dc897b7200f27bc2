package controltest

import (
	"context"
	"fmt"
	"iter"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/internal/watches"
	"github.com/pullnet/pullnet/node"
)

// Watch calls WatchFunc when it is set. Otherwise it checks the query as a
// node would (an error wrapping node.ErrInvalid for one that does not
// parse or has nothing to look up) and then yields nothing until ctx ends:
// the pretend network never changes.
func (b *Backend) Watch(ctx context.Context, q string, opt node.WatchOptions) iter.Seq2[node.WatchEvent, error] {
	if b.WatchFunc != nil {
		return b.WatchFunc(ctx, q, opt)
	}
	return func(yield func(node.WatchEvent, error) bool) {
		parsed, err := query.Parse(q)
		if err == nil {
			_, err = parsed.LookupTerms()
		}
		if err != nil {
			yield(node.WatchEvent{}, fmt.Errorf("watch %q: %w: %w", q, node.ErrInvalid, err))
			return
		}
		<-ctx.Done()
	}
}

// withWatches gives opts a registry of watches in memory, run on b, when
// it has none and b can watch. The registry is closed when the test ends,
// before the server stops, so that the streams attached to it end.
func withWatches(t testing.TB, b control.Backend, opts control.Options) control.Options {
	w, ok := b.(watches.Watcher)
	if opts.Watches != nil || !ok {
		return opts
	}
	reg := watches.New(dssync.MutexWrap(ds.NewMapDatastore()), w, opts.Logger)
	opts.Watches = reg
	// t.Context ends before any cleanup runs, so the registry closes, and
	// the streams attached to it end, before the server is stopped.
	go func() {
		<-t.Context().Done()
		reg.Close()
	}()
	t.Cleanup(func() { reg.Close() })
	return opts
}

// WatchFeed is a stand-in network for watches: set Backend.WatchFunc to
// its Watch, and every watch yields the events a test sends on Events.
type WatchFeed struct {
	// Events are yielded by whichever watch takes them first.
	Events chan node.WatchEvent
	// Started has the query of each watch as it starts.
	Started chan string
}

// NewWatchFeed returns a feed with no events.
func NewWatchFeed() *WatchFeed {
	return &WatchFeed{Events: make(chan node.WatchEvent), Started: make(chan string, 100)}
}

// Watch checks q as a node would, then yields the events sent on Events
// until ctx ends.
func (f *WatchFeed) Watch(ctx context.Context, q string, opt node.WatchOptions) iter.Seq2[node.WatchEvent, error] {
	return func(yield func(node.WatchEvent, error) bool) {
		parsed, err := query.Parse(q)
		if err == nil {
			_, err = parsed.LookupTerms()
		}
		if err != nil {
			yield(node.WatchEvent{}, fmt.Errorf("watch %q: %w: %w", q, node.ErrInvalid, err))
			return
		}
		select {
		case f.Started <- q:
		default:
		}
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-f.Events:
				if !yield(ev, nil) {
					return
				}
			}
		}
	}
}
