package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/internal/store"
	"github.com/pullnet/pullnet/internal/termkeys"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/protocol/wants"
	"github.com/pullnet/pullnet/resource"
)

// Limits of wants.
const (
	// DefaultWantTTL is a want's lifetime when Want is given none.
	DefaultWantTTL = 7 * 24 * time.Hour
	// MaxWantTTL is the longest a want may live.
	MaxWantTTL = signed.MaxWantTTL
	// MaxWantDescriptionLen caps a want's description in bytes.
	MaxWantDescriptionLen = signed.MaxWantDescriptionLen
	// MaxOwnWants is the most live wants a node holds.
	MaxOwnWants = wants.MaxWantsPerPeer
	// MaxWantMatches is the most matches a want remembers.
	MaxWantMatches = 100
	// WantTermPrefix puts want terms in a DHT namespace of their own.
	WantTermPrefix = "want/"
	// maxWantsPeers bounds the peers one Wants asks.
	maxWantsPeers = 64
	// maxParallelWantLookups bounds concurrent DHT lookups of one Wants.
	maxParallelWantLookups = 8
)

// WantInfo is a want: one's own (with the resources that have matched it
// since it was published) or another participant's.
type WantInfo struct {
	ID          string
	Owner       peer.ID
	Query       string
	Description string
	Created     time.Time
	Expires     time.Time
	// Matches are the resources that matched one's own want, oldest
	// first; empty for others' wants.
	Matches []resource.Resource
}

// WantStats counts the wants a node dropped when it listed others' wants.
type WantStats struct {
	Accepted, Forged, Replayed, Expired, Malformed, Flood int64
	// Served counts the wants requests this node answered, Refused those
	// it dropped as malformed.
	Served, Refused int64
}

// storedWant is one own want as kept in the datastore.
type storedWant struct {
	Envelope []byte              `json:"envelope"`
	Matches  []resource.Resource `json:"matches,omitempty"`
}

type ownWant struct {
	rec     signed.WantRecord
	terms   []string // index terms of the query
	matches []resource.Resource
	cancel  context.CancelFunc
}

// wantBook holds a node's own wants and its wants service.
type wantBook struct {
	table store.Table[storedWant]
	svc   *wants.Service
	stats wants.ClientStats

	mu  sync.Mutex
	own map[string]*ownWant
}

