package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/ratings"
	"github.com/pullnet/pullnet/internal/store"
	"github.com/pullnet/pullnet/internal/trust"
	"github.com/pullnet/pullnet/protocol/reputation"
	"github.com/pullnet/pullnet/protocol/signed"
)

// Rating is a signed opinion of one session, by one of its two parties.
type Rating struct {
	// Session and ResourceID name the rated session, as the provider's
	// receipt does.
	Session    string
	ResourceID string
	// Rater gave the rating; Subject is the other party of the session.
	Rater, Subject peer.ID
	// Score is from -1 (bad) to +1 (good), in steps of 0.01.
	Score   float64
	Comment string
	Created time.Time
}

// TrustScore is what this node thinks of one peer.
type TrustScore struct {
	Peer peer.ID
	// Value runs from -1 (distrusted) through 0 (nothing known) to +1
	// (trusted). Find ranks by relevance × (1+Value)/2; policy min_trust
	// compares against it.
	Value float64
	// Positive and Negative are the trust masses behind the peer's
	// positive and negative opinions (all peers' Positive sums to 1).
	Positive, Negative float64
	// Evidence counts the ratings about the peer from raters this node
	// trusts.
	Evidence int
	// Anchor is the participant's own weight for the peer (SetTrust), 0
	// if none.
	Anchor float64
	// Contributors are the strongest raters behind Value, strongest first
	// (filled by Trust, not by TrustScores).
	Contributors []TrustContribution
}

// TrustContribution is one rater's part in a peer's trust.
type TrustContribution struct {
	Rater peer.ID
	// RaterTrust is the rater's own Positive mass: how much its word
	// counts here.
	RaterTrust float64
	// Sum and Count are the rater's opinion of the peer: the sum of its
	// scores over Count sessions.
	Sum   float64
	Count int
	// Weight is the signed share of the peer's trust this opinion carries.
	Weight float64
}

// TrustExplanation is the chain of evidence behind a peer's trust: who
// rated it and how, and recursively how those raters earned the trust that
// makes their word count, back to this node and its anchors.
type TrustExplanation struct {
	Peer                      peer.ID
	Value, Positive, Negative float64
	Evidence                  int
	// Self marks this node, where all trust starts.
	Self bool
	// Anchor is the participant's weight for this peer, 0 if none;
	// Teleport the share of its trust that comes from being self or an
	// anchor rather than from ratings.
	Anchor, Teleport float64
	// Raters are the strongest opinions about the peer.
	Raters []TrustLink
	// Omitted counts opinions left out for width; Cut says why Raters
	// stops short ("depth" or "cycle").
	Omitted int
	Cut     string
}

// TrustLink is one rater's opinion in a TrustExplanation.
type TrustLink struct {
	Sum    float64
	Count  int
	Weight float64
	Rater  TrustExplanation
}

// TrustAnchor is a peer the participant vouched for (Weight > 0) or
// against (Weight < 0) directly.
type TrustAnchor struct {
	Peer   peer.ID   `json:"peer"`
	Weight float64   `json:"weight"`
	Added  time.Time `json:"added"`
}

const (
	// trustDebounce is the least time between two trust computations that
	// gossip triggers; user actions (Rate, SetTrust) compute at once.
	trustDebounce = time.Second
	// trustRefresh recomputes now and then even with nothing new, to
	// re-tag peers that connected since.
	trustRefresh = time.Minute
	// pullEvery is how often the node pulls ratings from a random peer, to
	// catch what gossip missed.
	pullEvery = 5 * time.Minute
	// pullAgain is how long the node waits before pulling from the same
	// peer again when it reconnects.
	pullAgain = 10 * time.Minute
	// firstPullWindow is how far back a node that holds ratings asks a
	// peer it has never pulled from; an empty node asks for everything
	// (still capped at reputation.MaxSyncBytes).
	firstPullWindow = 24 * time.Hour
	// maxPullTargets bounds the remembered pull times.
	maxPullTargets = 1024
	// trustTag is the connection-manager tag that carries trust.
	trustTag = "pullnet-trust"
)

// reputationPart is the node's reflect part: the book of ratings, the trust
// graph it feeds, gossip and sync, and the latest trust result.
type reputationPart struct {
	book    *ratings.Book
	svc     *reputation.Service
	anchors store.Table[TrustAnchor]

	mu      sync.Mutex
	graph   *trust.Graph
	anchorW map[peer.ID]float64
	result  atomic.Pointer[trust.Result]
	dirty   chan struct{}
	pulls   chan peer.ID

	pullMu   sync.Mutex
	lastPull map[peer.ID]time.Time
}

