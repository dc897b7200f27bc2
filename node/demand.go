package node

import (
	"context"
	"errors"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/demand"
	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/protocol/connect"
)

// demandKey is where the demand counts are kept across restarts.
var demandKey = ds.NewKey("/pullnet/demand")

// DemandTop is how many entries each list of a DemandReport has at most.
const DemandTop = 20

// DemandReport is what the node counted of the demand it saw: the finds its
// participant ran, the finds it served other peers as a provider, and what
// came of its own resources. Counts are local to the node and never sent
// anywhere.
type DemandReport struct {
	// Since is the start of the report's window, in whole hours, or when
	// counting began for a report of everything.
	Since time.Time

	// FindsRun are the finds this node's participant ran; FindsUnmet those
	// that found nothing anywhere.
	FindsRun, FindsUnmet int64
	// FindsServed are the finds this node answered for other peers, and
	// ResultsServed the results it answered with.
	FindsServed, ResultsServed int64
	// ConnectsRequested and ConnectsGranted count the connect requests for
	// this node's resources, and those granted.
	ConnectsRequested, ConnectsGranted int64

	// TopServedTerms are the query terms others asked this node most.
	TopServedTerms []TermCount
	// TopServedQueries are the whole queries others asked most; empty
	// unless Config.RecordQueries.
	TopServedQueries []TermCount
	// TopRunTerms are the terms of the participant's own finds.
	TopRunTerms []TermCount
	// Unmet are the participant's queries that found nothing, with how
	// often each was run.
	Unmet []TermCount
	// Resources is the demand for each of the node's own resources, and
	// for withdrawn ones with counts in the window.
	Resources []ResourceDemand
}

// TermCount is a query term (or a whole query) with how many finds had it
// and how many results those finds had.
type TermCount struct {
	Term    string
	Count   int64
	Results int64
}

// ResourceDemand is how often one of the node's resources was found (sent
// in an answer to a find), requested, granted and rated.
type ResourceDemand struct {
	ID   string
	Name string
	// Found, Requested, Granted and Rated are counts in the window.
	Found, Requested, Granted, Rated int64
}

// Demand reports the demand the node counted in the last since (rounded
// out to whole hours, and at most seven days), or everything since
// counting began when since is zero. Counts survive a restart when the node
// has a data directory or a datastore of its own.
func (n *Node) Demand(since time.Duration) DemandReport {
	r := n.demand.Report(since, -1)
	out := DemandReport{
		Since: r.Since, FindsRun: r.FindsRun, FindsUnmet: r.FindsUnmet,
		FindsServed: r.FindsServed, ResultsServed: r.ResultsServed,
		ConnectsRequested: r.ConnectsRequested, ConnectsGranted: r.ConnectsGranted,
		TopServedTerms:   termCounts(r.TopServedTerms),
		TopServedQueries: termCounts(r.TopServedQueries),
		TopRunTerms:      termCounts(r.TopRunTerms),
		Unmet:            termCounts(r.Unmet),
	}
	counted := map[string]demand.ResourceCount{}
	for _, rc := range r.Resources {
		counted[rc.ID] = rc
	}
	// Every own resource, most found first (as the recorder orders them),
	// then those without counts; then withdrawn resources with counts.
	own := map[string]string{}
	for _, res := range n.catalog.List() {
		own[res.ID] = res.Name
	}
	var rest []ResourceDemand
	for _, rc := range r.Resources {
		rd := ResourceDemand{ID: rc.ID, Name: own[rc.ID], Found: rc.Found, Requested: rc.Requested, Granted: rc.Granted, Rated: rc.Rated}
		if _, ok := own[rc.ID]; ok {
			out.Resources = append(out.Resources, rd)
		} else if len(rest) < DemandTop {
			rest = append(rest, rd)
		}
	}
	for _, res := range n.catalog.List() {
		if _, ok := counted[res.ID]; !ok {
			out.Resources = append(out.Resources, ResourceDemand{ID: res.ID, Name: res.Name})
		}
	}
	out.Resources = append(out.Resources, rest...)
	return out
}

func termCounts(cs []demand.Count) []TermCount {
	if len(cs) > DemandTop {
		cs = cs[:DemandTop]
	}
	out := make([]TermCount, len(cs))
	for i, c := range cs {
		out[i] = TermCount{Term: c.Key, Count: c.Count, Results: c.Results}
	}
	return out
}

// openDemand makes the node's demand recorder, loading the counts it saved
// when it last closed, and saves them again on Close.
func (n *Node) openDemand(ctx context.Context) {
	n.demand = demand.New(demand.Options{RecordQueries: n.cfg.RecordQueries})
	b, err := n.store.Get(ctx, demandKey)
	switch {
	case errors.Is(err, ds.ErrNotFound):
	case err != nil:
		n.log.Warn("demand counts not loaded; counting afresh", "err", err)
	default:
		if err := n.demand.UnmarshalBinary(b); err != nil {
			n.log.Warn("demand counts not loaded; counting afresh", "err", err)
		}
	}
	n.closers = append(n.closers, n.saveDemand)
}

func (n *Node) saveDemand() error {
	b, err := n.demand.MarshalBinary()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.store.Put(ctx, demandKey, b); err != nil {
		n.log.Warn("demand counts not saved", "err", err)
		return nil
	}
	if err := n.store.Sync(ctx, demandKey); err != nil {
		n.log.Warn("demand counts not synced", "err", err)
	}
	return nil
}

// recordFind counts a find the participant ran; a query that does not
// parse is not counted.
func (n *Node) recordFind(q string, results int) {
	parsed, err := query.Parse(q)
	if err != nil {
		return
	}
	n.demand.FindRun(parsed.Terms(), parsed.String(), results)
}

// servedCatalog is the catalog the find service answers from: the node's
// own, counting what it serves.
type servedCatalog struct{ n *Node }

func (c servedCatalog) Match(q *query.Query, limit int) [][]byte {
	envs := c.n.catalog.Match(q, limit)
	var ids []string
	if len(envs) > 0 {
		byEnv := map[string]string{}
		for _, rec := range c.n.catalog.Live() {
			if q.Match(&rec.Resource) {
				byEnv[string(rec.Envelope)] = rec.Resource.ID
			}
		}
		for _, env := range envs {
			if id, ok := byEnv[string(env)]; ok {
				ids = append(ids, id)
			}
		}
	}
	c.n.demand.Served(q.Terms(), q.String(), len(envs), ids)
	return envs
}

// countingGrants decides connect requests with the node's grants manager,
// counting requests for and grants of the node's own resources.
type countingGrants struct{ n *Node }

func (g countingGrants) HandleConnect(ctx context.Context, from peer.ID, req connect.Request) connect.Response {
	_, own := g.n.catalog.Get(req.ResourceID)
	if own {
		g.n.demand.ConnectRequested(req.ResourceID)
	}
	resp := g.n.grants.HandleConnect(ctx, from, req)
	if own && resp.Granted {
		g.n.demand.ConnectGranted(req.ResourceID)
	}
	return resp
}
