// Package catalog keeps a node's own resources: the signed records it
// advertises and answers finds from. Every change is written to the
// datastore and synced before it is acknowledged, so a restart or a crash
// loses nothing a caller was told had succeeded.
package catalog

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/resource"
)

// prefix is where the catalog's records live in the node's datastore;
// servicePrefix is where the private service addresses of TCP resources
// live (they are never part of what is signed and published).
var (
	prefix        = ds.NewKey("/pullnet/catalog")
	servicePrefix = ds.NewKey("/pullnet/services")
)

// Catalog is a node's own resources, in memory and in the datastore.
type Catalog struct {
	store ds.Datastore
	now   func() time.Time

	mu       sync.RWMutex
	recs     map[string]*signed.Record // by resource ID; never mutated, only replaced
	services map[string]string         // resource ID → local service address
}

// Open loads the catalog from store. Records that no longer verify are
// reported as an error: the store is the node's own and should not hold any.
func Open(ctx context.Context, store ds.Datastore) (*Catalog, error) {
	c := &Catalog{store: store, now: time.Now, recs: map[string]*signed.Record{}, services: map[string]string{}}
	res, err := store.Query(ctx, dsq.Query{Prefix: prefix.String()})
	if err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	defer res.Close()
	for e := range res.Next() {
		if e.Error != nil {
			return nil, fmt.Errorf("load catalog: %w", e.Error)
		}
		rec, err := signed.OpenResource(e.Value)
		if err != nil {
			return nil, fmt.Errorf("load catalog: record %s: %w", e.Key, err)
		}
		c.recs[rec.Resource.ID] = &rec
	}
	svc, err := store.Query(ctx, dsq.Query{Prefix: servicePrefix.String()})
	if err != nil {
		return nil, fmt.Errorf("load service addresses: %w", err)
	}
	defer svc.Close()
	for e := range svc.Next() {
		if e.Error != nil {
			return nil, fmt.Errorf("load service addresses: %w", e.Error)
		}
		c.services[ds.RawKey(e.Key).BaseNamespace()] = string(e.Value)
	}
	return c, nil
}

// SetService records the local address of a TCP resource's service, and
// returns once that is synced. An empty addr forgets it.
func (c *Catalog) SetService(ctx context.Context, id, addr string) error {
	key := servicePrefix.ChildString(id)
	var err error
	if addr == "" {
		err = c.store.Delete(ctx, key)
	} else {
		err = c.store.Put(ctx, key, []byte(addr))
	}
	if err == nil {
		err = c.store.Sync(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("store service address of %s: %w", id, err)
	}
	c.mu.Lock()
	if addr == "" {
		delete(c.services, id)
	} else {
		c.services[id] = addr
	}
	c.mu.Unlock()
	return nil
}

// Service returns the local address of a TCP resource's service.
func (c *Catalog) Service(id string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	addr, ok := c.services[id]
	return addr, ok
}

// Put stores rec, replacing any record with the same ID, and returns once
// the datastore has synced it.
func (c *Catalog) Put(ctx context.Context, rec signed.Record) error {
	key := prefix.ChildString(rec.Resource.ID)
	if err := c.store.Put(ctx, key, rec.Envelope); err != nil {
		return fmt.Errorf("store resource %s: %w", rec.Resource.ID, err)
	}
	if err := c.store.Sync(ctx, key); err != nil {
		return fmt.Errorf("sync resource %s: %w", rec.Resource.ID, err)
	}
	c.mu.Lock()
	c.recs[rec.Resource.ID] = &rec
	c.mu.Unlock()
	return nil
}

// Delete forgets the resource id and returns once that is synced. It reports
// whether the catalog had it.
func (c *Catalog) Delete(ctx context.Context, id string) (bool, error) {
	c.mu.RLock()
	_, ok := c.recs[id]
	c.mu.RUnlock()
	if !ok {
		return false, nil
	}
	key := prefix.ChildString(id)
	if err := c.store.Delete(ctx, key); err != nil {
		return true, fmt.Errorf("delete resource %s: %w", id, err)
	}
	if err := c.store.Sync(ctx, key); err != nil {
		return true, fmt.Errorf("sync delete of %s: %w", id, err)
	}
	c.mu.Lock()
	delete(c.recs, id)
	_, hadService := c.services[id]
	c.mu.Unlock()
	if hadService {
		if err := c.SetService(ctx, id, ""); err != nil {
			return true, err
		}
	}
	return true, nil
}

// Get returns the record with the given ID.
func (c *Catalog) Get(id string) (signed.Record, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rec, ok := c.recs[id]
	if !ok {
		return signed.Record{}, false
	}
	return *rec, true
}

// ByHandle returns the record with the given handle.
func (c *Catalog) ByHandle(handle string) (signed.Record, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, rec := range c.recs {
		if rec.Resource.Handle == handle {
			return *rec, true
		}
	}
	return signed.Record{}, false
}

// Live returns the records that have not expired, ordered by ID.
func (c *Catalog) Live() []signed.Record {
	now := c.now()
	c.mu.RLock()
	out := make([]signed.Record, 0, len(c.recs))
	for _, rec := range c.recs {
		if !rec.Resource.Expired(now) {
			out = append(out, *rec)
		}
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Resource.ID < out[j].Resource.ID })
	return out
}

// List returns every resource, expired ones included, ordered by ID, as its
// owner sees it: a TCP resource shows its local service address.
func (c *Catalog) List() []resource.Resource {
	c.mu.RLock()
	out := make([]resource.Resource, 0, len(c.recs))
	for id, rec := range c.recs {
		r := rec.Resource.Clone()
		if addr, ok := c.services[id]; ok && r.Access.Type == resource.AccessTCP {
			r.Access.Value = addr
		}
		out = append(out, r)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Len is the number of resources, expired ones included.
func (c *Catalog) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.recs)
}

// Match returns the envelopes of live resources matching q, best first, at
// most limit of them.
func (c *Catalog) Match(q *query.Query, limit int) [][]byte {
	type hit struct {
		score float64
		id    string
		env   []byte
	}
	now := c.now()
	var hits []hit
	c.mu.RLock()
	for id, rec := range c.recs {
		r := &rec.Resource
		if r.Expired(now) || !q.Match(r) {
			continue
		}
		hits = append(hits, hit{q.Score(r), id, rec.Envelope})
	}
	c.mu.RUnlock()
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].id < hits[j].id
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	out := make([][]byte, len(hits))
	for i, h := range hits {
		out[i] = h.env
	}
	return out
}

// Terms returns the distinct index terms of the live resources, sorted: the
// keys this node must provide in the DHT.
func (c *Catalog) Terms() []string {
	set := map[string]bool{}
	for _, rec := range c.Live() {
		for _, t := range rec.Resource.IndexTerms() {
			set[t] = true
		}
	}
	terms := make([]string, 0, len(set))
	for t := range set {
		terms = append(terms, t)
	}
	slices.Sort(terms)
	return terms
}
