// Package watches is the daemon's registry of standing queries: the watches
// a participant made through the control API. Each watch runs a node watch
// (node.Node.Watch) for as long as the registry lives, counts its events,
// keeps the most recent of them, and fans them out to the streams attached
// to it. The watches are saved in the daemon's datastore, so they survive a
// restart: Start runs every saved one again.
//
// A watch belongs to the registry, not to a stream: a client that goes away
// leaves it running, and only Delete ends it.
package watches

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/internal/store"
	"github.com/pullnet/pullnet/node"
)

// Watcher runs standing queries: *node.Node implements it.
type Watcher interface {
	Watch(ctx context.Context, q string, opt node.WatchOptions) iter.Seq2[node.WatchEvent, error]
}

var _ Watcher = (*node.Node)(nil)

// Prefix is where the watches are kept in the datastore.
var Prefix = ds.NewKey("/pullnet/watches")

// Limits of a watch's memory and of its subscribers.
const (
	// RingSize is how many recent events a watch keeps for subscribers
	// that attach later and ask for a replay.
	RingSize = 100
	// SubscriberBuffer is how many events a subscriber may fall behind
	// before the events it has no room for are dropped (and counted).
	SubscriberBuffer = 256
	// MaxWatches bounds the number of watches of a registry.
	MaxWatches = 1000
)

// Backoff bounds of restarting a node watch that ended with an error.
const (
	minBackoff = time.Second
	maxBackoff = time.Minute
)

// Info describes one watch.
type Info struct {
	ID      string
	Query   string
	Created time.Time
	// Events counts the events the watch has had since the daemon started.
	Events int64
	// LastEvent is when the latest of them came; zero if none has.
	LastEvent time.Time
	// Dropped counts the events subscribers had no room for.
	Dropped int64
	// Subscribers is the number of streams attached now.
	Subscribers int
}

// record is a watch as saved in the datastore.
type record struct {
	ID      string    `json:"id"`
	Query   string    `json:"query"`
	Created time.Time `json:"created"`
}

// Registry holds the daemon's watches. Its methods are safe for concurrent
// use.
type Registry struct {
	// Refind is the interval of the node watches' periodic finds (see
	// node.WatchOptions); zero leaves it to the node. Set it before Start
	// and Create.
	Refind time.Duration

	w     Watcher
	table store.Table[record]
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	watches map[string]*watch
	closed  bool
}

type watch struct {
	rec    record
	cancel context.CancelFunc
	done   chan struct{}

	// Guarded by Registry.mu.
	events  int64
	last    time.Time
	dropped int64
	ring    []node.WatchEvent // at most RingSize, oldest first
	subs    map[*subscriber]struct{}
}

type subscriber struct {
	ch      chan node.WatchEvent
	dropped int64
}

// New returns a registry that keeps its watches in store under Prefix and
// runs them on w. Nothing runs until Start (for the saved watches) or
// Create. A nil logger discards.
func New(dstore ds.Datastore, w Watcher, logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Registry{
		w:       w,
		table:   store.Table[record]{DS: dstore, Prefix: Prefix},
		log:     logger,
		ctx:     ctx,
		cancel:  cancel,
		watches: map[string]*watch{},
	}
}

// Start runs every saved watch. A saved watch whose query no longer
// parses is logged and left alone (Delete removes it). The watches run
// until Close or their Delete, not until ctx ends: ctx bounds the reading
// of the datastore.
func (r *Registry) Start(ctx context.Context) error {
	recs, err := r.table.List(ctx)
	if err != nil {
		return fmt.Errorf("watches: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("watches: %w", node.ErrClosed)
	}
	for _, rec := range recs {
		if _, ok := r.watches[rec.ID]; ok {
			continue
		}
		if err := validate(rec.Query); err != nil {
			r.log.Warn("saved watch has a bad query; remove it with 'peerctl unwatch'", "watch", rec.ID, "query", rec.Query, "err", err)
		}
		r.startLocked(rec)
	}
	if len(recs) > 0 {
		r.log.Info("watches restored", "count", len(recs))
	}
	return nil
}

// normalize gives the canonical spelling of a query: its words joined by
// single spaces, so that the same query typed twice is one watch.
func normalize(q string) string { return strings.Join(strings.Fields(q), " ") }

// validate reports whether q is a query a node can watch, with an error
// wrapping node.ErrInvalid when it is not.
func validate(q string) error {
	parsed, err := query.Parse(q)
	if err == nil {
		_, err = parsed.LookupTerms()
	}
	if err != nil {
		return fmt.Errorf("watch %q: %w: %w", q, node.ErrInvalid, err)
	}
	return nil
}

// Create registers a watch of q, saves it and starts it. A query already
// watched gives the existing watch. A query that does not parse, or that
// has nothing to look up, gives an error wrapping node.ErrInvalid.
func (r *Registry) Create(ctx context.Context, q string) (Info, error) {
	q = normalize(q)
	if q == "" {
		return Info{}, fmt.Errorf("watch: %w: empty query", node.ErrInvalid)
	}
	if err := validate(q); err != nil {
		return Info{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return Info{}, fmt.Errorf("watch: %w", node.ErrClosed)
	}
	for _, w := range r.watches {
		if w.rec.Query == q {
			return w.infoLocked(), nil
		}
	}
	if len(r.watches) >= MaxWatches {
		return Info{}, fmt.Errorf("watch: %w: %d watches already, the most a daemon keeps; remove one with 'peerctl unwatch'", node.ErrInvalid, MaxWatches)
	}
	rec := record{ID: newID(), Query: q, Created: time.Now().UTC().Truncate(time.Second)}
	// Saved under the lock, so that a concurrent Create of the same query
	// cannot save a second one. The datastore write is short.
	if err := r.table.Put(ctx, rec.ID, rec); err != nil {
		return Info{}, fmt.Errorf("watch: %w", err)
	}
	w := r.startLocked(rec)
	r.log.Info("watch created", "watch", rec.ID, "query", q)
	return w.infoLocked(), nil
}

func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return "w" + hex.EncodeToString(b[:])
}

// startLocked adds the watch of rec and runs it. r.mu is held.
func (r *Registry) startLocked(rec record) *watch {
	ctx, cancel := context.WithCancel(r.ctx)
	w := &watch{rec: rec, cancel: cancel, done: make(chan struct{}), subs: map[*subscriber]struct{}{}}
	r.watches[rec.ID] = w
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(w.done)
		r.run(ctx, w)
	}()
	return w
}

