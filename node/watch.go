package node

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/protocol/find"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/resource"
)

// Watch event types.
const (
	EventAdded   = "added"
	EventUpdated = "updated"
	EventRemoved = "removed"
)

// WatchEvent is one change to the set of resources matching a watch.
type WatchEvent struct {
	// Type is EventAdded, EventUpdated or EventRemoved.
	Type     string
	Resource resource.Resource
	Provider peer.ID
	At       time.Time
}

// WatchOptions tune a watch.
type WatchOptions struct {
	// Existing yields the current matches first, as EventAdded. False
	// means only changes after the watch starts.
	Existing bool
	// Refind is how often the watch runs its query as a find, to fill in
	// what gossip missed (after a partition, say). Zero means the node's
	// Config.WatchRefind.
	Refind time.Duration
}

// DefaultRefind is how often a watch re-runs its query when its options
// set no interval.
const DefaultRefind = time.Minute

// watchLimit bounds the results of a watch's finds.
const watchLimit = 200

// Watch is a standing query: it yields an event whenever a resource
// matching q appears, changes or disappears anywhere in the network, until
// ctx ends. Announcements arrive over gossip on the topics of the query's
// lookup terms; a periodic find fills in what gossip missed. A query that
// does not parse yields one error wrapping ErrInvalid.
func (n *Node) Watch(ctx context.Context, q string, opt WatchOptions) iter.Seq2[WatchEvent, error] {
	return func(yield func(WatchEvent, error) bool) {
		parsed, err := query.Parse(q)
		if err == nil {
			_, err = parsed.LookupTerms()
		}
		if err != nil {
			yield(WatchEvent{}, fmt.Errorf("watch %q: %w: %w", q, ErrInvalid, err))
			return
		}
		terms, _ := parsed.LookupTerms()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		anns, err := n.announce.Subscribe(ctx, terms)
		if err != nil {
			yield(WatchEvent{}, fmt.Errorf("watch %q: %w", q, err))
			return
		}
		w := &watchState{q: parsed, known: map[string]watchEntry{}}
		// The first find tells what exists now: yielded with Existing,
		// otherwise only remembered, so that it is not reported as new —
		// unless it changed since the watch began (at the resolution of
		// Updated, a second), which the find may have seen first.
		began := time.Now().Truncate(time.Second)
		for _, ev := range n.refind(ctx, q, w) {
			if (opt.Existing || !ev.Resource.Updated.Before(began)) && !yield(ev, nil) {
				return
			}
		}
		every := opt.Refind
		if every <= 0 {
			every = n.cfg.WatchRefind
		}
		if every <= 0 {
			every = DefaultRefind
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case a, ok := <-anns:
				if !ok {
					return
				}
				if ev, ok := w.apply(a.Record); ok && !yield(ev, nil) {
					return
				}
			case <-tick.C:
				for _, ev := range n.refind(ctx, q, w) {
					if !yield(ev, nil) {
						return
					}
				}
			}
		}
	}
}

// refind runs the watch's query as a find and returns the events it
// implies. A resource that matched before and is missing from the results
// is checked with its owner, who alone can say it is gone: an owner that
// answers without it makes a removal (a missed tombstone); an owner that
// cannot be reached makes nothing, since that may be a passing partition.
func (n *Node) refind(ctx context.Context, q string, w *watchState) []WatchEvent {
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var evs []WatchEvent
	seen := map[string]bool{}
	complete := true
	for h, err := range n.finder.Find(fctx, q, watchLimit) {
		if err != nil {
			complete = false
			break
		}
		seen[h.Record.Resource.ID] = true
		if ev, ok := w.apply(h.Record); ok {
			evs = append(evs, ev)
		}
	}
	if !complete || len(seen) >= watchLimit {
		return evs // a truncated result says nothing about what is missing
	}
	for id, e := range w.known {
		if !e.matched || seen[id] || e.owner == "" {
			continue
		}
		if ev, ok := n.confirmGone(fctx, w, id, e); ok {
			evs = append(evs, ev)
		}
	}
	return evs
}

// confirmGone asks the owner of a resource the watch saw matching whether
// it still offers it.
func (n *Node) confirmGone(ctx context.Context, w *watchState, id string, e watchEntry) (WatchEvent, bool) {
	var got *signed.Record
	err := find.Ask(ctx, n.host, e.owner, resource.Term(resource.TermID, id), 1, func(env []byte) bool {
		if rec, err := signed.OpenResource(env); err == nil && rec.Owner == e.owner && rec.Resource.ID == id {
			got = &rec
		}
		return false
	})
	switch {
	case err != nil:
		return WatchEvent{}, false
	case got != nil:
		return w.apply(*got)
	}
	w.known[id] = watchEntry{seq: e.seq, owner: e.owner}
	return WatchEvent{Type: EventRemoved, Resource: e.last, Provider: e.owner, At: time.Now()}, true
}

type watchEntry struct {
	seq     uint64
	matched bool
	owner   peer.ID
	last    resource.Resource // the last matching version, for a removal event
}

// watchState is what a watch knows of the resources it has heard of.
type watchState struct {
	q     *query.Query
	known map[string]watchEntry
}

// maxWatchKnown bounds a watch's memory of resources.
const maxWatchKnown = 100_000

// apply folds one verified resource version into the state and returns the
// event it makes, if any. Versions not newer than one already seen make
// none; a version that stops matching (a tombstone, an edit, expiry) makes
// a removal of a resource that matched.
func (w *watchState) apply(rec signed.Record) (WatchEvent, bool) {
	r := rec.Resource
	prev, seen := w.known[r.ID]
	if seen && r.Seq <= prev.seq {
		return WatchEvent{}, false
	}
	matches := !r.Withdrawn && !r.Expired(time.Now()) && w.q.Match(&r)
	if !seen && len(w.known) >= maxWatchKnown {
		clear(w.known)
	}
	w.known[r.ID] = watchEntry{seq: r.Seq, matched: matches, owner: rec.Owner, last: r}
	ev := WatchEvent{Resource: r.Clone(), Provider: rec.Owner, At: time.Now()}
	switch {
	case matches && (!seen || !prev.matched):
		ev.Type = EventAdded
	case matches:
		ev.Type = EventUpdated
	case seen && prev.matched:
		ev.Type = EventRemoved
	default:
		return WatchEvent{}, false
	}
	return ev, true
}
