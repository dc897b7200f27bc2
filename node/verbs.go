package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"

	"github.com/pullnet/pullnet/internal/finder"
	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/internal/trust"
	"github.com/pullnet/pullnet/protocol/connect"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/resource"
)

// Version is pullnet's version, reported in the libp2p user agent.
const Version = "0.1.0"

// Advertise signs r and announces it. A resource with an empty ID and a
// Handle the node has not used is new; one whose ID (or Handle) names a
// resource the node already has is an edit of it, and gets the next seq. It
// returns the resource as advertised once it is stored durably; the DHT
// announcements go on in the background.
func (n *Node) Advertise(ctx context.Context, r resource.Resource) (resource.Resource, error) {
	if err := n.ctx.Err(); err != nil {
		return r, ErrClosed
	}
	var prev signed.Record
	var edit bool
	switch {
	case r.ID != "":
		if prev, edit = n.catalog.Get(r.ID); !edit {
			return r, fmt.Errorf("advertise: %w: resource %s is not one of this node's", ErrNotFound, r.ID)
		}
		if r.Handle != "" && r.Handle != prev.Resource.Handle {
			return r, fmt.Errorf("advertise: %w: the handle of %s is %q, not %q", ErrInvalid, r.ID, prev.Resource.Handle, r.Handle)
		}
		r.Handle = prev.Resource.Handle
	case r.Handle != "":
		prev, edit = n.catalog.ByHandle(r.Handle)
	default:
		r.Handle = newHandle()
	}
	r.Seq = 1
	if edit {
		r.Seq = prev.Resource.Seq + 1
	}
	// A TCP service's address is the provider's own business: it is kept
	// in the catalog, never signed or published.
	var service string
	if strings.EqualFold(strings.TrimSpace(r.Access.Type), resource.AccessTCP) {
		service = strings.TrimSpace(r.Access.Value)
		if service == "" && edit {
			service, _ = n.catalog.Service(prev.Resource.ID)
		}
		if err := checkServiceAddr(service); err != nil {
			return r, fmt.Errorf("advertise: %w: %v", ErrInvalid, err)
		}
		r.Access.Value = ""
	}
	r.Updated = time.Now().UTC().Truncate(time.Second)
	r.Withdrawn = false // only Withdraw makes tombstones
	rec, err := signed.SealResource(n.key, r)
	if err != nil {
		return r, fmt.Errorf("advertise: %w: %v", ErrInvalid, err)
	}
	if err := n.catalog.SetService(ctx, rec.Resource.ID, service); err != nil {
		return r, fmt.Errorf("advertise: %w", err)
	}
	if err := n.catalog.Put(ctx, rec); err != nil {
		return r, fmt.Errorf("advertise: %w", err)
	}
	n.mu.Lock()
	n.advertised[rec.Resource.ID] = time.Now()
	n.mu.Unlock()
	n.prov.add(rec.Resource.IndexTerms()...)
	n.announceInBackground(rec)
	n.log.Info("advertised", "id", rec.Resource.ID, "seq", rec.Resource.Seq, "kind", rec.Resource.Kind, "name", rec.Resource.Name)
	out := rec.Resource.Clone()
	if service != "" {
		out.Access.Value = service
	}
	return out, nil
}

// WaitAnnounced blocks until every index term of the node's resource id
// has been announced in the DHT since its last Advertise, so that other
// nodes can find it, or until ctx ends.
func (n *Node) WaitAnnounced(ctx context.Context, id string) error {
	rec, ok := n.catalog.Get(id)
	if !ok {
		return fmt.Errorf("wait announced: %w: resource %s is not one of this node's", ErrNotFound, id)
	}
	n.mu.Lock()
	since, ok := n.advertised[id]
	n.mu.Unlock()
	if !ok {
		since = n.started // advertised before a restart: announced again since start
	}
	if err := n.prov.waitAnnounced(ctx, rec.Resource.IndexTerms(), since); err != nil {
		return fmt.Errorf("wait announced %s: %w", id, err)
	}
	return nil
}

// Withdraw stops advertising a resource: the node forgets it, stops
// answering for it and stops announcing terms no other resource has.
func (n *Node) Withdraw(ctx context.Context, id string) error {
	// The tombstone is the next version, marked withdrawn: watchers keep
	// the highest seq, so it supersedes every earlier announcement.
	var tomb signed.Record
	prev, had := n.catalog.Get(id)
	if had {
		r := prev.Resource.Clone()
		r.Seq++
		r.Withdrawn = true
		r.Updated = time.Now().UTC().Truncate(time.Second)
		var err error
		if tomb, err = signed.SealResource(n.key, r); err != nil {
			return fmt.Errorf("withdraw: %w", err)
		}
	}
	ok, err := n.catalog.Delete(ctx, id)
	if err != nil {
		return fmt.Errorf("withdraw: %w", err)
	}
	if !ok {
		return fmt.Errorf("withdraw: %w: resource %s is not one of this node's", ErrNotFound, id)
	}
	n.announceInBackground(tomb)
	n.log.Info("withdrew", "id", id)
	return nil
}

// Resources lists the node's own resources, ordered by ID.
func (n *Node) Resources() []resource.Resource { return n.catalog.List() }

