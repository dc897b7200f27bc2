// Package finder runs a find across the network: it looks up the providers
// of a query's index terms in the DHT, asks each provider directly over
// /pullnet/find/1.0.0, verifies and de-duplicates what they answer, and
// streams the results as they arrive.
package finder

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/internal/termkeys"
	"github.com/pullnet/pullnet/protocol/find"
	"github.com/pullnet/pullnet/protocol/signed"
)

// MaxConcurrentAsks bounds the providers asked at once by one find.
const MaxConcurrentAsks = 16

// MaxLimit caps the results of one find, whatever the caller asks for.
const MaxLimit = 1000

// Hit is one verified result.
type Hit struct {
	Record   signed.Record
	Provider peer.ID
	Addrs    []ma.Multiaddr
	Elapsed  time.Duration
	Score    float64
}

// LocalMatcher matches a query against the node's own catalog.
type LocalMatcher func(q *query.Query, limit int) [][]byte

// Stats counts results the finder dropped, by reason.
type Stats struct {
	Finds       atomic.Int64
	Results     atomic.Int64
	BadRecord   atomic.Int64 // did not verify: bad signature, malformed
	NotOwner    atomic.Int64 // answered by a peer that does not own the resource
	Stale       atomic.Int64 // older seq than one already seen
	Expired     atomic.Int64
	NoMatch     atomic.Int64 // the provider answered with something the query does not match
	AskFailures atomic.Int64
}

// Finder runs finds for one host.
type Finder struct {
	host   host.Host
	router termkeys.Router
	local  LocalMatcher
	log    *slog.Logger
	seqs   *seqCache
	Stats  Stats
}

// New returns a finder that looks providers up through router.
func New(h host.Host, router termkeys.Router, local LocalMatcher, logger *slog.Logger) *Finder {
	return &Finder{host: h, router: router, local: local, log: logger, seqs: newSeqCache(100_000)}
}

// Find parses q and streams verified results until limit results were
// yielded, every provider has answered, or ctx ends (which is not an
// error: a deadline is how a caller bounds a find). A query that does not
// parse or cannot be looked up yields one error.
func (f *Finder) Find(ctx context.Context, q string, limit int) iter.Seq2[Hit, error] {
	return func(yield func(Hit, error) bool) {
		parsed, err := query.Parse(q)
		if err != nil {
			yield(Hit{}, err)
			return
		}
		terms, err := parsed.LookupTerms()
		if err != nil {
			yield(Hit{}, err)
			return
		}
		if limit <= 0 || limit > MaxLimit {
			limit = MaxLimit
		}
		f.Stats.Finds.Add(1)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		out := make(chan Hit)
		go f.run(ctx, parsed, terms, limit, out)
		n := 0
		seen := map[string]uint64{}
		for h := range out {
			id := h.Record.Resource.ID
			if s, ok := seen[id]; ok && s >= h.Record.Resource.Seq {
				continue
			}
			seen[id] = h.Record.Resource.Seq
			f.Stats.Results.Add(1)
			if !yield(h, nil) {
				break
			}
			if n++; n >= limit {
				break
			}
		}
		cancel()
		for range out { // let the workers finish
		}
	}
}

// run feeds out with verified hits and closes it when every lookup and ask
// has ended.
func (f *Finder) run(ctx context.Context, q *query.Query, terms []string, limit int, out chan<- Hit) {
	start := time.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		asked = map[peer.ID]bool{}
		sem   = make(chan struct{}, MaxConcurrentAsks)
	)
	qs := q.String()
	emit := func(h Hit) bool {
		h.Elapsed = time.Since(start)
		select {
		case out <- h:
			return true
		case <-ctx.Done():
			return false
		}
	}
	ask := func(ai peer.AddrInfo) {
		defer wg.Done()
		if ai.ID == f.host.ID() {
			for _, env := range f.local(q, limit) {
				if h, ok := f.verify(q, ai.ID, env); ok && !emit(h) {
					return
				}
			}
			return
		}
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		case <-ctx.Done():
			return
		}
		if len(ai.Addrs) > 0 {
			f.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		}
		err := find.Ask(ctx, f.host, ai.ID, qs, limit, func(env []byte) bool {
			h, ok := f.verify(q, ai.ID, env)
			return !ok || emit(h)
		})
		if err != nil && ctx.Err() == nil {
			f.Stats.AskFailures.Add(1)
			f.log.Debug("find: provider did not answer", "peer", ai.ID, "err", err)
		}
	}
	for _, term := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ai := range termkeys.FindProviders(ctx, f.router, term, 0) {
				mu.Lock()
				dup := asked[ai.ID]
				asked[ai.ID] = true
				mu.Unlock()
				if !dup {
					wg.Add(1)
					go ask(ai)
				}
			}
		}()
	}
	wg.Wait()
	close(out)
}

// verify opens one envelope from provider p and checks it deserves to be a
// result of q.
func (f *Finder) verify(q *query.Query, p peer.ID, env []byte) (Hit, bool) {
	rec, err := signed.OpenResource(env)
	switch {
	case err != nil:
		f.Stats.BadRecord.Add(1)
		f.log.Info("find: dropped a record that does not verify", "peer", p, "err", err)
		return Hit{}, false
	case rec.Owner != p:
		// Only a resource's owner answers for it; anything else is a replay.
		f.Stats.NotOwner.Add(1)
		f.log.Info("find: dropped a record its provider does not own", "peer", p, "owner", rec.Owner)
		return Hit{}, false
	case rec.Resource.Expired(time.Now()):
		f.Stats.Expired.Add(1)
		return Hit{}, false
	case !q.Match(&rec.Resource):
		f.Stats.NoMatch.Add(1)
		return Hit{}, false
	case !f.seqs.offer(rec.Resource.ID, rec.Resource.Seq):
		f.Stats.Stale.Add(1)
		f.log.Debug("find: dropped a stale record", "peer", p, "id", rec.Resource.ID, "seq", rec.Resource.Seq)
		return Hit{}, false
	}
	return Hit{Record: rec, Provider: p, Addrs: f.host.Peerstore().Addrs(p), Score: q.Score(&rec.Resource)}, true
}

// ErrNoResult is returned by First when nothing matched.
var ErrNoResult = errors.New("no match")

// First returns the first result of a find.
func (f *Finder) First(ctx context.Context, q string) (Hit, error) {
	for h, err := range f.Find(ctx, q, 1) {
		return h, err
	}
	if ctx.Err() != nil {
		return Hit{}, fmt.Errorf("%w before %w", ErrNoResult, ctx.Err())
	}
	return Hit{}, ErrNoResult
}

// seqCache remembers the highest seq seen per resource, so a provider cannot
// roll a resource back by replaying an older signed version. It is bounded:
// past max entries it forgets an arbitrary half, which at worst lets an old
// version through once more.
type seqCache struct {
	mu   sync.Mutex
	max  int
	seqs map[string]uint64
}

func newSeqCache(max int) *seqCache { return &seqCache{max: max, seqs: map[string]uint64{}} }

// offer records seq for id and reports whether it is at least the highest
// seen.
func (c *seqCache) offer(id string, seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.seqs[id]; ok && seq < s {
		return false
	}
	if len(c.seqs) >= c.max {
		n := 0
		for k := range c.seqs {
			delete(c.seqs, k)
			if n++; n >= c.max/2 {
				break
			}
		}
	}
	c.seqs[id] = seq
	return true
}