// openWants loads the node's live wants, deletes expired ones, serves
// /pullnet/wants/1.0.0 and starts watching for each want's matches.
func (n *Node) openWants(ctx context.Context) error {
	b := &wantBook{table: store.Table[storedWant]{DS: n.store, Prefix: ds.NewKey("/pullnet/wants")}, own: map[string]*ownWant{}}
	now := time.Now()
	var expired []string
	err := b.table.Each(ctx, func(key string, sw storedWant) error {
		rec, err := signed.OpenWant(sw.Envelope, now)
		if err != nil {
			expired = append(expired, key)
			return nil
		}
		q, _ := query.Parse(rec.Want.Query)
		b.own[rec.Want.ID] = &ownWant{rec: rec, terms: q.IndexTerms(), matches: sw.Matches}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load wants: %w", err)
	}
	for _, k := range expired {
		_ = b.table.Delete(ctx, k)
	}
	n.wants = b
	b.svc = wants.NewService(n.host, ownWantSource{n}, n.log.With("part", "wants"))
	n.closers = append(n.closers, func() error { b.svc.Close(); return nil })
	for _, w := range b.own {
		n.watchWant(w)
	}
	return nil
}

// providedTerms are the terms the node provides in the DHT: its catalog's
// index terms and, in their own namespace, those of its live wants.
func (n *Node) providedTerms() []string {
	terms := n.catalog.Terms()
	if n.wants == nil {
		return terms
	}
	now := time.Now()
	n.wants.mu.Lock()
	defer n.wants.mu.Unlock()
	for _, w := range n.wants.own {
		if !now.Before(w.rec.Want.Expires) {
			continue
		}
		for _, t := range w.terms {
			terms = append(terms, WantTermPrefix+t)
		}
	}
	slices.Sort(terms)
	return slices.Compact(terms)
}

type ownWantSource struct{ n *Node }

// OwnWants answers the wants protocol: the node's live wants sharing one of
// terms, newest first.
func (s ownWantSource) OwnWants(terms []string, limit int) [][]byte {
	now := time.Now()
	b := s.n.wants
	b.mu.Lock()
	var ws []*ownWant
	for _, w := range b.own {
		if now.Before(w.rec.Want.Expires) && sharesTerm(w.terms, terms) {
			ws = append(ws, w)
		}
	}
	b.mu.Unlock()
	slices.SortFunc(ws, func(a, b *ownWant) int { return b.rec.Want.Created.Compare(a.rec.Want.Created) })
	var out [][]byte
	for _, w := range ws[:min(len(ws), limit)] {
		out = append(out, w.rec.Envelope)
	}
	return out
}

func sharesTerm(have, asked []string) bool {
	if len(asked) == 0 {
		return true
	}
	for _, t := range have {
		if slices.Contains(asked, t) {
			return true
		}
	}
	return false
}

// Want publishes a want: a signed record that the participant is looking
// for what q matches, provided in the DHT under "want/" + each of q's index
// terms until it expires after ttl (0 means DefaultWantTTL) or is withdrawn
// with Unwant. The node watches for resources matching q and remembers
// them as the want's matches (see MyWants).
func (n *Node) Want(ctx context.Context, q, description string, ttl time.Duration) (WantInfo, error) {
	if ttl == 0 {
		ttl = DefaultWantTTL
	}
	if ttl < time.Second || ttl > MaxWantTTL {
		return WantInfo{}, fmt.Errorf("want: %w: lifetime %v: want 1s to %v", ErrInvalid, ttl, MaxWantTTL)
	}
	if len(q) > query.MaxLen {
		return WantInfo{}, fmt.Errorf("want: %w: query is %d bytes, at most %d", ErrInvalid, len(q), query.MaxLen)
	}
	if len(description) > MaxWantDescriptionLen {
		return WantInfo{}, fmt.Errorf("want: %w: description is %d bytes, at most %d", ErrInvalid, len(description), MaxWantDescriptionLen)
	}
	parsed, err := query.Parse(q)
	if err != nil {
		return WantInfo{}, fmt.Errorf("want %q: %w: %v", q, ErrInvalid, err)
	}
	terms := parsed.IndexTerms()
	if len(terms) == 0 {
		return WantInfo{}, fmt.Errorf("want %q: %w: %v", q, ErrInvalid, query.ErrNotIndexable)
	}
	var hb [8]byte
	_, _ = rand.Read(hb[:])
	now := time.Now()
	rec, err := signed.SealWant(n.key, signed.Want{Handle: "w-" + hex.EncodeToString(hb[:]), Query: q,
		Description: description, Created: now, Expires: now.Add(ttl)})
	if err != nil {
		return WantInfo{}, fmt.Errorf("want: %w: %v", ErrInvalid, err)
	}
	b := n.wants
	b.mu.Lock()
	live := 0
	for _, w := range b.own {
		if now.Before(w.rec.Want.Expires) {
			live++
		}
	}
	if live >= MaxOwnWants {
		b.mu.Unlock()
		return WantInfo{}, fmt.Errorf("want: %w: this node already holds %d wants, the most allowed; withdraw one first", ErrInvalid, live)
	}
	w := &ownWant{rec: rec, terms: terms}
	b.own[rec.Want.ID] = w
	b.mu.Unlock()
	if err := b.table.Put(ctx, rec.Want.ID, storedWant{Envelope: rec.Envelope}); err != nil {
		b.mu.Lock()
		delete(b.own, rec.Want.ID)
		b.mu.Unlock()
		return WantInfo{}, err
	}
	want := make([]string, len(terms))
	for i, t := range terms {
		want[i] = WantTermPrefix + t
	}
	n.prov.add(want...)
	n.watchWant(w)
	n.log.Info("want published", "id", rec.Want.ID, "query", rec.Want.Query, "expires", rec.Want.Expires)
	return wantInfo(rec.Want, nil), nil
}

// Unwant withdraws one of the node's wants: it is no longer served, its
// watch stops, and its DHT records lapse.
func (n *Node) Unwant(ctx context.Context, id string) error {
	b := n.wants
	b.mu.Lock()
	w, ok := b.own[id]
	delete(b.own, id)
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("unwant: %w: this node has no want %s", ErrNotFound, id)
	}
	if w.cancel != nil {
		w.cancel()
	}
	return b.table.Delete(ctx, id)
}

// MyWants lists the node's live wants with their matches, newest first.
func (n *Node) MyWants(ctx context.Context) ([]WantInfo, error) {
	now := time.Now()
	b := n.wants
	b.mu.Lock()
	var out []WantInfo
	for _, w := range b.own {
		if now.Before(w.rec.Want.Expires) {
			out = append(out, wantInfo(w.rec.Want, slices.Clone(w.matches)))
		}
	}
	b.mu.Unlock()
	sortWants(out)
	return out, nil
}

// WantStats returns the counts of the node's wants service and of the wants
// it dropped when listing others'.
func (n *Node) WantStats() WantStats {
	s := &n.wants.stats
	return WantStats{Accepted: s.Accepted.Load(), Forged: s.Forged.Load(), Replayed: s.Replayed.Load(),
		Expired: s.Expired.Load(), Malformed: s.Malformed.Load(), Flood: s.Flood.Load(),
		Served: n.wants.svc.Stats.Served.Load(), Refused: n.wants.svc.Stats.Malformed.Load()}
}