// Find searches the network for resources matching query and yields them
// as they arrive, each verified, until opt.Limit results, until every
// provider has answered, or until ctx ends (which ends the iteration
// without an error). A query that does not parse yields one error wrapping
// ErrInvalid and a *query.SyntaxError.
func (n *Node) Find(ctx context.Context, q string, opt FindOptions) iter.Seq2[Result, error] {
	limit := opt.Limit
	if limit <= 0 {
		limit = DefaultFindLimit
	}
	if opt.Ranked {
		return n.findRanked(ctx, q, limit, opt.MinTrust)
	}
	return func(yield func(Result, error) bool) {
		for r, err := range n.find(ctx, q, limit, opt.MinTrust) {
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

// find yields results as they arrive, with trust and rank, without those
// whose provider's trust is below minTrust (when non-zero).
func (n *Node) find(ctx context.Context, q string, limit int, minTrust float64) iter.Seq2[Result, error] {
	return func(yield func(Result, error) bool) {
		got, failed := 0, false
		defer func() {
			if !failed {
				n.recordFind(q, got)
			}
		}()
		res := n.trustResult()
		for h, err := range n.finder.Find(ctx, q, limit) {
			if err != nil {
				failed = true
				if isQueryError(err) {
					err = fmt.Errorf("%w: %w", ErrInvalid, err)
				}
				yield(Result{}, fmt.Errorf("find %q: %w", q, err))
				return
			}
			n.rememberProvider(h.Record.Resource.ID, h.Provider)
			tv := res.Score(h.Provider).Value
			if minTrust != 0 && tv < minTrust {
				continue
			}
			got++
			if !yield(Result{Resource: h.Record.Resource.Clone(), Provider: h.Provider, Addrs: h.Addrs, Elapsed: h.Elapsed,
				Score: h.Score, Trust: tv, Rank: h.Score * trust.Factor(tv)}, nil) {
				return
			}
		}
	}
}

// findRanked holds a find's results until it ends, then yields them best
// first. A find that ran out of time yields what it found.
func (n *Node) findRanked(ctx context.Context, q string, limit int, minTrust float64) iter.Seq2[Result, error] {
	return func(yield func(Result, error) bool) {
		var all []Result
		for r, err := range n.find(ctx, q, limit, minTrust) {
			if err != nil {
				if ctx.Err() == nil || len(all) == 0 {
					yield(Result{}, err)
					return
				}
				break
			}
			all = append(all, r)
		}
		slices.SortStableFunc(all, func(a, b Result) int { return cmp.Compare(b.Rank, a.Rank) })
		for _, r := range all {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func isQueryError(err error) bool {
	var se *query.SyntaxError
	return errors.As(err, &se) || errors.Is(err, query.ErrNotIndexable)
}

// maxRememberedProviders bounds the resource → provider map Connect uses
// to skip a lookup.
const maxRememberedProviders = 10_000

func (n *Node) rememberProvider(id string, p peer.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.providers) >= maxRememberedProviders {
		clear(n.providers)
	}
	n.providers[id] = p
}

// Connect asks the provider of resource id for access, with a message for
// its participant. A decline is not an error: the Grant carries the
// provider's reason. If the node has not seen the resource in a find, it
// finds it first.
func (n *Node) Connect(ctx context.Context, id, message string) (Grant, error) {
	if _, err := cid.Decode(id); err != nil {
		return Grant{}, fmt.Errorf("connect: %w: %q is not a resource ID", ErrInvalid, id)
	}
	req := connect.Request{ResourceID: id, Message: message}
	if _, own := n.catalog.Get(id); own {
		return n.grantFrom(n.ID(), id, n.grants.HandleConnect(ctx, n.ID(), req)), nil
	}
	n.mu.Lock()
	p, ok := n.providers[id]
	n.mu.Unlock()
	if !ok {
		h, err := n.finder.First(ctx, resource.Term(resource.TermID, id))
		if err != nil {
			if errors.Is(err, finder.ErrNoResult) {
				return Grant{}, fmt.Errorf("connect %s: %w: no peer on the network provides it", id, ErrNotFound)
			}
			return Grant{}, fmt.Errorf("connect %s: %w", id, err)
		}
		p = h.Provider
		n.rememberProvider(id, p)
	}
	resp, err := connect.Ask(ctx, n.host, p, req)
	if err != nil {
		return Grant{}, fmt.Errorf("connect %s: %w", id, err)
	}
	g := n.grantFrom(p, id, resp)
	if g.Granted {
		if err := n.keepHeld(ctx, g); err != nil {
			return g, fmt.Errorf("connect %s: %w", id, err)
		}
	}
	return g, nil
}

func (n *Node) grantFrom(p peer.ID, id string, r connect.Response) Grant {
	g := Grant{Granted: r.Granted, Session: r.Session, Reason: r.Reason, Access: r.Access,
		Provider: p, ResourceID: id, Receipt: r.Receipt}
	if rc, err := signed.OpenReceipt(r.Receipt); err == nil {
		g.Expires = rc.Expires
	}
	return g
}

// Requests lists the connect requests waiting for Approve or Decline under
// the manual policy, oldest first.
func (n *Node) Requests() []Request {
	pending := n.grants.Pending()
	out := make([]Request, len(pending))
	for i, p := range pending {
		out[i] = Request{Session: p.Session, ResourceID: p.ResourceID, Consumer: p.Consumer, Message: p.Message, Received: p.Received}
	}
	return out
}

// Approve grants a waiting connect request.
func (n *Node) Approve(session string) error {
	if err := n.grants.Approve(session); err != nil {
		return fmt.Errorf("approve: %w: %v", ErrNotFound, err)
	}
	return nil
}

// Decline refuses a waiting connect request, telling the consumer why.
func (n *Node) Decline(session, reason string) error {
	if err := n.grants.Decline(session, reason); err != nil {
		return fmt.Errorf("decline: %w: %v", ErrNotFound, err)
	}
	return nil
}

// newHandle makes up a handle for a resource advertised without one.
func newHandle() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	s, _ := multibase.Encode(multibase.Base32, b[:])
	return strings.TrimPrefix(s, "b")
}
