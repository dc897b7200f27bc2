package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/termkeys"
)

// provider keeps the node's index terms announced in the DHT: new terms as
// soon as they appear, all of them again every interval (before the DHT's
// provider records expire), and failed ones again with backoff, since a
// node that has just started may not have any DHT peers yet.
type provider struct {
	router   termkeys.Router
	self     peer.ID
	terms    func() []string
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending map[string]bool
	wake    chan struct{}

	// done counts the provides that succeeded; tests and benchmarks wait on it.
	doneMu  sync.Mutex
	done    map[string]time.Time
	changed chan struct{} // closed and replaced whenever done changes
}

// maxParallelProvides bounds concurrent DHT provide walks.
const maxParallelProvides = 4

func newProvider(router termkeys.Router, self peer.ID, terms func() []string, interval time.Duration, log *slog.Logger) *provider {
	return &provider{router: router, self: self, terms: terms, interval: interval, log: log,
		pending: map[string]bool{}, wake: make(chan struct{}, 1), done: map[string]time.Time{}, changed: make(chan struct{})}
}

// add queues terms for announcing now.
func (p *provider) add(terms ...string) {
	p.mu.Lock()
	for _, t := range terms {
		p.pending[t] = true
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *provider) run(ctx context.Context) {
	p.add(p.terms()...) // re-advertise what the node had before a restart
	reprovide := time.NewTicker(p.interval)
	defer reprovide.Stop()
	backoff := time.Second
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-retry:
		case <-reprovide.C:
			p.add(p.terms()...)
		}
		retry = nil
		if failed := p.flush(ctx); failed > 0 {
			retry = time.After(backoff)
			backoff = min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
	}
}

// flush announces every pending term that is still one of the node's, and
// returns how many failed (they stay pending).
func (p *provider) flush(ctx context.Context) (failed int) {
	p.mu.Lock()
	batch := p.pending
	p.pending = map[string]bool{}
	p.mu.Unlock()
	if len(batch) == 0 {
		return 0
	}
	current := map[string]bool{}
	for _, t := range p.terms() {
		current[t] = true
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		sem = make(chan struct{}, maxParallelProvides)
	)
	for term := range batch {
		if !current[term] { // withdrawn since it was queued
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if _, err := termkeys.Provide(cctx, p.router, p.self, term); err != nil {
				p.log.Debug("provide failed; will retry", "term", term, "err", err)
				mu.Lock()
				failed++
				mu.Unlock()
				p.mu.Lock()
				p.pending[term] = true
				p.mu.Unlock()
				return
			}
			p.doneMu.Lock()
			p.done[term] = time.Now()
			close(p.changed)
			p.changed = make(chan struct{})
			p.doneMu.Unlock()
		}()
	}
	wg.Wait()
	if failed > 0 {
		p.log.Info("some index terms could not be announced yet; retrying", "failed", failed)
	}
	return failed
}

// waitAnnounced blocks until every one of terms has been announced after
// since, or ctx ends.
func (p *provider) waitAnnounced(ctx context.Context, terms []string, since time.Time) error {
	for {
		p.doneMu.Lock()
		changed := p.changed
		all := true
		for _, t := range terms {
			if at, ok := p.done[t]; !ok || at.Before(since) {
				all = false
				break
			}
		}
		p.doneMu.Unlock()
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