func (n *Node) openReputation(ctx context.Context) error {
	r := &reputationPart{
		graph: trust.NewGraph(), anchorW: map[peer.ID]float64{},
		anchors:  store.Table[TrustAnchor]{DS: n.store, Prefix: ds.NewKey("/pullnet/trust/anchors")},
		dirty:    make(chan struct{}, 1),
		pulls:    make(chan peer.ID, 16),
		lastPull: map[peer.ID]time.Time{},
	}
	anchors, err := r.anchors.List(ctx)
	if err != nil {
		return fmt.Errorf("load trust anchors: %w", err)
	}
	for _, a := range anchors {
		r.anchorW[a.Peer] = a.Weight
	}
	r.book, err = ratings.Open(ctx, ratings.Config{Store: n.store, Logger: n.log.With("part", "ratings"),
		OnChange: func(c ratings.Change) {
			r.mu.Lock()
			r.graph.Add(c.Rater, c.Subject, c.DeltaSum, c.DeltaCount)
			r.mu.Unlock()
			r.markDirty()
		}})
	if err != nil {
		return err
	}
	r.svc, err = reputation.New(n.host, n.announce.PubSub(), r.book, nil, n.log.With("part", "reputation"))
	if err != nil {
		return err
	}
	n.closers = append(n.closers, func() error { r.svc.Close(); return nil })
	n.rep = r
	n.computeTrust()
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return fmt.Errorf("follow identify: %w", err)
	}
	n.goRun(func(ctx context.Context) { defer sub.Close(); n.pullOnMeet(ctx, sub) })
	n.goRun(n.pullLoop)
	n.goRun(n.trustLoop)
	return nil
}

func (r *reputationPart) markDirty() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

// computeTrust recomputes trust from the current graph and anchors, and
// tags connected peers with it in the connection manager.
func (n *Node) computeTrust() *trust.Result {
	r := n.rep
	r.mu.Lock()
	snap := r.graph.Snapshot()
	anchors := make([]trust.Anchor, 0, len(r.anchorW))
	for p, w := range r.anchorW {
		anchors = append(anchors, trust.Anchor{Peer: p, Weight: w})
	}
	r.mu.Unlock()
	res := snap.Compute(n.ID(), anchors, trust.Params{})
	r.result.Store(res)
	n.tagPeers(res)
	return res
}

// tagPeers gives connected peers a connection-manager value from their
// trust, so that when the manager trims connections it drops the least
// trusted first and keeps the trusted longest.
func (n *Node) tagPeers(res *trust.Result) {
	cm := n.host.ConnManager()
	for _, p := range n.host.Network().Peers() {
		v := res.Score(p).Value
		if v == 0 {
			cm.UntagPeer(p, trustTag)
			continue
		}
		cm.TagPeer(p, trustTag, int(math.Round(v*50)))
	}
}

func (n *Node) trustLoop(ctx context.Context) {
	refresh := time.NewTicker(trustRefresh)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
		case <-n.rep.dirty:
			// Let a burst of gossip land before computing once.
			t := time.NewTimer(trustDebounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		n.computeTrust()
	}
}

// pullOnMeet queues a pull from each peer that completes identify and
// speaks the reputation protocol, unless pulled from lately.
func (n *Node) pullOnMeet(ctx context.Context, sub event.Subscription) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			id := e.(event.EvtPeerIdentificationCompleted)
			if !slices.Contains(id.Protocols, reputation.ID) {
				continue
			}
			select {
			case n.rep.pulls <- id.Peer:
			default: // a queue full of pulls will catch up anyway
			}
		}
	}
}

// pullLoop makes the pulls one at a time: those queued on meeting a peer,
// and one from a random connected peer every pullEvery.
func (n *Node) pullLoop(ctx context.Context) {
	tick := time.NewTicker(pullEvery)
	defer tick.Stop()
	for {
		var p peer.ID
		select {
		case <-ctx.Done():
			return
		case p = <-n.rep.pulls:
		case <-tick.C:
			peers := n.host.Network().Peers()
			if len(peers) == 0 {
				continue
			}
			p = peers[rand.IntN(len(peers))]
		}
		n.pullFrom(ctx, p)
	}
}