// run runs the node watch of w until ctx ends, starting it again, after a
// pause, when it ends on its own.
func (r *Registry) run(ctx context.Context, w *watch) {
	backoff := minBackoff
	for {
		var failed error
		for ev, err := range r.w.Watch(ctx, w.rec.Query, node.WatchOptions{Refind: r.Refind}) {
			if err != nil {
				failed = err
				break
			}
			backoff = minBackoff
			r.deliver(w, ev)
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(failed, node.ErrInvalid) {
			r.log.Warn("watch stopped: its query is not valid", "watch", w.rec.ID, "query", w.rec.Query, "err", failed)
			return
		}
		if errors.Is(failed, node.ErrClosed) {
			return
		}
		r.log.Debug("watch ended; restarting it", "watch", w.rec.ID, "err", failed, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// deliver records ev and hands it to every subscriber with room for it.
func (r *Registry) deliver(w *watch, ev node.WatchEvent) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	w.events++
	w.last = ev.At
	if len(w.ring) == RingSize {
		w.ring = slices.Delete(w.ring, 0, 1)
	}
	w.ring = append(w.ring, ev)
	for s := range w.subs {
		select {
		case s.ch <- ev:
		default:
			s.dropped++
			w.dropped++
		}
	}
}

// Subscribe attaches to watch id: the channel has its events from now on
// (with replay, the recent events it kept first) until cancel is called,
// the watch is deleted or the registry closed, when it is closed. A
// subscriber that falls SubscriberBuffer events behind loses the events it
// has no room for; they are counted in Info.Dropped. An unknown id gives
// an error wrapping node.ErrNotFound.
func (r *Registry) Subscribe(id string, replay bool) (<-chan node.WatchEvent, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.watches[id]
	if !ok {
		return nil, nil, fmt.Errorf("watch %s: %w", id, node.ErrNotFound)
	}
	s := &subscriber{ch: make(chan node.WatchEvent, SubscriberBuffer)}
	if replay {
		for _, ev := range w.ring {
			s.ch <- ev // the ring is smaller than the buffer
		}
	}
	w.subs[s] = struct{}{}
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if _, ok := w.subs[s]; ok {
				delete(w.subs, s)
				close(s.ch)
			}
		})
	}
	return s.ch, cancel, nil
}

// Get describes watch id; an unknown id gives an error wrapping
// node.ErrNotFound.
func (r *Registry) Get(id string) (Info, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.watches[id]
	if !ok {
		return Info{}, fmt.Errorf("watch %s: %w", id, node.ErrNotFound)
	}
	return w.infoLocked(), nil
}

// List describes every watch, oldest first.
func (r *Registry) List() []Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Info, 0, len(r.watches))
	for _, w := range r.watches {
		out = append(out, w.infoLocked())
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func (w *watch) infoLocked() Info {
	return Info{
		ID:          w.rec.ID,
		Query:       w.rec.Query,
		Created:     w.rec.Created,
		Events:      w.events,
		LastEvent:   w.last,
		Dropped:     w.dropped,
		Subscribers: len(w.subs),
	}
}

// Delete stops watch id, forgets it and ends its subscriptions. An unknown
// id gives an error wrapping node.ErrNotFound.
func (r *Registry) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	w, ok := r.watches[id]
	if !ok {
		r.mu.Unlock()
		return fmt.Errorf("watch %s: %w", id, node.ErrNotFound)
	}
	if err := r.table.Delete(ctx, id); err != nil {
		r.mu.Unlock()
		return fmt.Errorf("watch %s: %w", id, err)
	}
	delete(r.watches, id)
	w.endLocked()
	r.mu.Unlock()
	<-w.done
	r.log.Info("watch removed", "watch", id, "query", w.rec.Query)
	return nil
}

// endLocked stops the watch and closes its subscribers' channels.
func (w *watch) endLocked() {
	w.cancel()
	for s := range w.subs {
		delete(w.subs, s)
		close(s.ch)
	}
}

// Close stops every watch, leaving them saved, and ends their
// subscriptions. The registry refuses new watches afterwards.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.cancel()
	for _, w := range r.watches {
		w.endLocked()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}