// Wants lists other participants' open wants whose query shares an index
// term with q or, when q is empty, with this node's own resources (the wants
// they could serve). It looks up the DHT providers of "want/" + each term,
// asks each for its wants, and keeps those that verify, are live and are
// served by their owner. It returns what it gathered by the time ctx ends.
func (n *Node) Wants(ctx context.Context, q string) ([]WantInfo, error) {
	var terms []string
	if q != "" {
		parsed, err := query.Parse(q)
		if err != nil {
			return nil, fmt.Errorf("wants %q: %w: %v", q, ErrInvalid, err)
		}
		if terms = parsed.IndexTerms(); len(terms) == 0 {
			return nil, fmt.Errorf("wants %q: %w: %v", q, ErrInvalid, query.ErrNotIndexable)
		}
	} else {
		terms = n.catalog.Terms()
	}
	if len(terms) > wants.MaxTerms {
		terms = terms[:wants.MaxTerms]
	}
	if len(terms) == 0 {
		return []WantInfo{}, nil
	}

	var (
		mu    sync.Mutex
		asked = map[peer.ID]bool{n.host.ID(): true}
		found = map[string]WantInfo{}
		wg    sync.WaitGroup
		sem   = make(chan struct{}, maxParallelWantLookups)
	)
	ask := func(ai peer.AddrInfo) {
		defer wg.Done()
		if len(ai.Addrs) > 0 {
			n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		}
		recs, err := wants.Fetch(ctx, n.host, ai.ID, terms, time.Now, &n.wants.stats)
		if err != nil && ctx.Err() == nil {
			n.log.Debug("wants: peer did not answer", "peer", ai.ID, "err", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rec := range recs {
			wq, err := query.Parse(rec.Want.Query)
			if err != nil || !sharesTerm(wq.IndexTerms(), terms) {
				continue
			}
			found[rec.Want.ID] = wantInfo(rec.Want, nil)
		}
	}
	for _, t := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			for ai := range termkeys.FindProviders(ctx, n.dht, WantTermPrefix+t, 20) {
				mu.Lock()
				dup := asked[ai.ID] || len(asked) > maxWantsPeers
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
	out := make([]WantInfo, 0, len(found))
	for _, w := range found {
		out = append(out, w)
	}
	sortWants(out)
	return out, nil
}

// watchWant runs a watch of w's query until w expires or is withdrawn,
// remembering the resources it finds as w's matches.
func (n *Node) watchWant(w *ownWant) {
	if n.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithDeadline(n.ctx, w.rec.Want.Expires)
	n.wants.mu.Lock()
	w.cancel = cancel
	n.wants.mu.Unlock()
	id := w.rec.Want.ID
	n.goRun(func(context.Context) {
		defer cancel()
		for ev, err := range n.Watch(ctx, w.rec.Want.Query, WatchOptions{Existing: true}) {
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("want: watch failed", "id", id, "err", err)
				}
				return
			}
			if ev.Type == EventRemoved || ev.Resource.Owner == n.host.ID().String() {
				continue
			}
			n.recordMatch(ctx, id, ev.Resource)
		}
	})
}

// recordMatch adds r to want id's matches (replacing an earlier version of
// r), up to MaxWantMatches, and persists them.
func (n *Node) recordMatch(ctx context.Context, id string, r resource.Resource) {
	b := n.wants
	b.mu.Lock()
	w, ok := b.own[id]
	if !ok {
		b.mu.Unlock()
		return
	}
	i := slices.IndexFunc(w.matches, func(m resource.Resource) bool { return m.ID == r.ID })
	switch {
	case i >= 0:
		w.matches[i] = r
	case len(w.matches) >= MaxWantMatches:
		b.mu.Unlock()
		return
	default:
		w.matches = append(w.matches, r)
		n.log.Info("want matched", "id", id, "resource", r.ID, "owner", r.Owner)
	}
	// Saved under the lock, so that an Unwant cannot be undone by a late
	// match.
	defer b.mu.Unlock()
	sw := storedWant{Envelope: w.rec.Envelope, Matches: slices.Clone(w.matches)}
	if err := b.table.Put(context.WithoutCancel(ctx), id, sw); err != nil {
		n.log.Warn("want: save match", "id", id, "err", err)
	}
}

func wantInfo(w signed.Want, matches []resource.Resource) WantInfo {
	return WantInfo{ID: w.ID, Owner: w.Owner, Query: w.Query, Description: w.Description,
		Created: w.Created, Expires: w.Expires, Matches: matches}
}

func sortWants(ws []WantInfo) {
	slices.SortFunc(ws, func(a, b WantInfo) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