func (n *Node) pullFrom(ctx context.Context, p peer.ID) {
	r := n.rep
	now := time.Now()
	r.pullMu.Lock()
	last, pulled := r.lastPull[p]
	if pulled && now.Sub(last) < pullAgain {
		r.pullMu.Unlock()
		return
	}
	if len(r.lastPull) >= maxPullTargets {
		clear(r.lastPull)
	}
	r.lastPull[p] = now
	r.pullMu.Unlock()
	var since time.Time
	switch {
	case pulled:
		since = last.Add(-time.Minute) // some slack for the two clocks
	case r.book.Len() > 0:
		since = now.Add(-firstPullWindow)
	}
	pctx, cancel := context.WithTimeout(ctx, reputation.StreamTimeout)
	defer cancel()
	res, err := r.svc.Pull(pctx, p, since)
	if err != nil {
		n.log.Debug("pull ratings", "peer", p, "err", err)
		return
	}
	if res.Accepted > 0 {
		n.log.Info("pulled ratings", "peer", p, "new", res.Accepted, "received", res.Received)
	}
}

// Rate rates a session this node took part in, as consumer (rating the
// provider) or as provider (rating the consumer), with a score from -1 to
// +1 and an optional comment. The rating is signed, stored, and gossiped;
// rating the same session again replaces the earlier rating.
func (n *Node) Rate(ctx context.Context, session string, score float64, comment string) (Rating, error) {
	receipt, err := n.receiptOf(ctx, session)
	if err != nil {
		return Rating{}, fmt.Errorf("rate %s: %w", session, err)
	}
	rec, err := signed.SealRating(n.key, receipt, score, comment, time.Now())
	if err != nil {
		if errors.Is(err, signed.ErrMalformed) {
			err = fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return Rating{}, fmt.Errorf("rate %s: %w", session, err)
	}
	if err := n.rep.svc.Publish(ctx, rec); err != nil {
		// Stored but not gossiped: peers will pull it.
		n.log.Info("rating stored; peers will pull it", "session", session, "err", err)
	}
	n.computeTrust()
	return ratingOf(rec.Rating), nil
}

// receiptOf finds the provider's receipt of a session this node holds, as
// consumer or provider.
func (n *Node) receiptOf(ctx context.Context, session string) ([]byte, error) {
	if h, err := n.held.Get(ctx, session); err == nil {
		return h.Receipt, nil
	} else if !errors.Is(err, ds.ErrNotFound) {
		return nil, err
	}
	for _, s := range n.grants.Sessions() {
		if s.ID == session {
			return s.Receipt, nil
		}
	}
	return nil, fmt.Errorf("%w: no session %q on this node (see sessions)", ErrNotFound, session)
}

func ratingOf(r signed.Rating) Rating {
	return Rating{Session: r.Receipt.Session, ResourceID: r.Receipt.ResourceID, Rater: r.Rater, Subject: r.Subject,
		Score: r.Score, Comment: r.Comment, Created: r.Created}
}

// Ratings returns the ratings this node holds about peer p (all ratings if
// p is empty), newest first, at most limit (zero: 100).
func (n *Node) Ratings(ctx context.Context, p peer.ID, limit int) ([]Rating, error) {
	if limit <= 0 {
		limit = 100
	}
	rs, err := n.rep.book.About(ctx, p, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Rating, len(rs))
	for i, r := range rs {
		out[i] = ratingOf(r)
	}
	return out, nil
}

// trustResult is the latest trust computation.
func (n *Node) trustResult() *trust.Result { return n.rep.result.Load() }

// trustValue is this node's trust in p, from -1 to +1.
func (n *Node) trustValue(p peer.ID) float64 { return n.trustResult().Score(p).Value }

func (n *Node) anchorWeight(p peer.ID) float64 {
	n.rep.mu.Lock()
	defer n.rep.mu.Unlock()
	return n.rep.anchorW[p]
}

// Trust returns this node's trust in p, with its strongest contributors.
func (n *Node) Trust(p peer.ID) TrustScore {
	res := n.trustResult()
	ts := trustScoreOf(p, res.Score(p), n.anchorWeight(p))
	for _, c := range res.Contributors(p, 5) {
		ts.Contributors = append(ts.Contributors, TrustContribution(c))
	}
	return ts
}

func trustScoreOf(p peer.ID, s trust.Score, anchor float64) TrustScore {
	return TrustScore{Peer: p, Value: s.Value, Positive: s.Positive, Negative: s.Negative, Evidence: s.Evidence, Anchor: anchor}
}

// TrustScores returns every peer this node has evidence about or an anchor
// for, except itself, most trusted first, at most limit (zero: all).
func (n *Node) TrustScores(limit int) []TrustScore {
	res := n.trustResult()
	n.rep.mu.Lock()
	anchors := maps.Clone(n.rep.anchorW)
	n.rep.mu.Unlock()
	var out []TrustScore
	for p, s := range res.Scores() {
		if p != n.ID() {
			out = append(out, trustScoreOf(p, s, anchors[p]))
		}
	}
	slices.SortFunc(out, func(a, b TrustScore) int {
		if c := cmp.Compare(b.Value, a.Value); c != 0 {
			return c
		}
		return cmp.Compare(a.Peer, b.Peer)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// TrustWhy explains this node's trust in p as a tree of evidence, depth
// levels of raters deep (zero: 3), the width strongest at each level
// (zero: 5).
func (n *Node) TrustWhy(p peer.ID, depth, width int) TrustExplanation {
	if depth <= 0 {
		depth = 3
	}
	return explanationOf(n.trustResult().Why(p, depth, width))
}

func explanationOf(x trust.Explanation) TrustExplanation {
	out := TrustExplanation{Peer: x.Peer, Value: x.Value, Positive: x.Positive, Negative: x.Negative, Evidence: x.Evidence,
		Self: x.Self, Anchor: x.Anchor, Teleport: x.Teleport, Omitted: x.Omitted, Cut: x.Cut}
	for _, l := range x.Raters {
		out.Raters = append(out.Raters, TrustLink{Sum: l.Sum, Count: l.Count, Weight: l.Weight, Rater: explanationOf(l.Rater)})
	}
	return out
}

// SetTrust vouches for peer p (weight in (0,1]: trust starts at p as well
// as at this node) or against it (weight in [-1,0): its ratings count for
// nothing and its trust is at most weight); weight 0 removes the anchor.
// The change persists and applies at once.
func (n *Node) SetTrust(ctx context.Context, p peer.ID, weight float64) error {
	if math.IsNaN(weight) || weight < -1 || weight > 1 {
		return fmt.Errorf("trust %s: %w: weight %v is outside -1…+1", p, ErrInvalid, weight)
	}
	if p == n.ID() {
		return fmt.Errorf("trust %s: %w: that is this node itself", p, ErrInvalid)
	}
	if weight == 0 {
		if err := n.rep.anchors.Delete(ctx, p.String()); err != nil {
			return fmt.Errorf("trust remove %s: %w", p, err)
		}
	} else if err := n.rep.anchors.Put(ctx, p.String(), TrustAnchor{Peer: p, Weight: weight, Added: time.Now().UTC()}); err != nil {
		return fmt.Errorf("trust add %s: %w", p, err)
	}
	n.rep.mu.Lock()
	if weight == 0 {
		delete(n.rep.anchorW, p)
	} else {
		n.rep.anchorW[p] = weight
	}
	n.rep.mu.Unlock()
	n.computeTrust()
	return nil
}

// TrustAnchors lists the peers the participant vouched for or against.
func (n *Node) TrustAnchors(ctx context.Context) ([]TrustAnchor, error) {
	return n.rep.anchors.List(ctx)
}

// RatingStats counts the ratings this node heard and what became of them.
type RatingStats struct {
	// Held is the number of ratings in the node's book.
	Held int
	// Accepted new ratings and versions; Duplicate ones already held.
	Accepted, Duplicate int64
	// Rejected, by reason: bad signature or forged receipt, a rater who
	// took no part in the session, a creation time in the future, before
	// the session or too long ago, malformed or oversized, over a
	// publisher's rate, and no room left for the rater.
	Forged, NotParty, BadTime, Malformed, Throttled, Full int64
	// Pulls made and served.
	Pulls, PullsServed int64
}

func (n *Node) ratingStats() RatingStats {
	s := &n.rep.svc.Stats
	return RatingStats{Held: n.rep.book.Len(), Accepted: s.Accepted.Load(), Duplicate: s.Duplicate.Load(),
		Forged: s.Forged.Load(), NotParty: s.NotParty.Load(), BadTime: s.BadTime.Load(), Malformed: s.Malformed.Load(),
		Throttled: s.Throttled.Load(), Full: s.Full.Load(), Pulls: s.Pulls.Load(), PullsServed: s.Served.Load()}
}

// PullRatings pulls the ratings peer p received since since (zero: all it
// will send), and reports how many were new. Nodes pull by themselves on
// meeting a peer and every few minutes; this is for tools and tests.
func (n *Node) PullRatings(ctx context.Context, p peer.ID, since time.Time) (int, error) {
	res, err := n.rep.svc.Pull(ctx, p, since)
	if res.Accepted > 0 {
		n.computeTrust()
	}
	return res.Accepted, err
}
