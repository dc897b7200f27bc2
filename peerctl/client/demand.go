package client

import (
	"context"
	"time"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control/resourcepb"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
	"github.com/pullnet/pullnet/resource"
)

// LineageOptions tune a lineage walk.
type LineageOptions struct {
	// Depth bounds the walk in each direction; 0 leaves it to the daemon
	// (3), which caps it at 10.
	Depth int
	// Timeout bounds the walk; 0 leaves it to the daemon (30s).
	Timeout time.Duration
}

// LineageNode is one resource of a lineage tree, with the resources it
// derives from (Sources, walked up from the root) and those that derive from
// it (Derivatives, walked down).
type LineageNode struct {
	Resource resource.Resource `json:"resource"`
	// Provider is the peer that answered for the resource.
	Provider string `json:"provider,omitempty"`
	// Missing is set for a source no provider answered for: only
	// Resource.ID is known.
	Missing     bool          `json:"missing,omitempty"`
	Sources     []LineageNode `json:"sources,omitempty"`
	Derivatives []LineageNode `json:"derivatives,omitempty"`
}

// Lineage walks the sources and derivatives of resource id.
func (c *Client) Lineage(ctx context.Context, id string, opt LineageOptions) (LineageNode, error) {
	res, err := c.rpc.Lineage(ctx, connect.NewRequest(&controlv1.LineageRequest{
		Id:        id,
		Depth:     uint32(max(opt.Depth, 0)),
		TimeoutMs: millis(opt.Timeout),
	}))
	if err != nil {
		return LineageNode{}, wrap(err)
	}
	return lineageFromProto(res.Msg.GetRoot()), nil
}

func lineageFromProto(m *controlv1.LineageNode) LineageNode {
	n := LineageNode{
		Resource: resourcepb.FromProto(m.GetResource()),
		Provider: m.GetProvider(),
		Missing:  m.GetMissing(),
	}
	for _, s := range m.GetSources() {
		n.Sources = append(n.Sources, lineageFromProto(s))
	}
	for _, d := range m.GetDerivatives() {
		n.Derivatives = append(n.Derivatives, lineageFromProto(d))
	}
	return n
}

// TermCount is a query term (or query) with how many finds had it and how
// many results those finds had.
type TermCount struct {
	Term    string `json:"term"`
	Count   int64  `json:"count"`
	Results int64  `json:"results"`
}

// ResourceDemand is how often one of the daemon's resources was found,
// requested, granted and rated.
type ResourceDemand struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Found     int64  `json:"found"`
	Requested int64  `json:"requested"`
	Granted   int64  `json:"granted"`
	Rated     int64  `json:"rated"`
}

// Demand is what a daemon counted of the demand it saw.
type Demand struct {
	// Since is the start of the window the counts cover.
	Since time.Time `json:"since,omitzero"`
	// FindsRun are the finds the daemon's participant ran, FindsUnmet those
	// that found nothing.
	FindsRun   int64 `json:"finds_run"`
	FindsUnmet int64 `json:"finds_unmet"`
	// FindsServed are the finds the daemon answered for other peers.
	FindsServed int64 `json:"finds_served"`
	// ConnectsRequested and ConnectsGranted count connect requests for the
	// daemon's resources, and those granted.
	ConnectsRequested int64 `json:"connects_requested"`
	ConnectsGranted   int64 `json:"connects_granted"`
	// TopServedTerms are the terms other peers asked most.
	TopServedTerms []TermCount `json:"top_served_terms"`
	// ResultsServed counts the results the daemon answered finds with.
	ResultsServed int64 `json:"results_served"`
	// TopServedQueries are the whole queries other peers asked most; empty
	// unless the participant opted in with record_queries.
	TopServedQueries []TermCount `json:"top_served_queries"`
	// TopRunTerms are the terms of the participant's own finds.
	TopRunTerms []TermCount `json:"top_run_terms"`
	// Unmet are the participant's queries that found nothing.
	Unmet     []TermCount      `json:"unmet"`
	Resources []ResourceDemand `json:"resources"`
}

// Demand returns the daemon's demand counts of the last since, or all it
// keeps when since is 0.
func (c *Client) Demand(ctx context.Context, since time.Duration) (Demand, error) {
	res, err := c.rpc.Demand(ctx, connect.NewRequest(&controlv1.DemandRequest{SinceMs: millis(since)}))
	if err != nil {
		return Demand{}, wrap(err)
	}
	m := res.Msg
	d := Demand{
		Since:             fromUnix(m.GetSinceUnix()),
		FindsRun:          m.GetFindsRun(),
		FindsUnmet:        m.GetFindsUnmet(),
		FindsServed:       m.GetFindsServed(),
		ConnectsRequested: m.GetConnectsRequested(),
		ConnectsGranted:   m.GetConnectsGranted(),
		TopServedTerms:    termCountsFromProto(m.GetTopServedTerms()),
		ResultsServed:     m.GetResultsServed(),
		TopServedQueries:  termCountsFromProto(m.GetTopServedQueries()),
		TopRunTerms:       termCountsFromProto(m.GetTopRunTerms()),
		Unmet:             termCountsFromProto(m.GetUnmet()),
		Resources:         []ResourceDemand{},
	}
	for _, r := range m.GetResources() {
		d.Resources = append(d.Resources, ResourceDemand{
			ID: r.GetId(), Name: r.GetName(), Found: r.GetFound(), Requested: r.GetRequested(), Granted: r.GetGranted(), Rated: r.GetRated(),
		})
	}
	return d, nil
}

func termCountsFromProto(ms []*controlv1.TermCount) []TermCount {
	out := make([]TermCount, 0, len(ms))
	for _, m := range ms {
		out = append(out, TermCount{Term: m.GetTerm(), Count: m.GetCount(), Results: m.GetResults()})
	}
	return out
}
